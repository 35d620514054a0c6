"""Shared decoding helpers: read file bytes, decode through OpenCV quietly, normalise channels."""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageReadError, InputError

MIN_SIZE = 8


def read_bytes(path: Path) -> bytes:
    """Return the content of ``path``; a missing or unreadable file raises :class:`ImageReadError`."""
    if not path.exists():
        raise ImageReadError(f"{path}: file not found; check the path.")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file.")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be read ({error.strerror or error}).") from error
    if not data:
        raise ImageReadError(f"{path}: file is empty; re-export or copy it again.")
    return data


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence a library's Python logger for the duration; we raise our own error instead."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


_NATIVE_OUTPUT_LOCK = threading.Lock()


def _flush_c_streams() -> None:
    """Flush C stdio buffers (C++ ``std::cout`` writes through them), where libc is reachable."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def _captured_python_output(captured: list[str]) -> Iterator[None]:
    """Route ``sys.stdout``/``sys.stderr`` into ``captured`` (OpenEXR's bindings print through Python)."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        if buffer.getvalue().strip():
            captured.append(buffer.getvalue().strip())


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Capture what decoders print while they run, instead of letting it reach the terminal.

    libpng, libjpeg and OpenEXR print warnings and errors straight to file descriptors 1 and 2, and
    OpenEXR's bindings also print through ``sys.stdout``. Both are redirected for the duration of
    the block; its list receives the text (stripped; empty if none) when the block ends, so callers
    can put it into their own error or warning. Python's streams are flushed first, so earlier output
    is not swallowed. Where the descriptors cannot be duplicated, only Python's streams are captured.
    """
    captured: list[str] = []
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with _NATIVE_OUTPUT_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = [os.dup(1), os.dup(2)]
        except OSError:
            with _captured_python_output(captured):
                yield captured
            return
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            with _captured_python_output(captured):
                yield captured
        finally:
            _flush_c_streams()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace").strip()
            if text:
                captured.insert(0, text)


def native_message(captured: list[str]) -> str:
    """The captured decoder output as one short line (for an error message), or ``""``."""
    text = " ".join(" ".join(captured).split())
    return text if len(text) <= 200 else text[:197] + "..."


def decode_with_opencv(path: Path, data: bytes, flags: int) -> np.ndarray:
    """Decode ``data`` with ``cv2.imdecode``; failure raises :class:`ImageReadError` naming ``path``.

    Colour images come back in OpenCV's BGR(A) order. What the C decoders print goes into the error
    message (or into a ``UserWarning`` when the image still decodes), never to the terminal.
    """
    try:
        with _quiet_opencv(), captured_native_output() as captured:
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except Exception as error:  # decoders raise cv2.error and others on corrupt data
        raise ImageReadError(f"{path}: corrupt or truncated image ({error}); re-export the file.") from error
    message = native_message(captured)
    if image is None:
        detail = f" (decoder: {message})" if message else ""
        raise ImageReadError(f"{path}: corrupt, truncated or not a supported image{detail}; re-export the file.")
    if message:
        warnings.warn(f"{path}: the decoder reported a problem but read the image: {message}", stacklevel=2)
    return image


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Reverse the colour order of an OpenCV (H, W, 3|4) image (alpha, if any, stays last)."""
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.concatenate([image[..., 2::-1], image[..., 3:]], axis=2)
    return image


def to_rgb(path: Path, image: np.ndarray, opaque_value: float) -> np.ndarray:
    """Return ``image`` (H, W[, C]) as RGB (H, W, 3).

    Greyscale is replicated; a fully opaque alpha channel (every value ``opaque_value``) is dropped;
    any other channel layout raises :class:`ImageReadError` with the fix.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ImageReadError(f"{path}: unsupported image layout {image.shape}; save it as an RGB image.")
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 2:  # grey + alpha
        if not np.all(image[..., 1] == opaque_value):
            raise ImageReadError(f"{path}: has transparent pixels; flatten it onto a background and save without alpha.")
        return np.repeat(image[..., :1], 3, axis=2)
    if channels == 3:
        return image
    if channels == 4:
        if not np.all(image[..., 3] == opaque_value):
            raise ImageReadError(f"{path}: has transparent pixels; flatten it onto a background and save without alpha.")
        return image[..., :3]
    raise ImageReadError(f"{path}: has {channels} channels; only greyscale, RGB and opaque RGBA are supported.")


def check_size(path: Path, image: np.ndarray) -> None:
    """Raise :class:`InputError` when ``image`` is smaller than 8x8 pixels (:class:`ImageReadError` if not 2-D)."""
    if image.ndim not in (2, 3):
        raise ImageReadError(f"{path}: decoded to an array of shape {image.shape}, not an image; the file is corrupt.")
    height, width = image.shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InputError(f"{path}: image is {width}x{height} pixels; at least {MIN_SIZE}x{MIN_SIZE} is needed.")
