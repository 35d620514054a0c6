"""Camera RAW files through LibRaw (rawpy): linear camera RGB, the white level at 1.0, and its Rec.709 matrix.

A RAW file is linear already, so a RAW bracket needs no response curve (the bracket says so with
``response_hint="linear"``). LibRaw does the camera-specific work, for DNG, CR2/CR3, NEF, ARW, RAF,
ORF and every other format it reads:

1. The black level is subtracted and the white level (saturation) scaled to 1.0 (the same for every
   frame: LibRaw's per-image "adjust maximum" is off, so exposure ratios stay those of the EXIF).
2. The camera's as-shot white balance is applied, normalised so that the smallest multiplier (usually
   green's) is 1; each channel is clipped at the white level, so a neutral at saturation reads (1, 1, 1).
3. The mosaic is demosaiced (or, with ``half_size``, each 2x2 block becomes one pixel: four times
   fewer pixels, no interpolation, much faster).
4. The camera's colour matrix maps camera RGB to linear sRGB/Rec.709 primaries (no transfer curve).

Brackets stop before step 4: they are merged in white-balanced camera RGB, where each channel clips
on its own, as the merge's saturation rules assume (in Rec.709 a clipped photosite leaks into every
channel through the matrix, below 1.0, with a wrong colour). The merged radiance then goes through
the matrix once (``Bracket.to_rec709``). :func:`read_raw` returns a single frame in Rec.709.

Frames keep the sensor's stored orientation, as LDR images keep theirs (the EXIF Orientation tag is
carried to outputs instead). LibRaw reports damage by printing, which no Python code can catch, so a
TIFF-based RAW (DNG, CR2, NEF, ARW, PEF, ...) has its structure checked first and a truncated one
raises our :class:`~diffhdr_diffusers.errors.ImageReadError` before LibRaw runs.
"""

from __future__ import annotations

import io
import os
import warnings as python_warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tifffile

from ..errors import ImageReadError, MissingDependencyError
from .decode import check_size, quiet_logger, read_bytes
from .formats import MAX_PIXELS, RAW_SUFFIXES

REC709_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                          [0.212671, 0.715160, 0.072169],
                          [0.019334, 0.119193, 0.950227]])
"""Linear sRGB/Rec.709 to CIE XYZ, D65 white (the matrix LibRaw and dcraw use for sRGB output)."""

TIFF_RAW_SIGNATURES = (b"II*\0", b"MM\0*")
"""Classic TIFF containers (DNG, CR2, NEF, ARW, PEF, SRW, ...), whose structure tifffile can check."""

OUTPUT_WHITE = 65535.0
"""LibRaw's 16-bit linear output puts the white level here (highlight mode "clip", no auto-brightening)."""


def _rawpy():
    try:
        import rawpy
    except ImportError as error:  # pragma: no cover - rawpy is an install requirement
        raise MissingDependencyError("reading RAW files needs rawpy (pip install 'rawpy>=0.28').") from error
    return rawpy


def check_raw_structure(path: Path, data: bytes) -> None:
    """For a TIFF-based RAW, check that its directories and every image's data lie inside the file.

    A damaged structure raises :class:`ImageReadError`. Other containers (CR3, RAF, ...), and TIFF
    layouts tifffile does not follow, are left to LibRaw.
    """
    if not data.startswith(TIFF_RAW_SIGNATURES):
        return
    damaged = f"{path}: corrupt or truncated RAW file ({{}}); copy it from the card again."
    try:
        with quiet_logger("tifffile"), tifffile.TiffFile(io.BytesIO(data)) as tiff:
            pages = list(tiff.pages)
            for page in list(pages):
                pages.extend(page.pages or [])  # SubIFDs: where DNG keeps its raw image
            ends = [offset + count for page in pages
                    for offset, count in zip(page.dataoffsets, page.databytecounts) if count]
    except tifffile.TiffFileError as error:  # tifffile's own finding of a broken directory
        raise ImageReadError(damaged.format(error)) from error
    except Exception:  # noqa: BLE001 - a layout tifffile cannot follow: LibRaw may still read it
        return
    if not ends:
        raise ImageReadError(damaged.format(f"no image in its {len(data)} bytes"))
    if max(ends) > len(data):
        raise ImageReadError(
            f"{path}: truncated RAW file ({len(data)} bytes, {max(ends) - len(data)} bytes of image data missing); "
            "copy it from the card again."
        )


def camera_to_rec709(raw, path: Path) -> tuple[np.ndarray, list[str]]:
    """The 3x3 matrix from LibRaw's white-balanced camera RGB to linear Rec.709, as LibRaw itself converts.

    A DNG's own matrix (LibRaw's ``cmatrix``, from ColorMatrix/ForwardMatrix and the illuminant) when it
    has one; otherwise the camera's XYZ matrix (LibRaw's table or the file's), rows normalised so that a
    neutral stays neutral. Without either, camera RGB is kept, with a warning.
    """
    embedded = np.asarray(raw.color_matrix, np.float64)[:3, :3]
    if path.suffix.lower() == ".dng" and embedded[0, 0] > 0.125:  # LibRaw's own test of an embedded matrix
        return embedded, []
    camera_from_xyz = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3, :3]
    if np.any(camera_from_xyz):
        camera_from_rec709 = camera_from_xyz @ REC709_TO_XYZ
        camera_from_rec709 /= camera_from_rec709.sum(axis=1, keepdims=True)
        return np.linalg.inv(camera_from_rec709), []
    return np.eye(3), [f"{path.name}: no colour matrix for this camera; the colours stay in camera RGB."]


@dataclass
class RawImage:
    """A decoded RAW frame.

    Attributes:
        camera_rgb: float32 (H, W, 3) white-balanced linear camera RGB in [0, 1], white level 1.0. Each
            channel clips on its own at 1.0 (where its photosites saturated), which is what a merge
            assumes of its frames, so RAW brackets are merged in this space.
        camera_to_rec709: (3, 3) matrix to linear sRGB/Rec.709: ``rec709 = camera_rgb @ camera_to_rec709.T``.
        white_balance: the four multipliers applied (LibRaw's order, R G B G2), as shot unless given.
        warnings: one line each (no as-shot white balance, no colour matrix).
    """

    camera_rgb: np.ndarray
    camera_to_rec709: np.ndarray
    white_balance: list[float]
    warnings: list[str] = field(default_factory=list)

    def rec709(self) -> np.ndarray:
        """The frame in linear Rec.709, float32 in [0, 1] (what LibRaw's linear sRGB output gives)."""
        return to_rec709(self.camera_rgb, self.camera_to_rec709, clip=True)


def to_rec709(camera_rgb: np.ndarray, camera_to_rec709: np.ndarray, clip: bool = False) -> np.ndarray:
    """Camera RGB (any range, e.g. merged radiance) to linear Rec.709: negatives (out of gamut) become 0,
    and with ``clip`` values above the white level become 1."""
    rec709 = np.asarray(camera_rgb, np.float32) @ camera_to_rec709.T.astype(np.float32)
    return np.clip(rec709, 0.0, 1.0 if clip else None).astype(np.float32)


def decode_raw(path: Path, data: bytes, half_size: bool = False, white_balance: list[float] | None = None) -> RawImage:
    """A RAW file's bytes to a :class:`RawImage`; ``path`` names the file in errors and warnings.

    ``white_balance``: multipliers to apply instead of the file's as-shot ones (a bracket applies its
    reference frame's to every frame, so that a camera's auto white balance cannot tint frames apart).
    """
    rawpy = _rawpy()
    check_raw_structure(path, data)
    warnings = []
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            if sizes.raw_height * sizes.raw_width > MAX_PIXELS:
                raise ImageReadError(f"{path}: claims {sizes.raw_width}x{sizes.raw_height} pixels; the file is corrupt.")
            if white_balance is None:
                white_balance = list(raw.camera_whitebalance)
                if not all(value > 0 for value in white_balance[:3]):
                    warnings.append(f"{path.name}: no as-shot white balance in the file; daylight white balance used.")
                    white_balance = list(raw.daylight_whitebalance)
            matrix, notes = camera_to_rec709(raw, path)
            # adjust_maximum_thr=0: LibRaw would otherwise take a frame's brightest value as its white
            # level when it lies within 75 % of it, which changes the scale from frame to frame.
            camera = raw.postprocess(
                gamma=(1, 1), no_auto_bright=True, output_bps=16, user_wb=list(white_balance),
                output_color=rawpy.ColorSpace.raw, highlight_mode=rawpy.HighlightMode.Clip,
                half_size=half_size, user_flip=0, adjust_maximum_thr=0.0,
            )
    except ImageReadError:
        raise
    except rawpy.LibRawError as error:
        reason = error.args[0].decode(errors="replace") if error.args and isinstance(error.args[0], bytes) else str(error)
        convert = "" if path.suffix.lower() == ".dng" else " or convert it to DNG"
        raise ImageReadError(
            f"{path}: LibRaw cannot read this RAW file ({type(error).__name__}: {reason}); it may be truncated, "
            f"damaged or from an unsupported camera: copy it from the card again{convert}."
        ) from error
    check_size(path, camera)
    return RawImage(camera.astype(np.float32) / np.float32(OUTPUT_WHITE), matrix, list(white_balance), warnings + notes)


def read_raw(path: str | os.PathLike, half_size: bool = False) -> np.ndarray:
    """Read a camera RAW file as linear sRGB/Rec.709 RGB, float32 (H, W, 3) in [0, 1], white level 1.0.

    See the module notes for what LibRaw applies (black and white levels, the camera's white balance,
    its colour matrix). ``half_size`` halves both sides without demosaicing. A missing, truncated or
    damaged file, or one LibRaw cannot read, raises :class:`ImageReadError` naming it. A fallback (no
    as-shot white balance, no colour matrix) is a Python warning here; brackets carry it in ``Bracket.warnings``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RAW_SUFFIXES:
        raise ImageReadError(f"{path}: {suffix!r} is not a camera RAW format; RAW files end in {', '.join(RAW_SUFFIXES[:8])}, ...")
    image = decode_raw(path, read_bytes(path), half_size)
    for warning in image.warnings:
        python_warnings.warn(warning, stacklevel=2)
    return image.rec709()


def raw_exposure(path: str | os.PathLike) -> tuple[float | None, float | None, float | None]:
    """(exposure time in s, f-number, ISO) from LibRaw's parsing of a RAW file's metadata; ``None`` where absent.

    Used where exifread cannot parse a format (CR3, RAF, ...). The pixels are not decoded.
    """
    rawpy = _rawpy()
    path = Path(path)
    check_raw_structure(path, read_bytes(path))
    try:
        with rawpy.RawPy() as raw:
            raw.open_file(str(path))
            other = raw.other
    except rawpy.LibRawError:
        return None, None, None
    positive = lambda value: float(value) if value and np.isfinite(value) and value > 0 else None
    return positive(other.shutter_speed), positive(other.aperture), positive(other.iso_speed)
