"""The one scanner of a scene folder, used by ``load_bracket`` (merge, evaluate) and the dataset loaders.

A scene folder holds ``num_images`` LDR exposures, at most one exposure file and at most one ground
truth. The rules, in one place:

- **Images**: files with an LDR suffix (:data:`~.formats.LDR_SUFFIXES`, any letter case). Hidden
  files, ``Thumbs.db``/``desktop.ini`` and files of other kinds (notes, sidecars) are ignored.
- **Order**: ``short``/``medium``/``long`` by meaning, otherwise natural order of the file names
  (``2.tif`` before ``10.tif``, letter case ignored). Without an exposure file, distinct EXIF
  exposures decide the order.
- **Exposures**: ``exposure.txt`` (EV), ``exposure_times.txt`` (seconds) or
  ``relative_exposures.txt`` (ratios), names in any letter case; else EXIF. Two exposure files are an error.
- **Ground truth**: the ``.hdr``/``.exr`` whose stem is ``HDRImg`` (any case; other radiance files
  are then ignored), else the only radiance file. Several candidates are an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExposureError, InputError
from .exposures import (
    EXPOSURE_TIMES_TXT,
    EXPOSURE_TXT,
    RELATIVE_EXPOSURES_TXT,
    exposures_from_exif,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
)
from .formats import GROUND_TRUTH_NAME, IGNORED_NAMES, LDR_SUFFIXES, NAMED_ORDER, RADIANCE_SUFFIXES

EXPOSURE_READERS = {
    EXPOSURE_TXT: read_exposure_txt,
    EXPOSURE_TIMES_TXT: read_exposure_times_txt,
    RELATIVE_EXPOSURES_TXT: read_relative_exposures_txt,
}
GROUND_TRUTH_STEM = Path(GROUND_TRUTH_NAME).stem.lower()


@dataclass(frozen=True)
class SceneScan:
    """The files of one scene folder, as the scanner found them (nothing decoded yet).

    Attributes:
        folder: the scene folder.
        images: the LDR exposures in name order (``short``/``medium``/``long`` by meaning, else natural order).
        exposure_file: the exposure file, or ``None`` (exposures then come from EXIF).
        ground_truth: the reference radiance file, or ``None``.
    """

    folder: Path
    images: tuple[Path, ...]
    exposure_file: Path | None
    ground_truth: Path | None


def natural_key(name: str) -> tuple:
    """Sort key that orders ``2.tif`` before ``10.tif`` and ignores letter case (ties: by the exact name)."""
    parts = tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name))
    return (parts, name)


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(path.name for path in paths) or "none"


def scene_entries(folder: Path) -> list[Path]:
    """The visible files of ``folder`` in natural order (hidden files and OS litter left out)."""
    files = [
        path for path in folder.iterdir()
        if not path.name.startswith(".") and path.name.lower() not in IGNORED_NAMES and path.is_file()
    ]
    return sorted(files, key=lambda path: natural_key(path.name))


def is_ldr(path: Path) -> bool:
    """Whether ``path`` has an LDR image suffix."""
    return path.suffix.lower() in LDR_SUFFIXES


def is_radiance(path: Path) -> bool:
    """Whether ``path`` has a radiance suffix."""
    return path.suffix.lower() in RADIANCE_SUFFIXES


def is_exposure_file(path: Path) -> bool:
    """Whether ``path`` is named like one of the exposure files (any letter case)."""
    return path.name.lower() in EXPOSURE_READERS


def is_scene_folder(folder: Path) -> bool:
    """A folder is a scene when it holds an exposure file, an LDR image or a radiance file."""
    return any(is_exposure_file(path) or is_ldr(path) or is_radiance(path) for path in scene_entries(folder))


def order_images(images: Sequence[Path]) -> list[Path]:
    """Short to long by name: ``short``/``medium``/``long`` when so named, otherwise natural order."""
    by_stem = {path.stem.lower(): path for path in images}
    if len(images) == len(NAMED_ORDER) and set(by_stem) == set(NAMED_ORDER):
        return [by_stem[name] for name in NAMED_ORDER]
    return sorted(images, key=lambda path: natural_key(path.name))


def find_ground_truth(folder: Path, radiance_files: Sequence[Path]) -> Path | None:
    """The scene's ground truth among ``radiance_files`` (see the module rules); ambiguity raises :class:`InputError`."""
    named = [path for path in radiance_files if path.stem.lower() == GROUND_TRUTH_STEM]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise InputError(f"{folder}: several ground truths ({_names(named)}); keep one ground truth per scene.")
    if len(radiance_files) > 1:
        raise InputError(
            f"{folder}: several radiance files ({_names(radiance_files)}) and none named {GROUND_TRUTH_NAME}; "
            "keep one ground truth per scene."
        )
    return radiance_files[0] if radiance_files else None


def scan_scene(folder: str | Path, num_images: int = 3) -> SceneScan:
    """Find a scene folder's images, exposure file and ground truth; raise :class:`InputError` naming the fix."""
    folder = Path(folder)
    entries = scene_entries(folder)
    images = [path for path in entries if is_ldr(path)]
    if len(images) != num_images:
        raise InputError(
            f"{folder}: expected {num_images} LDR images ({', '.join(LDR_SUFFIXES)}), found {len(images)}: "
            f"{_names(images)}; keep exactly one image per exposure in the scene folder."
        )
    exposure_files = [path for path in entries if is_exposure_file(path)]
    if len(exposure_files) > 1:
        raise InputError(f"{folder}: several exposure files ({_names(exposure_files)}); keep only one.")
    ground_truth = find_ground_truth(folder, [path for path in entries if is_radiance(path)])
    return SceneScan(folder, tuple(order_images(images)), exposure_files[0] if exposure_files else None, ground_truth)


def scene_exposures(scan: SceneScan) -> tuple[list[Path], list[float], str]:
    """The scene's images (short to long), their EVs as read (not yet validated) and where the EVs came from.

    The exposure file wins; without one, EXIF gives the exposures and, when they are distinct, the order.
    """
    images = list(scan.images)
    if scan.exposure_file is not None:
        return images, EXPOSURE_READERS[scan.exposure_file.name.lower()](scan.exposure_file), str(scan.exposure_file)
    try:
        exposures = exposures_from_exif(images)
    except ExposureError as error:
        other_text = [path.name for path in scene_entries(scan.folder) if path.suffix.lower() == ".txt"]
        hint = f" (found {', '.join(other_text)}, which is not a recognised name)" if other_text else ""
        raise ExposureError(
            f"{scan.folder}: no {EXPOSURE_TXT}{hint} and no usable EXIF ({error}); add {EXPOSURE_TXT} with one EV "
            "per line, short to long, or pass the exposures explicitly."
        ) from error
    if len(set(exposures)) == len(exposures):
        # Without an exposure file, distinct EXIF exposures order the bracket unambiguously.
        order = sorted(range(len(images)), key=exposures.__getitem__)
        images, exposures = [images[index] for index in order], [exposures[index] for index in order]
    return images, exposures, f"{scan.folder} (EXIF)"
