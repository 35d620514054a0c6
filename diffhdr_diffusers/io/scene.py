"""The one scanner of a scene folder, used by ``load_bracket`` (merge, evaluate) and the dataset loaders.

A scene folder holds 2 to 9 exposures (or exactly ``num_images`` when a caller needs a count), at
most one exposure file and at most one ground truth. The rules, in one place:

- **Frames**: files with an LDR suffix (:data:`~.formats.LDR_SUFFIXES`) or a camera RAW suffix
  (:data:`~.formats.RAW_SUFFIXES`), any letter case; one folder holds one kind. Hidden files,
  ``Thumbs.db``/``desktop.ini`` and files of other kinds (notes, sidecars) are ignored.
- **Order**: the frames are sorted by exposure, short to long, with a note when that changes their
  name order (``short``/``medium``/``long`` by meaning, otherwise natural order of the file names,
  ``2.tif`` before ``10.tif``, letter case ignored). An exposure file lists its EVs in name order.
- **Exposures**: ``exposure.txt`` (EV), ``exposure_times.txt`` (seconds) or
  ``relative_exposures.txt`` (ratios), names in any letter case; else EXIF. Two exposure files are an
  error; EXIF that contradicts the exposure file is a warning (the file wins).
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
    EXPLICIT_EXPOSURES_HINT,
    EXPOSURE_TIMES_TXT,
    EXPOSURE_TXT,
    RELATIVE_EXPOSURES_TXT,
    exif_contradiction,
    exposures_from_exif,
    read_exposure_times_txt,
    read_exposure_txt,
    read_relative_exposures_txt,
    sort_by_exposure,
)
from .formats import (
    GROUND_TRUTH_NAME,
    IGNORED_NAMES,
    LDR_SUFFIXES,
    MAX_FRAMES,
    MIN_FRAMES,
    NAMED_ORDER,
    RADIANCE_SUFFIXES,
    RAW_SUFFIXES,
)

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
        images: the frames (LDR images or RAW files) in name order (``short``/``medium``/``long`` by
            meaning, else natural order); :func:`scene_exposures` sorts them by exposure.
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


def is_raw(path: Path) -> bool:
    """Whether ``path`` has a camera RAW suffix."""
    return path.suffix.lower() in RAW_SUFFIXES


def is_frame(path: Path) -> bool:
    """Whether ``path`` can be a bracket frame: an LDR image or a camera RAW file."""
    return is_ldr(path) or is_raw(path)


def check_one_kind(paths: Sequence[Path], where: str) -> None:
    """Raise :class:`InputError` when ``paths`` mix camera RAW files and LDR images (one bracket holds one kind)."""
    raws = [path for path in paths if is_raw(path)]
    if raws and len(raws) != len(paths):
        others = [path for path in paths if not is_raw(path)]
        raise InputError(
            f"{where}mixes RAW files ({_names(raws)}) and LDR images ({_names(others)}); a bracket is all RAW or "
            "all LDR: use one kind (move the other out of the folder)."
        )


def check_frame_count(count: int, num_images: int | None, where: str, names: str, kind: str = "frames") -> None:
    """Raise :class:`InputError` unless ``count`` frames suit a bracket (``num_images`` exactly, else 2 to 9)."""
    if num_images is not None and count != num_images:
        raise InputError(f"{where}expected {num_images} {kind}, found {count}: {names}; this needs exactly "
                         f"{num_images} exposures of the scene.")
    if num_images is None and not MIN_FRAMES <= count <= MAX_FRAMES:
        found = "no frames found" if count == 0 else f"{count} frame{'s' if count > 1 else ''} ({names})"
        raise InputError(
            f"{where}{found}; a bracket holds {MIN_FRAMES} to {MAX_FRAMES} exposures of one scene "
            f"({', '.join(LDR_SUFFIXES)} images or camera RAW files)."
        )


def is_radiance(path: Path) -> bool:
    """Whether ``path`` has a radiance suffix."""
    return path.suffix.lower() in RADIANCE_SUFFIXES


def is_exposure_file(path: Path) -> bool:
    """Whether ``path`` is named like one of the exposure files (any letter case)."""
    return path.name.lower() in EXPOSURE_READERS


def is_scene_folder(folder: Path) -> bool:
    """A folder is a scene when it holds an exposure file, a frame (LDR or RAW) or a radiance file."""
    return any(is_exposure_file(path) or is_frame(path) or is_radiance(path) for path in scene_entries(folder))


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


def scan_scene(folder: str | Path, num_images: int | None = None) -> SceneScan:
    """Find a scene folder's frames, exposure file and ground truth; raise :class:`InputError` naming the fix.

    ``num_images``: the number of frames required, or ``None`` for any bracket of 2 to 9.
    """
    folder = Path(folder)
    entries = scene_entries(folder)
    images = [path for path in entries if is_frame(path)]
    check_one_kind(images, f"{folder}: ")
    kind = "RAW files" if any(is_raw(path) for path in images) else "LDR images"
    check_frame_count(len(images), num_images, f"{folder}: ", _names(images), kind)
    exposure_files = [path for path in entries if is_exposure_file(path)]
    if len(exposure_files) > 1:
        raise InputError(f"{folder}: several exposure files ({_names(exposure_files)}); keep only one.")
    ground_truth = find_ground_truth(folder, [path for path in entries if is_radiance(path)])
    return SceneScan(folder, tuple(order_images(images)), exposure_files[0] if exposure_files else None, ground_truth)


def read_exposure_file(path: Path) -> list[float]:
    """The EVs of an exposure file (its kind from its name, any letter case)."""
    return EXPOSURE_READERS[path.name.lower()](path)


def exposures_from_file(
    exposure_file: Path, frames: Sequence[Path], listed: Sequence[Path] | None = None
) -> tuple[list[float], list[str]]:
    """The EVs of ``frames`` from ``exposure_file``, which lists one EV per frame of ``listed`` (its folder's
    frames in name order; default ``frames``), and a warning when the frames' EXIF contradicts it."""
    listed = list(frames if listed is None else listed)
    values = read_exposure_file(exposure_file)
    if len(values) != len(listed):
        raise ExposureError(
            f"{exposure_file}: {len(values)} exposures for {len(listed)} images ({_names(listed)}); "
            "give exactly one EV per image, in name order."
        )
    by_frame = dict(zip(listed, values))
    exposures = [by_frame[frame] for frame in frames]
    warning = exif_contradiction(list(frames), exposures, str(exposure_file))
    return exposures, [warning] if warning else []


def order_by_exposure(
    images: Sequence[Path], exposure_file: Path | None, where: Path | str, listed: Sequence[Path] | None = None
) -> tuple[list[Path], list[float], str, list[str], list[str]]:
    """``(frames short to long, their EVs, where the EVs came from, warnings, notes)`` from an exposure file or EXIF.

    The exposure file wins (a contradicting EXIF is a warning); without one, EXIF gives the exposures.
    Equal exposures raise :class:`ExposureError`; a changed order is a note.
    """
    images = list(images)
    if exposure_file is not None:
        exposures, warnings = exposures_from_file(exposure_file, images, listed)
        source = str(exposure_file)
    else:
        try:
            exposures = exposures_from_exif(images)
        except ExposureError as error:
            folder = Path(where)
            other_text = [path.name for path in scene_entries(folder) if path.suffix.lower() == ".txt"] if folder.is_dir() else []
            hint = f" (found {', '.join(other_text)}, which is not a recognised name)" if other_text else ""
            raise ExposureError(
                f"{where}: no {EXPOSURE_TXT}{hint} and no usable EXIF ({str(error).split(';')[0]}); add {EXPOSURE_TXT} with one EV "
                f"per line in name order, or {EXPLICIT_EXPOSURES_HINT}."
            ) from error
        warnings, source = [], f"{where} (EXIF)"
    relative = exposure_file is None or exposure_file.name.lower() != EXPOSURE_TXT
    images, exposures, notes = sort_by_exposure(images, exposures, source, relative)
    return images, exposures, source, warnings, notes


def scene_exposures(scan: SceneScan) -> tuple[list[Path], list[float], str]:
    """The scene's frames sorted short to long, their EVs and where the EVs came from.

    The exposure file wins; without one, EXIF gives the exposures. (:func:`order_by_exposure` also
    returns the warnings and notes, which :func:`~.bracket.load_bracket` keeps.)
    """
    images, exposures, source, _, _ = order_by_exposure(scan.images, scan.exposure_file, scan.folder)
    return images, exposures, source
