"""Load an exposure bracket from a Kalantari-style scene folder or from image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ExposureError, InputError
from .exposures import (
    EXPOSURE_TIMES_TXT,
    EXPOSURE_TXT,
    RELATIVE_EXPOSURES_TXT,
    exposures_from_exif,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
    validate_exposures,
)
from .ldr import LDR_SUFFIXES, read_ldr
from .radiance import RADIANCE_SUFFIXES

GROUND_TRUTH_NAME = "HDRImg.hdr"
NAMED_ORDER = ("short", "medium", "long")
EXPOSURE_READERS = {
    EXPOSURE_TXT: read_exposure_txt,
    EXPOSURE_TIMES_TXT: read_exposure_times_txt,
    RELATIVE_EXPOSURES_TXT: read_relative_exposures_txt,
}
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


@dataclass
class Bracket:
    """An exposure bracket ready to merge.

    Attributes:
        images: float32 (H, W, 3) RGB arrays in [0, 1], ordered short to long.
        exposures: EV stops of each image (strictly increasing).
        paths: the image files, in the same order.
        ground_truth: the scene's reference radiance file (``HDRImg.hdr`` or a single ``.hdr``/``.exr``), if any.
        name: the scene folder name, or a name derived from the files.
    """

    images: list[np.ndarray]
    exposures: list[float]
    paths: list[Path]
    ground_truth: Path | None
    name: str


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(path.name for path in paths) or "none"


def _order_images(images: list[Path]) -> list[Path]:
    """Order scene images as short/medium/long when so named, otherwise by file name."""
    by_stem = {path.stem.lower(): path for path in images}
    if len(images) == len(NAMED_ORDER) and set(by_stem) == set(NAMED_ORDER):
        return [by_stem[name] for name in NAMED_ORDER]
    return sorted(images, key=lambda path: path.name)


def _ground_truth(folder: Path, radiance_files: list[Path]) -> Path | None:
    if not radiance_files:
        return None
    named = [path for path in radiance_files if path.name == GROUND_TRUTH_NAME]
    if len(radiance_files) == 1 or len(named) == 1:
        if len(radiance_files) > 1:
            extra = [path for path in radiance_files if path not in named]
            raise InputError(f"{folder}: unexpected radiance files besides {GROUND_TRUTH_NAME}: {_names(extra)}; remove them.")
        return (named or radiance_files)[0]
    raise InputError(
        f"{folder}: several radiance files ({_names(radiance_files)}) and none named {GROUND_TRUTH_NAME}; "
        "keep one ground truth per scene."
    )


def _scan_scene(folder: Path, num_images: int) -> tuple[list[Path], Path | None, Path | None]:
    """Return the scene's ordered images, its exposure file (or None) and its ground truth (or None)."""
    entries = sorted(path for path in folder.iterdir() if not path.name.startswith(".") and path.name.lower() not in IGNORED_NAMES)
    images = [path for path in entries if path.is_file() and path.suffix.lower() in LDR_SUFFIXES]
    radiance_files = [path for path in entries if path.is_file() and path.suffix.lower() in RADIANCE_SUFFIXES]
    exposure_files = [path for path in entries if path.name in EXPOSURE_READERS]
    if len(images) != num_images:
        raise InputError(
            f"{folder}: expected {num_images} LDR images (.tif, .tiff, .png, .jpg, .jpeg), found {len(images)}: "
            f"{_names(images)}; keep exactly one image per exposure in the scene folder."
        )
    if len(exposure_files) > 1:
        raise InputError(f"{folder}: several exposure files ({_names(exposure_files)}); keep only one.")
    return _order_images(images), (exposure_files[0] if exposure_files else None), _ground_truth(folder, radiance_files)


def _scene_exposures(folder: Path, images: list[Path], exposure_file: Path | None) -> tuple[list[Path], list[float], str]:
    """Exposures of a scene from its exposure file, else from EXIF (then sorted short to long)."""
    if exposure_file is not None:
        return images, EXPOSURE_READERS[exposure_file.name](exposure_file), str(exposure_file)
    try:
        exposures = exposures_from_exif(images)
    except ExposureError as error:
        other_text = [path.name for path in folder.iterdir() if path.suffix.lower() == ".txt"]
        hint = f" (found {', '.join(other_text)}, which is not a recognised name)" if other_text else ""
        raise ExposureError(
            f"{folder}: no {EXPOSURE_TXT}{hint} and no usable EXIF ({error}); add {EXPOSURE_TXT} with one EV per "
            "line, short to long, or pass the exposures explicitly."
        ) from error
    if len(set(exposures)) == len(exposures):
        # File names carry no exposure order here, and distinct EXIF exposures make sorting unambiguous.
        order = sorted(range(len(images)), key=exposures.__getitem__)
        images, exposures = [images[index] for index in order], [exposures[index] for index in order]
    return images, exposures, f"{folder} (EXIF)"


def _resolve_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    return [Path(item) for item in inputs]


def load_bracket(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    exposures: Sequence[float] | None = None,
    num_images: int = 3,
) -> Bracket:
    """Load a bracket from one scene folder or from ``num_images`` image files (short to long).

    A scene folder holds the LDR images (named ``short``/``medium``/``long``, otherwise ordered by
    file name), one exposure file (``exposure.txt`` in EV, ``exposure_times.txt`` in seconds, or
    ``relative_exposures.txt`` as ratios such as ``1:2:4``) or EXIF exposure data, and optionally a
    ground-truth ``HDRImg.hdr`` (or one other ``.hdr``/``.exr``). ``exposures`` (EV) overrides both.
    Hidden files and files of other kinds (notes, sidecars) are ignored; an extra image is an error.
    Image files passed directly take their exposures from ``exposures`` or their EXIF.

    Raises :class:`InputError` (or its subclasses :class:`ImageReadError`, :class:`ExposureError`)
    with the file and the fix for a wrong image count, extra files, unreadable images, images of
    different sizes and missing or invalid exposures.
    """
    paths = _resolve_inputs(inputs)
    ground_truth = None
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        name = folder.resolve().name
        images, exposure_file, ground_truth = _scan_scene(folder, num_images)
        if exposures is None:
            images, exposures, source = _scene_exposures(folder, images, exposure_file)
        else:
            source = "exposures argument"
    else:
        missing = [path for path in paths if not path.exists()]
        if missing:
            raise InputError(f"input not found: {', '.join(map(str, missing))}; check the paths.")
        folders = [path for path in paths if path.is_dir()]
        if folders:
            raise InputError(f"pass either one scene folder or {num_images} image files, not folders among files: {_names(folders)}.")
        if len(paths) != num_images:
            raise InputError(
                f"expected {num_images} images (short to long), got {len(paths)}: {', '.join(map(str, paths)) or 'none'}; "
                f"pass exactly {num_images} image files or one scene folder."
            )
        images = paths
        parents = {path.parent.resolve() for path in paths}
        name = parents.pop().name if len(parents) == 1 else paths[0].stem
        if exposures is None:
            exposures, source = exposures_from_exif(images), "EXIF of " + _names(images)
        else:
            source = "exposures argument"
    exposures = validate_exposures(exposures, len(images), source)
    arrays = [read_ldr(path) for path in images]
    sizes = {array.shape[:2] for array in arrays}
    if len(sizes) > 1:
        listing = ", ".join(f"{path.name} {array.shape[1]}x{array.shape[0]}" for path, array in zip(images, arrays))
        raise InputError(f"images differ in size ({listing}); all exposures of a bracket must have the same size.")
    return Bracket(images=arrays, exposures=exposures, paths=list(images), ground_truth=ground_truth, name=name)
