"""Linear DNG output: the merged radiance as a floating-point (or 16-bit) LinearRaw DNG for raw editors.

Layout (Adobe's): IFD0 is a small 8-bit sRGB preview carrying the DNG tags and the reference frame's
EXIF (camera, lens, date, orientation, exposure, in an Exif IFD); its one SubIFD holds the radiance
as LinearRaw RGB, uncompressed.

* **Colour.** The radiance is linear sRGB/Rec.709, so the "camera" is Rec.709 itself: ColorMatrix1
  maps XYZ (D65) to linear Rec.709, CalibrationIlluminant1 is D65 and AsShotNeutral is (1, 1, 1)
  (the data is white balanced already).
* **Scale.** The data is the radiance divided by ``2**k``, the smallest power of two not below its
  maximum, so it lies in [0, 1] (floats are scaled exactly). WhiteLevel is 1 for floats and 65535
  for 16 bits; BaselineExposure is ``k``, so ``radiance = data / white * 2**BaselineExposure`` and an
  editor's default rendering has the reference frame's brightness.
* **Precision.** float32 keeps the radiance exactly. LibRaw (rawpy) turns float DNGs into 14-bit
  integers relative to the maximum when it reads them (about 0.1 % steps at 1/16 of the maximum),
  which is a reader's limit, not the file's.

The file is written through :func:`~.atomic.atomic_path`: a failure leaves no partial DNG.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from pathlib import Path

import cv2
import numpy as np
import tifffile

from .. import __version__
from ..errors import ExposureError, InputError, OutputError
from .atomic import atomic_path
from .exposures import read_exif_tags
from .preview import tonemap_preview
from .radiance import check_radiance
from .raw import REC709_TO_XYZ

UNIQUE_CAMERA_MODEL = "diffhdr_diffusers linear Rec.709"
PREVIEW_SIZE = 256
"""Longest side of the embedded preview, in pixels."""

D65 = 21  # CalibrationIlluminant code
LINEAR_RAW = 34892  # PhotometricInterpretation
EXIF_POINTER_PLACEHOLDER = 34664  # written by tifffile, then renamed ExifIFD (34665), which tifffile refuses to write
EXIF_IFD = 34665

# Tags copied from the reference frame: (code, exifread name without its IFD prefix).
IFD0_TAGS = ((271, "Make"), (272, "Model"), (274, "Orientation"), (306, "DateTime"), (315, "Artist"),
             (33432, "Copyright"))
EXIF_TAGS = ((33434, "ExposureTime"), (33437, "FNumber"), (34850, "ExposureProgram"), (34855, "ISOSpeedRatings"),
             (36867, "DateTimeOriginal"), (36868, "DateTimeDigitized"), (36880, "OffsetTime"),
             (36881, "OffsetTimeOriginal"), (37380, "ExposureBiasValue"), (37386, "FocalLength"),
             (37521, "SubSecTimeOriginal"), (41989, "FocalLengthIn35mmFilm"), (42033, "BodySerialNumber"),
             (42035, "LensMake"), (42036, "LensModel"))
_FORMATS = {1: "B", 3: "H", 4: "I", 5: "2I", 7: "B", 9: "i", 10: "2i"}  # TIFF type -> struct code per value
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 9: 4, 10: 8}


def _rationals(values, signed: bool = True, denominator: int = 1_000_000) -> list[int]:
    out = []
    for value in np.ravel(values):
        out += [round(float(value) * denominator), denominator]
    return out if signed else [abs(number) for number in out]


def _exif_values(tags: dict) -> tuple[list[tuple], list[tuple]]:
    """(IFD0 entries, Exif IFD entries) as ``(code, type, values)`` from exifread's tags of the source."""
    def entries(table, prefixes):
        found = []
        for code, name in table:
            tag = next((tags[f"{prefix} {name}"] for prefix in prefixes if f"{prefix} {name}" in tags), None)
            if tag is None or tag.field_type not in (*_FORMATS, 2):
                continue
            if tag.field_type == 2:
                values = str(tag.values).strip()
            elif tag.field_type in (5, 10):
                values = [number for ratio in tag.values for number in (ratio.num, ratio.den)]
            else:
                values = list(tag.values)
            if values or values == 0:
                found.append((code, tag.field_type, values))
        return found

    return entries(IFD0_TAGS, ("Image",)), entries(EXIF_TAGS, ("EXIF", "Image"))


def _ifd_bytes(entries: list[tuple], offset: int) -> bytes:
    """A little-endian TIFF IFD at file ``offset`` holding ``(code, type, values)`` entries, with its values."""
    entries = sorted(entries)
    head = 2 + 12 * len(entries) + 4
    table, data = [struct.pack("<H", len(entries))], b""
    for code, kind, values in entries:
        if kind == 2:
            payload = values.encode("ascii", "replace") + b"\0"
        else:
            payload = struct.pack("<" + _FORMATS[kind][-1] * len(values), *values)
        count = len(payload) // _SIZES[kind]
        if len(payload) <= 4:
            field = payload.ljust(4, b"\0")
        else:
            field = struct.pack("<I", offset + head + len(data))
            data += payload + b"\0" * (len(payload) % 2)
        table.append(struct.pack("<HHI", code, kind, count) + field)
    return b"".join(table) + struct.pack("<I", 0) + data


def append_exif_ifd(path: Path, entries: list[tuple]) -> None:
    """Append an Exif IFD to the DNG at ``path`` and point IFD0's placeholder entry at it."""
    with tifffile.TiffFile(path) as tiff:
        value_offset = tiff.pages.first.tags[EXIF_POINTER_PLACEHOLDER].valueoffset
    with path.open("r+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        offset = end + end % 2
        handle.write(b"\0" * (offset - end) + _ifd_bytes(entries + [(36864, 7, list(b"0231"))], offset))
        handle.seek(value_offset - 8)
        handle.write(struct.pack("<HHII", EXIF_IFD, 4, 1, offset))


def _preview(radiance: np.ndarray) -> np.ndarray:
    """The embedded preview: the radiance shrunk (area average, in linear light) to PREVIEW_SIZE, tonemapped."""
    height, width = radiance.shape[:2]
    scale = PREVIEW_SIZE / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        radiance = cv2.resize(radiance, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(tonemap_preview(radiance))


def write_dng(
    path: str | os.PathLike,
    radiance: np.ndarray,
    exif_source: str | os.PathLike | None = None,
    bits: int = 32,
    overwrite: bool = False,
) -> Path:
    """Write linear Rec.709 radiance (H, W, 3) as a LinearRaw DNG, float32 (``bits=32``) or 16-bit; atomic.

    ``exif_source``: the reference frame, whose camera, lens, date, orientation and exposure EXIF is
    copied (unreadable metadata there is skipped with a warning). See the module notes for the layout,
    colour tags and scale. Raises :class:`InputError` for non-finite or negative radiance or a bad
    ``bits``, and :class:`OutputError` for an existing file without ``overwrite`` or an unusable folder.
    """
    path = Path(path)
    if path.suffix.lower() != ".dng":
        raise OutputError(f"{path}: write_dng writes .dng files, not {path.suffix!r}.")
    if bits not in (16, 32):
        raise InputError(f"bits={bits!r}: a linear DNG holds float32 (32) or 16-bit integer (16) samples.")
    radiance = check_radiance(path, radiance)
    peak = float(radiance.max()) if radiance.size else 0.0
    stops = math.ceil(math.log2(peak)) if peak > 0 else 0
    normalised = radiance * np.float32(2.0 ** -stops)
    if bits == 32:
        data, white = normalised.astype(np.float32), 1
    else:
        data, white = np.round(np.clip(normalised, 0.0, 1.0) * 65535.0).astype(np.uint16), 65535
    ifd0_exif, exif = [], []
    if exif_source is not None:
        try:
            ifd0_exif, exif = _exif_values(read_exif_tags(Path(exif_source)))
        except ExposureError as error:
            warnings.warn(f"{path}: the reference frame's EXIF is not copied ({error})", stacklevel=2)
    version = (1, 4, 0, 0)
    tags = [
        (50706, "B", 4, version, True),
        (50707, "B", 4, version if bits == 32 else (1, 1, 0, 0), True),
        (50708, "s", 0, UNIQUE_CAMERA_MODEL, True),
        (50721, "2i", 9, _rationals(np.linalg.inv(REC709_TO_XYZ)), True),
        (50728, "2I", 3, _rationals([1, 1, 1], signed=False), True),
        (50730, "2i", 1, (stops, 1), True),
        (50778, "H", 1, (D65,), True),
        *[(code, kind, 0 if kind == 2 else len(values) // (2 if kind in (5, 10) else 1), values, True)
          for code, kind, values in ifd0_exif if code != 306],
    ]
    if exif:
        tags.append((EXIF_POINTER_PLACEHOLDER, "I", 1, (0,), True))
    date = next((values for code, _, values in ifd0_exif if code == 306), None)
    with atomic_path(path, overwrite) as temporary:
        with tifffile.TiffWriter(temporary) as tiff:
            tiff.write(_preview(radiance), photometric="rgb", subfiletype=1, subifds=1, metadata=None,
                       software=f"diffhdr_diffusers {__version__}", datetime=date, extratags=tags)
            tiff.write(data, photometric=LINEAR_RAW, subfiletype=0, metadata=None, software=False,
                       extratags=[(50717, "I", 1, (white,), True)])
        if exif:
            append_exif_ifd(Path(temporary), exif)
    return path
