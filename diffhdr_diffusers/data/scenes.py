"""Find and check Kalantari-layout scene folders: three LDR exposures, ``exposure.txt``, ``HDRImg.hdr``.

Each folder is scanned by :func:`~diffhdr_diffusers.io.scene.scan_scene`, the scanner ``load_bracket``
uses, so a folder that ``diffhdr merge`` accepts is a scene here too (same images, order, exposure
files and ground truth). Checking reads only file headers, so it is cheap; any problem raises
:class:`DatasetError` naming the scene and the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import OpenEXR
import tifffile
from PIL import Image

from ..errors import DatasetError, InputError
from ..io import validate_exposures
from ..io.formats import GROUND_TRUTH_NAME
from ..io.scene import is_scene_folder, natural_key, scan_scene, scene_exposures

SPLIT_FOLDERS = {"train": ("training", "train"), "test": ("test", "testing")}


@dataclass(frozen=True)
class SceneFiles:
    """The checked files of one scene.

    Attributes:
        scene: the scene id, its folder relative to the split folder (``001``, ``PAPER/BarbequeDay``).
        folder: the scene folder.
        ldr_paths: the LDR exposures, short to long.
        exposures: EV of each exposure, from the exposure file (or EXIF).
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


def check_scene(folder: Path, scene: str, num_exposures: int | None = 3, require_hdr: bool = True) -> SceneFiles:
    """Check one scene folder and return its files; raise :class:`DatasetError` naming the scene and file.
    ``num_exposures``: the frames a scene needs, or ``None`` for any bracket of 2 to 9."""
    where = f"scene {scene} ({folder})"
    try:
        scan = scan_scene(folder, num_exposures)
        ldr_paths, exposures, source = scene_exposures(scan)
        exposures = validate_exposures(exposures, len(ldr_paths), source)
    except InputError as error:
        raise DatasetError(f"{where}: {str(error).removeprefix(f'{folder}: ')}") from error
    hdr_path = scan.ground_truth
    if hdr_path is None and require_hdr:
        raise DatasetError(
            f"{where}: missing file {folder / GROUND_TRUTH_NAME} (the ground truth); add it, or load with "
            "require_hdr=False."
        )
    sizes = {path: image_size(path) for path in ldr_paths + ([hdr_path] if hdr_path else [])}
    height, width = sizes[ldr_paths[0]]
    for path, (other_height, other_width) in sizes.items():
        if (other_height, other_width) != (height, width):
            raise DatasetError(
                f"{where}: {path.name} is {other_width}x{other_height} but {ldr_paths[0].name} is {width}x{height}; "
                "all exposures and the ground truth must have the same size."
            )
    files = ldr_paths + [path for path in (scan.exposure_file, hdr_path) if path is not None]
    stamp = tuple((path.stat().st_size, path.stat().st_mtime_ns) for path in files)
    return SceneFiles(scene, folder, tuple(ldr_paths), tuple(exposures), hdr_path, height, width, stamp)


def find_scenes(
    root: str | os.PathLike, split: str | None = "train", num_exposures: int | None = 3, require_hdr: bool = True
) -> list[SceneFiles]:
    """Find and check every scene of ``split`` under ``root``, in natural order of their ids."""
    base = split_folder(root, split)
    folders = find_scene_folders(base)
    if not folders:
        raise DatasetError(f"{base}: holds no scene folders (folders with LDR images and exposure.txt).")
    scenes = []
    for folder in folders:
        scene = folder.name if folder == base else folder.relative_to(base).as_posix()
        scenes.append(check_scene(folder, scene, num_exposures, require_hdr))
    return scenes
