"""Low-dynamic-range images: read 8/16-bit TIFF, PNG and JPEG to float RGB in [0, 1]; write 8/16-bit.

TIFF goes through ``tifffile`` (never Pillow, which drops 16-bit data to 8 bits). PNG and JPEG go
through OpenCV with ``IMREAD_UNCHANGED``, which keeps 16-bit PNG samples.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import tifffile

from ..errors import ImageReadError, InputError, OutputError
from .atomic import atomic_path
from .decode import bgr_to_rgb, check_size, decode_with_opencv, quiet_logger, read_bytes, to_rgb

TIFF_SUFFIXES = (".tif", ".tiff")
OPENCV_SUFFIXES = (".png", ".jpg", ".jpeg")
LDR_SUFFIXES = TIFF_SUFFIXES + OPENCV_SUFFIXES


def decode_tiff(path: Path, data: bytes) -> np.ndarray:
    """A TIFF file's bytes to its stored samples, (H, W, C); ``path`` names the file in errors."""
    try:
        with quiet_logger("tifffile"), tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages.first
            photometric = page.photometric
            planar = page.planarconfig
            samples = page.samplesperpixel
            image = page.asarray()
    except Exception as error:  # tifffile and its codecs raise many types on corrupt data
        if "imagecodecs" in str(error):
            # A compression tifffile cannot decode without the optional imagecodecs package (e.g. LZW):
            # libtiff inside OpenCV decodes it, at full bit depth.
            return bgr_to_rgb(decode_with_opencv(path, data, cv2.IMREAD_UNCHANGED))
        raise ImageReadError(f"{path}: corrupt or truncated TIFF ({error}); re-export the file.") from error
    if photometric == tifffile.PHOTOMETRIC.SEPARATED:
        raise ImageReadError(f"{path}: is a CMYK TIFF; convert it to RGB first.")
    if photometric not in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE):
        raise ImageReadError(f"{path}: TIFF colour model {photometric.name} is not supported; save it as RGB or greyscale.")
    if planar == tifffile.PLANARCONFIG.SEPARATE and samples > 1 and image.ndim == 3:
        image = np.moveaxis(image, 0, -1)
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        if not np.issubdtype(image.dtype, np.unsignedinteger):
            raise ImageReadError(f"{path}: inverted (min-is-white) float TIFF is not supported; save it as RGB.")
        image = np.iinfo(image.dtype).max - image
    return image


def normalise_ldr(path: Path, image: np.ndarray) -> np.ndarray:
    """Scale integer samples by their full range; keep float samples, which must lie in [0, 1]."""
    if image.dtype == np.uint8 or image.dtype == np.uint16:
        opaque = float(np.iinfo(image.dtype).max)
        rgb = to_rgb(path, image, opaque)
        return rgb.astype(np.float32) / np.float32(opaque)
    if image.dtype in (np.float16, np.float32, np.float64):
        rgb = to_rgb(path, image, 1.0).astype(np.float32)
        if not np.all(np.isfinite(rgb)):
            raise ImageReadError(f"{path}: contains NaN or infinite values; re-export the image.")
        if rgb.size and (rgb.min() < 0.0 or rgb.max() > 1.0):
            raise ImageReadError(
                f"{path}: float values span [{rgb.min():g}, {rgb.max():g}], outside [0, 1]; an LDR exposure is "
                "expected (use read_radiance for HDR files)."
            )
        return rgb
    raise ImageReadError(f"{path}: sample type {image.dtype} is not supported; use 8- or 16-bit integers or float.")


def read_ldr(path: str | os.PathLike) -> np.ndarray:
    """Read an LDR exposure as float32 (H, W, 3) RGB in [0, 1], at full bit depth.

    8-bit data is divided by 255, 16-bit by 65535; float TIFF is kept. Greyscale is replicated to
    RGB and an opaque alpha channel is dropped. Raises :class:`ImageReadError` for missing, corrupt,
    truncated, transparent, CMYK or unsupported files, and :class:`InputError` for images smaller
    than 8x8 pixels.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LDR_SUFFIXES:
        raise ImageReadError(f"{path}: unsupported LDR format {suffix!r}; use one of {', '.join(LDR_SUFFIXES)}.")
    data = read_bytes(path)
    if suffix in TIFF_SUFFIXES:
        image = decode_tiff(path, data)
    else:
        image = bgr_to_rgb(decode_with_opencv(path, data, cv2.IMREAD_UNCHANGED))
    check_size(path, image)
    return normalise_ldr(path, image)


def write_ldr(path: str | os.PathLike, image: np.ndarray, bits: int = 16, overwrite: bool = False) -> Path:
    """Write float RGB (H, W, 3) in [0, 1] as an 8- or 16-bit TIFF or PNG, atomically; return the path.

    Values are rounded to the nearest code, so ``read_ldr`` returns exactly ``round(x * max) / max``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TIFF_SUFFIXES + (".png",):
        raise OutputError(f"{path}: write_ldr writes .tif, .tiff or .png, not {suffix!r}.")
    if bits not in (8, 16):
        raise InputError(f"bits={bits!r}: must be 8 or 16.")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{path}: image must be (H, W, 3) RGB, got shape {image.shape}.")
    if not np.all(np.isfinite(image)):
        raise InputError(f"{path}: image contains NaN or infinite values; nothing was written.")
    dtype = np.uint8 if bits == 8 else np.uint16
    top = np.iinfo(dtype).max
    codes = np.round(np.clip(image.astype(np.float64), 0.0, 1.0) * top).astype(dtype)
    with atomic_path(path, overwrite) as temporary:
        if suffix in TIFF_SUFFIXES:
            tifffile.imwrite(temporary, codes, photometric="rgb", compression="zlib")
        elif not cv2.imwrite(str(temporary), np.ascontiguousarray(codes[..., ::-1])):
            raise OutputError(f"{path}: OpenCV could not write the PNG.")
    return path
