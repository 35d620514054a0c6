"""Shared decoding helpers: read file bytes, decode through OpenCV quietly, normalise samples and channels.

No decoder may print. Native decoders report problems on the process's standard streams, which no
Python code can catch (redirecting file descriptors 1 and 2 would also swallow other threads'
output), so each format is kept quiet at its source instead: OpenCV's own messages through its log
level, libpng by checking PNG structure first (:mod:`.png`), libjpeg by decoding JPEG through
Pillow, whose error manager reports instead of printing, and OpenEXR by checking its structure
first (:mod:`.exr`). Every failure is one :class:`ImageReadError` naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageReadError, InputError
from .formats import MIN_SIZE


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


_OPENCV_LOG_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own messages (its decoders' and libtiff's) off for the duration; the previous level comes back."""
    with _OPENCV_LOG_LOCK:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            yield
        finally:
            cv2.utils.logging.setLogLevel(level)


def decode_with_opencv(path: Path, data: bytes, flags: int) -> np.ndarray:
    """Decode ``data`` with ``cv2.imdecode``; failure raises :class:`ImageReadError` naming ``path``.

    Colour images come back in OpenCV's BGR(A) order. Callers pass only data that cannot make a
    native library print: PNG cleaned by :func:`~.png.clean_png`, Radiance RGBE and TIFF (whose
    decoders report through OpenCV's log, silenced here).
    """
    try:
        with _quiet_opencv():
            image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except Exception as error:  # decoders raise cv2.error and others on corrupt data
        raise ImageReadError(f"{path}: corrupt or truncated image ({error}); re-export the file.") from error
    if image is None:
        raise ImageReadError(f"{path}: corrupt, truncated or not a supported image; re-export the file.")
    return image


def normalise_samples(name: str | Path, image: np.ndarray) -> np.ndarray:
    """Stored samples to float32 (H, W, 3) RGB in [0, 1]: the one pixel normalisation of the library.

    uint8 is divided by 255 and uint16 by 65535; float samples are kept and must be finite and in
    [0, 1]. Greyscale is replicated to RGB and a fully opaque alpha channel is dropped. ``name``
    (a file, or an argument such as ``images[1]``) starts every :class:`ImageReadError` message.
    """
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        opaque = float(np.iinfo(image.dtype).max)
        return to_rgb(name, image, opaque).astype(np.float32) / np.float32(opaque)
    if image.dtype in (np.float16, np.float32, np.float64):
        rgb = to_rgb(name, image, 1.0).astype(np.float32)
        if not np.all(np.isfinite(rgb)):
            raise ImageReadError(f"{name} contains NaN or infinite values; pass or save finite values in [0, 1].")
        if rgb.size and (rgb.min() < 0.0 or rgb.max() > 1.0):
            raise ImageReadError(
                f"{name} has float values outside [0, 1] ({rgb.min():g}..{rgb.max():g}); an LDR exposure is expected, "
                "scaled to [0, 1] (use read_radiance for HDR files)."
            )
        return rgb
    raise ImageReadError(f"{name} has sample type {image.dtype}; use 8- or 16-bit integers or float in [0, 1].")


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Reverse the colour order of an OpenCV (H, W, 3|4) image (alpha, if any, stays last)."""
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.concatenate([image[..., 2::-1], image[..., 3:]], axis=2)
    return image


def _check_opaque(name: str | Path, alpha: np.ndarray, opaque_value: float) -> None:
    # A float alpha within 1e-6 of opaque counts as opaque; for 8/16-bit codes this is exactly the maximum.
    if not np.all(alpha >= opaque_value * (1.0 - 1e-6)):
        raise ImageReadError(f"{name} has a non-opaque alpha channel (transparent pixels); flatten it onto a "
                             "background and save or pass it without alpha.")


def to_rgb(name: str | Path, image: np.ndarray, opaque_value: float) -> np.ndarray:
    """Return ``image`` (H, W[, C]) as RGB (H, W, 3).

    Greyscale is replicated; a fully opaque alpha channel (every value ``opaque_value``) is dropped;
    any other channel layout raises :class:`ImageReadError` with the fix.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ImageReadError(f"{name} has shape {image.shape}; expected (H, W, 3) RGB (or greyscale, or opaque RGBA).")
    channels = image.shape[2]
    if channels in (2, 4):
        _check_opaque(name, image[..., -1], opaque_value)
        image = image[..., :-1]
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 3:
        return image
    raise ImageReadError(f"{name} has {channels} channels; only greyscale, RGB and opaque RGBA are supported.")


def check_size(path: Path, image: np.ndarray) -> None:
    """Raise :class:`InputError` when ``image`` is smaller than ``MIN_SIZE`` pixels (:class:`ImageReadError` if not 2-D)."""
    if image.ndim not in (2, 3):
        raise ImageReadError(f"{path}: decoded to an array of shape {image.shape}, not an image; the file is corrupt.")
    height, width = image.shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InputError(f"{path}: image is {width}x{height} pixels; at least {MIN_SIZE}x{MIN_SIZE} is needed.")
