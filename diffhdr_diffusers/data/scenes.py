"""Find and check Kalantari-layout scene folders: three LDR exposures, ``exposure.txt``, ``HDRImg.hdr``.

Checking reads only file headers, so it is cheap; any problem raises :class:`DatasetError` naming the
scene and the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import OpenEXR
import tifffile
from PIL import Image

from ..errors import DatasetError, ExposureError
from ..io import read_exposure_txt, validate_exposures

LDR_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
HDR_SUFFIXES = (".hdr", ".exr")
GROUND_TRUTH_STEM = "hdrimg"
EXPOSURE_FILE = "exposure.txt"
NAMED_ORDER = ("short", "medium", "long")
SPLIT_FOLDERS = {"train": ("training", "train"), "test": ("test", "testing")}


@dataclass(frozen=True)
class SceneFiles:
    """The checked files of one scene.

    Attributes:
        scene: the scene id, its folder relative to the split folder (``001``, ``PAPER/BarbequeDay``).
        folder: the scene folder.
        ldr_paths: the LDR exposures, short to long.
        exposures: EV of each exposure, as listed in ``exposure.txt``.
        hdr_path: the ground-truth radiance, or ``None``.
        height, width: the image size shared by all files.
        stamp: (size, mtime_ns) of every file, so a cached dataset notices changed files.
    """

    scene: str
    folder: Path
    ldr_paths: tuple[Path, ...]
    exposures: tuple[float, ...]
    hdr_path: Path | None
    height: int
    width: int
    stamp: tuple[tuple[int, int], ...]


def natural_key(name: str) -> list:
    """Sort key that orders ``2.tif`` before ``10.tif``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")]


def is_scene_folder(folder: Path) -> bool:
    """A folder is a scene when it holds an ``exposure.txt``, an LDR image or a radiance file."""
    return any(
        path.name.lower() == EXPOSURE_FILE or path.suffix.lower() in LDR_SUFFIXES + HDR_SUFFIXES
        for path in _files(folder)
    )


def split_folder(root: str | os.PathLike, split: str | None) -> Path:
    """The folder holding a split's scenes: ``root/Training`` for ``"train"``, ``root/Test`` for ``"test"``
    (any letter case, also ``train``/``testing``), else ``root`` itself when it has no split folders."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: dataset folder not found; give the folder holding Training/ and Test/ or the scene folders."
        )
    if split is None:
        return root
    names = SPLIT_FOLDERS.get(split.lower(), (split.lower(),))
    children = {path.name.lower(): path for path in root.iterdir() if path.is_dir()}
    for name in names:
        if name in children:
            return children[name]
    present = sorted(
        path.name for key, path in children.items() if any(key in aliases for aliases in SPLIT_FOLDERS.values())
    )
    if present:
        raise DatasetError(
            f"{root}: has {', '.join(present)} but no folder for split {split!r}; expected one of {', '.join(names)}."
        )
    return root


def find_scene_folders(folder: Path) -> list[Path]:
    """Scene folders at any depth below ``folder`` (groupings such as ``PAPER/`` and ``EXTRA/`` are walked)."""
    if is_scene_folder(folder):
        return [folder]
    scenes = []
    for child in sorted(
        (path for path in folder.iterdir() if path.is_dir() and not path.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    ):
        scenes += find_scene_folders(child)
    return scenes


def order_ldr_files(paths: list[Path]) -> list[Path]:
    """Short to long: ``short``/``medium``/``long`` by name, otherwise natural sort order."""
    by_stem = {path.stem.lower(): path for path in paths}
    if len(paths) == len(NAMED_ORDER) and set(by_stem) == set(NAMED_ORDER):
        return [by_stem[name] for name in NAMED_ORDER]
    return sorted(paths, key=lambda path: natural_key(path.name))


def _radiance_header_size(path: Path) -> tuple[int, int]:
    with path.open("rb") as handle:
        head = handle.read(4096)
    match = re.search(rb"\n([-+])Y (\d+) ([-+])X (\d+)", head)
    if not head.startswith(b"#?") or match is None:
        raise DatasetError(f"{path}: not a readable Radiance .hdr file (no '-Y H +X W' header); re-export it.")
    return int(match.group(2)), int(match.group(4))


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image or radiance file, from its header only."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages.first
                return int(page.imagelength), int(page.imagewidth)
        if suffix == ".hdr":
            return _radiance_header_size(path)
        if suffix == ".exr":
            with OpenEXR.File(str(path), header_only=True) as exr:
                low, high = exr.header()["dataWindow"]
            return int(high[1] - low[1] + 1), int(high[0] - low[0] + 1)
        with Image.open(path) as image:  # reads the header only; pixels are not decoded
            return image.height, image.width
    except DatasetError:
        raise
    except Exception as error:  # the header readers raise many types on corrupt files
        raise DatasetError(
            f"{path}: cannot read the image header ({error}); the file is corrupt or truncated."
        ) from error


def _ground_truth(scene: str, folder: Path, files: list[Path]) -> Path | None:
    candidates = [path for path in files if path.suffix.lower() in HDR_SUFFIXES]
    named = [path for path in candidates if path.stem.lower() == GROUND_TRUTH_STEM]
    if named:
        return sorted(named)[0]
    if len(candidates) > 1:
        names = ", ".join(sorted(path.name for path in candidates))
        raise DatasetError(
            f"scene {scene} ({folder}): several radiance files ({names}); name the ground truth HDRImg.hdr."
        )
    return candidates[0] if candidates else None


def check_scene(folder: Path, scene: str, num_exposures: int = 3, require_hdr: bool = True) -> SceneFiles:
    """Check one scene folder and return its files; raise :class:`DatasetError` naming the scene and file."""
    files = _files(folder)
    where = f"scene {scene} ({folder})"
    ldr_paths = order_ldr_files([path for path in files if path.suffix.lower() in LDR_SUFFIXES])
    if len(ldr_paths) != num_exposures:
        found = ", ".join(path.name for path in ldr_paths) or "none"
        raise DatasetError(
            f"{where}: found {len(ldr_paths)} LDR images ({found}); a scene needs exactly {num_exposures} "
            f"(.tif/.png/.jpg, short to long). Remove extra files or add the missing exposures."
        )
    exposure_files = [path for path in files if path.name.lower() == EXPOSURE_FILE]
    if not exposure_files:
        raise DatasetError(f"{where}: missing file {folder / EXPOSURE_FILE}; write one EV per line, short to long.")
    try:
        exposures = validate_exposures(read_exposure_txt(exposure_files[0]), num_exposures, str(exposure_files[0]))
    except ExposureError as error:
        raise DatasetError(f"{where}: {error}") from error
    hdr_path = _ground_truth(scene, folder, files)
    if hdr_path is None and require_hdr:
        raise DatasetError(
            f"{where}: missing file {folder / 'HDRImg.hdr'} (the ground truth); add it, or load with require_hdr=False."
        )
    sizes = {path: image_size(path) for path in ldr_paths + ([hdr_path] if hdr_path else [])}
    height, width = sizes[ldr_paths[0]]
    for path, (other_height, other_width) in sizes.items():
        if (other_height, other_width) != (height, width):
            raise DatasetError(
                f"{where}: {path.name} is {other_width}x{other_height} but {ldr_paths[0].name} is {width}x{height}; "
                "all exposures and the ground truth must have the same size."
            )
    stamp = tuple(
        (path.stat().st_size, path.stat().st_mtime_ns)
        for path in ldr_paths + [exposure_files[0]] + ([hdr_path] if hdr_path else [])
    )
    return SceneFiles(scene, folder, tuple(ldr_paths), tuple(exposures), hdr_path, height, width, stamp)


def find_scenes(
    root: str | os.PathLike, split: str | None = "train", num_exposures: int = 3, require_hdr: bool = True
) -> list[SceneFiles]:
    """Find and check every scene of ``split`` under ``root``, in natural order of their ids."""
    base = split_folder(root, split)
    folders = find_scene_folders(base)
    if not folders:
        raise DatasetError(f"{base}: holds no scene folders (folders with three LDR images and exposure.txt).")
    scenes = []
    for folder in folders:
        scene = folder.name if folder == base else folder.relative_to(base).as_posix()
        scenes.append(check_scene(folder, scene, num_exposures, require_hdr))
    return scenes
