"""Low-dynamic-range images: read 8/16-bit TIFF, PNG and JPEG to float RGB in [0, 1]; write 8/16-bit.

The format is recognised from the file's signature, not its suffix. TIFF goes through ``tifffile``
(never Pillow, which drops 16-bit data to 8 bits). PNG goes through OpenCV with ``IMREAD_UNCHANGED``,
which keeps 16-bit samples, after :func:`~.png.clean_png` has checked its structure. JPEG (8-bit
only) goes through Pillow, whose libjpeg error manager reports damage instead of printing it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from ..errors import ImageReadError, InputError, OutputError
from .atomic import atomic_path
from .decode import bgr_to_rgb, check_size, decode_with_opencv, normalise_samples, quiet_logger, read_bytes
from .formats import LDR_SUFFIXES, TIFF_SUFFIXES
from .png import PNG_SIGNATURE, clean_png

JPEG_SIGNATURE = b"\xff\xd8\xff"
TIFF_SIGNATURES = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic and BigTIFF, both byte orders


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


def decode_jpeg(path: Path, data: bytes) -> np.ndarray:
    """A JPEG file's bytes to its 8-bit samples, (H, W) or (H, W, 3) RGB; ``path`` names the file in errors."""
    try:
        with quiet_logger("PIL"), Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            image.load()  # raises on truncated data (unless the caller set ImageFile.LOAD_TRUNCATED_IMAGES)
            if image.mode not in ("L", "RGB"):
                return np.asarray(image.convert("RGB"))  # CMYK and YCCK, as OpenCV converts them
            return np.asarray(image)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: corrupt, truncated or not a supported image (JPEG header unreadable); "
                             "re-export the file.") from None
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's errors for damaged data
        raise ImageReadError(f"{path}: corrupt, truncated or not a supported image (JPEG: {error}); "
                             "re-export the file.") from error


def decode_ldr_samples(path: Path, data: bytes) -> np.ndarray:
    """An LDR file's bytes to its stored samples (H, W[, C]), RGB(A) order, without scaling.

    The format comes from the signature; anything else raises :class:`ImageReadError` naming ``path``.
    """
    if data.startswith(TIFF_SIGNATURES):
        return decode_tiff(path, data)
    if data.startswith(PNG_SIGNATURE):
        return bgr_to_rgb(decode_with_opencv(path, clean_png(path, data), cv2.IMREAD_UNCHANGED))
    if data.startswith(JPEG_SIGNATURE):
        return decode_jpeg(path, data)
    raise ImageReadError(f"{path}: corrupt, truncated or not a supported image (not a TIFF, PNG or JPEG file); "
                         "re-export the file.")


def normalise_ldr(path: Path, image: np.ndarray) -> np.ndarray:
    """Scale stored samples to float32 RGB in [0, 1] (see :func:`~.decode.normalise_samples`)."""
    return normalise_samples(path, image)


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
    image = decode_ldr_samples(path, read_bytes(path))
    check_size(path, image)
    return normalise_samples(path, image)


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
