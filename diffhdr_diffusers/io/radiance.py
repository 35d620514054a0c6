"""Linear HDR radiance maps: Radiance RGBE ``.hdr`` (OpenCV) and OpenEXR ``.exr`` (``openexr`` wheel); linear
DNG output for raw editors (:mod:`.dng`)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import cv2
import numpy as np
import OpenEXR

from ..errors import ImageReadError, InputError, OutputError
from .atomic import atomic_path
from .decode import bgr_to_rgb, decode_with_opencv, read_bytes
from .exr import check_exr
from .formats import RADIANCE_OUTPUT_SUFFIXES, RADIANCE_SUFFIXES

METADATA_PREFIX = "diffhdr:"


def decode_hdr(path: Path, data: bytes) -> np.ndarray:
    """A Radiance ``.hdr`` file's bytes to float32 RGB; ``path`` names the file in errors."""
    if not data.startswith(b"#?"):
        raise ImageReadError(f"{path}: not a Radiance RGBE file (missing '#?' signature); re-export it.")
    image = decode_with_opencv(path, data, cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYDEPTH)
    if image.dtype != np.float32 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageReadError(f"{path}: did not decode as a 3-channel Radiance image; re-export it.")
    return bgr_to_rgb(image)


def _exr_channels(path: Path, channels: dict) -> np.ndarray:
    names = set(channels)
    for group in (("R", "G", "B"), ("Y",)):
        if names.issuperset(group):
            planes = [channels[name].pixels for name in group]
            break
    else:
        if len(names) != 1:
            raise ImageReadError(f"{path}: EXR channels {sorted(names)} hold no R, G, B or Y image; save it as RGB.")
        planes = [next(iter(channels.values())).pixels]
    shapes = {plane.shape for plane in planes}
    if len(shapes) != 1 or planes[0].ndim != 2:
        raise ImageReadError(f"{path}: EXR channels are subsampled or of unequal size; save it as full-resolution RGB.")
    if any(plane.dtype.kind != "f" for plane in planes):
        raise ImageReadError(f"{path}: EXR channels are not half or float; save radiance as half or float.")
    image = np.stack([plane.astype(np.float32) for plane in planes], axis=-1)
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def decode_exr(path: Path, data: bytes) -> np.ndarray:
    """An OpenEXR file's bytes to float32 RGB; ``path`` names the file in errors.

    :func:`~.exr.check_exr` validates the structure first, so a damaged file raises our error
    before the OpenEXR library can print about it.
    """
    check_exr(path, data)
    try:
        with OpenEXR.File(io.BytesIO(data), separate_channels=True) as exr:
            return _exr_channels(path, exr.channels())
    except ImageReadError:
        raise
    except Exception as error:  # the OpenEXR bindings raise RuntimeError, ValueError, KeyError, ...
        raise ImageReadError(f"{path}: corrupt or truncated OpenEXR file ({error}); re-export it.") from error


def read_radiance(path: str | os.PathLike) -> np.ndarray:
    """Read linear radiance as float32 (H, W, 3) RGB from a Radiance ``.hdr`` or an OpenEXR ``.exr``.

    EXR files may hold half or float R, G, B channels, or a single Y channel (replicated to RGB).
    Negative values (out-of-gamut colours, present in some EXR files) are clipped to 0, so what
    ``write_radiance`` writes reads back exactly. Missing, corrupt or truncated files, and files
    holding NaN or infinite values, raise :class:`ImageReadError` naming the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RADIANCE_SUFFIXES:
        raise ImageReadError(f"{path}: unsupported radiance format {suffix!r}; use .hdr or .exr.")
    data = read_bytes(path)
    radiance = decode_hdr(path, data) if suffix == ".hdr" else decode_exr(path, data)
    if not np.all(np.isfinite(radiance)):
        raise ImageReadError(f"{path}: contains NaN or infinite values; the file is corrupt.")
    # Out-of-gamut colour conversions leave small negative values in some EXR files (the OpenEXR
    # samples hold a few); radiance is non-negative, and mu-law of a negative value is undefined.
    return np.ascontiguousarray(np.maximum(radiance, 0.0), dtype=np.float32)


def check_radiance(path: Path, radiance: np.ndarray) -> np.ndarray:
    """Return ``radiance`` as float32 (H, W, 3) after checking it is finite and non-negative."""
    radiance = np.asarray(radiance)
    if radiance.ndim != 3 or radiance.shape[2] != 3:
        raise InputError(f"{path}: radiance must be (H, W, 3) RGB, got shape {radiance.shape}; nothing was written.")
    radiance = radiance.astype(np.float32, copy=False)
    if not np.all(np.isfinite(radiance)):
        raise InputError(f"{path}: radiance contains NaN or infinite values; nothing was written.")
    if radiance.size and radiance.min() < 0:
        raise InputError(f"{path}: radiance contains negative values (min {radiance.min():g}); nothing was written.")
    return radiance


def write_radiance(
    path: str | os.PathLike, radiance: np.ndarray, overwrite: bool = False, metadata: dict | None = None,
    exif_source: str | os.PathLike | None = None,
) -> Path:
    """Write linear float RGB (H, W, 3) as Radiance ``.hdr`` (RGBE), ``.exr`` (float32, ZIP) or ``.dng``; atomic.

    RGBE keeps about 8 mantissa bits (relative error below 1%); EXR float32 round-trips exactly; ``.dng``
    is a float32 LinearRaw DNG for raw editors (:func:`~.dng.write_dng`), carrying ``exif_source``'s EXIF
    (the reference frame's; other formats ignore it). ``metadata`` (``{name: value}``, e.g. the camera
    response used) goes into an EXR's header as string attributes ``diffhdr:<name>`` (values that are not
    strings as JSON; :func:`read_radiance_metadata` reads them back); ``.hdr`` and ``.dng`` carry none.
    Raises :class:`InputError` for non-finite or negative values and :class:`OutputError` for an
    existing file without ``overwrite``, or a missing or unwritable folder.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RADIANCE_OUTPUT_SUFFIXES:
        raise OutputError(f"{path}: radiance is written as {', '.join(RADIANCE_OUTPUT_SUFFIXES)}, not {suffix!r}.")
    if suffix == ".dng":
        from .dng import write_dng  # dng imports this module

        return write_dng(path, radiance, exif_source=exif_source, overwrite=overwrite)
    radiance = check_radiance(path, radiance)
    with atomic_path(path, overwrite) as temporary:
        if suffix == ".hdr":
            if not cv2.imwrite(str(temporary), np.ascontiguousarray(radiance[..., ::-1])):
                raise OutputError(f"{path}: OpenCV could not write the Radiance file.")
        else:
            header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
            for name, value in (metadata or {}).items():
                header[f"{METADATA_PREFIX}{name}"] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            channels = {name: np.ascontiguousarray(radiance[..., index]) for index, name in enumerate("RGB")}
            with OpenEXR.File(header, channels) as exr:
                exr.write(str(temporary))
    return path


def read_radiance_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``diffhdr:<name>`` header attributes :func:`write_radiance` put into an EXR (``{}`` for other files)."""
    path = Path(path)
    if path.suffix.lower() != ".exr":
        return {}
    data = read_bytes(path)
    check_exr(path, data)
    with OpenEXR.File(io.BytesIO(data)) as exr:  # the header is only readable while the file is open
        return {key[len(METADATA_PREFIX):]: str(value) for key, value in exr.header().items()
                if key.startswith(METADATA_PREFIX)}
