"""Finished photos: tone-mapped radiance as 8-bit JPEG, 8/16-bit PNG or TIFF, with EXIF, an sRGB profile and settings.

Every file carries:

- **an sRGB ICC profile** (Pillow's ``ImageCms.createProfile("sRGB")``): JPEG ``APP2``, PNG ``iCCP``,
  TIFF tag 34675;
- **the reference frame's camera EXIF** when ``reference`` names it: camera (Make, Model), lens
  (LensMake, LensModel, LensSpecification, FocalLength, FNumber), date (DateTime, DateTimeOriginal
  with sub-seconds and offset) and Orientation. The pixels are the reference's stored pixels (never
  rotated), so its Orientation stays right. Exposure time, ISO and bias are left out: they describe
  one frame, not the merge. JPEG ``APP1`` and PNG ``eXIf`` hold a full EXIF block; TIFF holds the
  same tags in its first IFD;
- **the tone mapping settings** (:func:`~diffhdr_diffusers.tonemapping.tonemap_settings`) as JSON
  after :data:`SETTINGS_PREFIX`: JPEG comment, PNG ``tEXt``, TIFF ImageDescription, read back by
  :func:`read_photo_settings`; and ``Software`` = diffhdr_diffusers and its version.

Writes are atomic (:mod:`.atomic`). JPEG goes through Pillow, PNG through OpenCV (16-bit too) with the
metadata chunks added here, TIFF through tifffile (deflate).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageCms, UnidentifiedImageError
from PIL.TiffImagePlugin import IFDRational

from ..errors import ExposureError, InputError, OutputError
from ..tonemapping import DEFAULT_OPERATOR, to_bits, tonemap, tonemap_settings
from .atomic import atomic_path
from .exposures import read_exif_tags
from .formats import JPEG_SUFFIXES, PNG_SUFFIXES, TIFF_SUFFIXES
from .png import PNG_SIGNATURE
from .radiance import check_radiance

PHOTO_SUFFIXES = JPEG_SUFFIXES + PNG_SUFFIXES + TIFF_SUFFIXES
SETTINGS_PREFIX = "diffhdr tonemap "
PNG_SETTINGS_KEY = b"diffhdr tonemap"
EXIF_IFD = 0x8769
KEPT_TAGS = {  # tag -> name; in IFD0 of the reference
    0x010F: "Make", 0x0110: "Model", 0x0112: "Orientation", 0x0132: "DateTime",
}
KEPT_EXIF_TAGS = {  # in the Exif IFD of the reference
    0x9003: "DateTimeOriginal", 0x9291: "SubsecTimeOriginal", 0x9011: "OffsetTimeOriginal",
    0x829D: "FNumber", 0x920A: "FocalLength", 0xA405: "FocalLengthIn35mmFilm",
    0xA433: "LensMake", 0xA434: "LensModel", 0xA432: "LensSpecification",
}
SOFTWARE_TAG = 0x0131


PROFILE_DATE = (2026, 1, 1, 0, 0, 0)


@functools.lru_cache(maxsize=1)
def srgb_icc_profile() -> bytes:
    """The bytes of an sRGB ICC profile: LittleCMS's built-in sRGB (through Pillow), made reproducible.

    LittleCMS stamps the creation time into the header, so every process would write different bytes
    (and a resumed batch would not be byte-identical). The date is fixed to :data:`PROFILE_DATE` and
    the profile ID (an MD5 of the profile with the flags, rendering intent and ID fields zeroed, ICC.1
    section 7.2.18) recomputed.
    """
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    profile[24:36] = struct.pack(">6H", *PROFILE_DATE)
    hashed = bytearray(profile)
    hashed[44:48], hashed[64:68], hashed[84:100] = bytes(4), bytes(4), bytes(16)
    profile[84:100] = hashlib.md5(hashed).digest()
    return bytes(profile)


def camera_exif(reference: str | os.PathLike | None) -> Image.Exif:
    """The camera tags (see module doc) of the ``reference`` frame's EXIF, plus ``Software``; empty plus
    ``Software`` when ``reference`` is None. A reference whose EXIF cannot be read gives a warning (not an
    error): the photo is still written, without camera tags."""
    from .. import __version__

    exif = Image.Exif()
    if reference is not None:
        try:
            with Image.open(reference) as image:
                source = image.getexif()
                source_exif = source.get_ifd(EXIF_IFD)
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
            try:  # a RAW frame (DNG, NEF, ...): Pillow does not open it, exifread reads its TIFF directories
                source, source_exif = _exifread_tags(Path(reference))
            except ExposureError as exif_error:
                source, error = None, exif_error
            if source is None:
                warnings.warn(f"{reference}: EXIF could not be read ({error}); the photo is written without camera "
                              "tags.", stacklevel=2)
                source = source_exif = {}
        exif.update({tag: source[tag] for tag in KEPT_TAGS if tag in source})
        kept = {tag: source_exif[tag] for tag in KEPT_EXIF_TAGS if tag in source_exif}
        if kept:
            exif.get_ifd(EXIF_IFD).update(kept)
    exif[SOFTWARE_TAG] = f"diffhdr_diffusers {__version__}"
    return exif


def _exifread_tags(path: Path) -> tuple[dict, dict]:
    """(IFD0, Exif IFD) camera tags of a file Pillow cannot open, by tag number, as Pillow holds them; ``(None,
    None)`` if exifread finds no tags at all. Exif tags a DNG writer put in IFD0 count as Exif tags."""
    ifd0, exif = {}, {}
    tags = read_exif_tags(path)
    if not tags:
        return None, None
    for key, tag in tags.items():
        directory = key.split(" ", 1)[0]
        if directory not in ("Image", "EXIF") or tag.field_type in (7, 1):
            continue
        if tag.field_type == 2:
            value = str(tag.values).strip()
        else:
            values = [IFDRational(item.num, item.den) if tag.field_type in (5, 10) else int(item) for item in tag.values]
            value = values[0] if len(values) == 1 else tuple(values)
        if directory == "Image" and tag.tag in KEPT_TAGS:
            ifd0[tag.tag] = value
        elif tag.tag in KEPT_EXIF_TAGS:
            exif[tag.tag] = value
    return ifd0, exif


def settings_text(settings: dict) -> str:
    """The settings as the text photos carry: :data:`SETTINGS_PREFIX` and sorted JSON."""
    return SETTINGS_PREFIX + json.dumps(settings, sort_keys=True)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _encode_png(pixels: np.ndarray, exif: Image.Exif, text: str) -> bytes:
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))
    if not ok:
        raise OutputError("OpenCV could not encode the PNG.")
    data = encoded.tobytes()
    header_end = len(PNG_SIGNATURE) + 8 + 13 + 4  # signature, then the IHDR chunk (length, type, 13 bytes, CRC)
    chunks = _png_chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(srgb_icc_profile()))
    chunks += _png_chunk(b"eXIf", exif.tobytes()[len(b"Exif\0\0"):])
    chunks += _png_chunk(b"tEXt", PNG_SETTINGS_KEY + b"\0" + text.encode("latin-1"))
    return data[:header_end] + chunks + data[header_end:]


def _tiff_tags(exif: Image.Exif) -> list[tuple]:
    """tifffile ``extratags`` for the camera tags, all in IFD0 (tifffile writes no Exif IFD)."""
    tags = []
    for tag, value in [*exif.items(), *exif.get_ifd(EXIF_IFD).items()]:
        if tag == SOFTWARE_TAG:
            continue
        if isinstance(value, str):
            tags.append((tag, "s", 0, value, True))
        elif tag == 0x0112 or tag == 0xA405:
            tags.append((tag, "H", 1, int(value), True))
        elif isinstance(value, tuple):
            tags.append((tag, "2I", len(value), [int(part) for item in value for part in _rational(item)], True))
        else:
            tags.append((tag, "2I", 1, _rational(value), True))
    return tags


def _rational(value) -> tuple[int, int]:
    numerator = getattr(value, "numerator", None)
    denominator = getattr(value, "denominator", None)
    if numerator is not None and denominator:
        return int(numerator), int(denominator)
    return int(round(float(value) * 10000)), 10000


def check_photo_options(path: str | os.PathLike, bits: int = 8, quality: int = 95) -> Path:
    """Check a photo's suffix, bit depth and JPEG quality before any work; raise :class:`OutputError` naming the fix.

    Front ends call it while parsing options, so a bad ``-o photo.jpg --bits 16`` fails before a merge.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PHOTO_SUFFIXES:
        raise OutputError(f"{path}: photos are written as {', '.join(PHOTO_SUFFIXES)}, not {path.suffix!r}.")
    if bits not in (8, 16):
        raise OutputError(f"{path}: bits must be 8 or 16, not {bits!r}.")
    if suffix in JPEG_SUFFIXES and bits != 8:
        raise OutputError(f"{path}: JPEG holds 8 bits only; write .png or .tif for 16 bits.")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise OutputError(f"{path}: JPEG quality must be an integer from 1 to 100, not {quality!r}.")
    return path


def write_tonemapped(path: str | os.PathLike, image: np.ndarray, settings: dict, *, bits: int = 8,
                     quality: int = 95, reference: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Write an already tone-mapped sRGB image (float in [0, 1], (H, W, 3)) as a photo; see :func:`write_photo`."""
    path = check_photo_options(path, bits, quality)
    suffix = path.suffix.lower()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or not np.all(np.isfinite(image)):
        raise InputError(f"{path}: a photo needs a finite (H, W, 3) RGB image, not shape {image.shape}; "
                         "nothing was written.")
    pixels = to_bits(image, bits)
    exif = camera_exif(reference)
    text = settings_text(settings)
    with atomic_path(path, overwrite) as temporary:
        if suffix in JPEG_SUFFIXES:
            Image.fromarray(pixels).save(temporary, "JPEG", quality=quality, exif=exif.tobytes(),
                                         icc_profile=srgb_icc_profile(), comment=text.encode("utf-8"))
        elif suffix in PNG_SUFFIXES:
            temporary.write_bytes(_encode_png(pixels, exif, text))
        else:
            tifffile.imwrite(temporary, pixels, photometric="rgb", compression="zlib", metadata=None,
                             description=text, software=exif[SOFTWARE_TAG], iccprofile=srgb_icc_profile(),
                             extratags=_tiff_tags(exif))
    return path


def write_photo(path: str | os.PathLike, radiance: np.ndarray, operator: str = DEFAULT_OPERATOR,
                exposure: float = 0.0, saturation: float = 1.0, detail: float = 1.0, *, bits: int = 8,
                quality: int = 95, reference: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Tone map linear radiance (:func:`~diffhdr_diffusers.tonemapping.tonemap`) and write it as a photo, atomically.

    The format comes from the suffix: ``.jpg``/``.jpeg`` (8-bit, ``quality`` 1-100), ``.png`` or
    ``.tif``/``.tiff`` (``bits`` 8 or 16). ``reference`` is the bracket's reference frame, whose camera
    EXIF the photo carries (see the module doc). Raises
    :class:`~diffhdr_diffusers.errors.InputError` for non-finite or negative radiance or bad tone
    mapping settings, and :class:`OutputError` for a bad suffix, bit depth or quality, an existing
    file without ``overwrite`` or an unusable folder; nothing is written then.
    """
    path = check_photo_options(path, bits, quality)
    settings = tonemap_settings(operator, exposure, saturation, detail)
    radiance = check_radiance(path, radiance)
    image = tonemap(radiance, operator, exposure, saturation, detail)
    return write_tonemapped(path, image, settings, bits=bits, quality=quality, reference=reference,
                            overwrite=overwrite)


def read_photo_settings(path: str | os.PathLike) -> dict | None:
    """The tone mapping settings a photo written here carries, or None if it carries none."""
    path = Path(path)
    with Image.open(path) as image:
        if image.format == "TIFF":
            text = image.tag_v2.get(270)
        elif image.format == "PNG":
            text = image.info.get(PNG_SETTINGS_KEY.decode())
        else:
            comment = image.info.get("comment")
            text = comment.decode("utf-8") if isinstance(comment, bytes) else comment
    if not isinstance(text, str) or not text.startswith(SETTINGS_PREFIX):
        return None
    return json.loads(text[len(SETTINGS_PREFIX):])
