"""Decode the file bytes stored in a dataset row, exactly as the ``io`` readers decode files.

The same decoders as :func:`~diffhdr_diffusers.io.read_ldr` and :func:`~diffhdr_diffusers.io.read_radiance`:
16-bit TIFF/PNG keep all 16 bits (``code / 65535``); ``.hdr`` and ``.exr`` decode from memory; float
TIFF radiance (written by :func:`~diffhdr_diffusers.data.crops.prepare_crops`) goes through tifffile.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import tifffile

from ..errors import ImageReadError
from ..io.decode import check_size, normalise_samples, to_rgb
from ..io.formats import TIFF_SUFFIXES
from ..io.ldr import decode_ldr_samples
from ..io.radiance import decode_exr, decode_hdr


def decode_ldr_codes(data: bytes, name: str | Path) -> np.ndarray:
    """The stored samples of an LDR file (uint8/uint16/float, (H, W, 3) RGB), without scaling."""
    path = Path(name)
    image = decode_ldr_samples(path, data)
    check_size(path, image)
    opaque = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    return to_rgb(path, image, opaque)


def decode_ldr(data: bytes, name: str | Path) -> np.ndarray:
    """An LDR file's bytes to float32 (H, W, 3) RGB in [0, 1], as ``read_ldr`` returns it."""
    return normalise_samples(Path(name), decode_ldr_codes(data, name))


def decode_radiance(data: bytes, name: str | Path) -> np.ndarray:
    """A radiance file's bytes (``.hdr``, ``.exr`` or float ``.tif``) to float32 (H, W, 3) linear RGB."""
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix == ".hdr":
        radiance = decode_hdr(path, data)
    elif suffix == ".exr":
        radiance = decode_exr(path, data)
    elif suffix in TIFF_SUFFIXES:
        try:
            radiance = tifffile.imread(io.BytesIO(data))
        except Exception as error:  # tifffile raises many types on corrupt data
            raise ImageReadError(f"{path}: corrupt or truncated TIFF ({error}).") from error
        if radiance.dtype.kind != "f" or radiance.ndim != 3 or radiance.shape[2] != 3:
            raise ImageReadError(f"{path}: a radiance TIFF must be float RGB, got {radiance.dtype} {radiance.shape}.")
    else:
        raise ImageReadError(f"{path}: unsupported radiance format {suffix!r}; use .hdr, .exr or float .tif.")
    if not np.all(np.isfinite(radiance)):
        raise ImageReadError(f"{path}: contains NaN or infinite values; the file is corrupt.")
    return np.ascontiguousarray(np.maximum(radiance, 0.0), dtype=np.float32)


def encode_tiff(array: np.ndarray) -> bytes:
    """Losslessly encode an (H, W, 3) uint8/uint16/float32 array as TIFF bytes."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(array), photometric="rgb")
    return buffer.getvalue()
