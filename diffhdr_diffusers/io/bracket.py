"""Load an exposure bracket from a Kalantari-style scene folder or from image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .exposures import exposures_from_exif, validate_exposures
from .ldr import read_ldr
from .scene import scan_scene, scene_exposures


@dataclass
class Bracket:
    """An exposure bracket ready to merge.

    Attributes:
        images: float32 (H, W, 3) RGB arrays in [0, 1], ordered short to long.
        exposures: EV stops of each image (strictly increasing).
        paths: the image files, in the same order.
        ground_truth: the scene's reference radiance file (``HDRImg.hdr``/``.exr`` or a single radiance file), if any.
        name: the scene folder name, or a name derived from the files.
    """

    images: list[np.ndarray]
    exposures: list[float]
    paths: list[Path]
    ground_truth: Path | None
    name: str


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(path.name for path in paths) or "none"


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

    A scene folder is scanned by :func:`~diffhdr_diffusers.io.scene.scan_scene`, the rules the dataset
    loaders use too: the LDR images (named ``short``/``medium``/``long``, otherwise in natural order
    of their names), one exposure file (``exposure.txt`` in EV, ``exposure_times.txt`` in seconds, or
    ``relative_exposures.txt`` as ratios such as ``1:2:4``) or EXIF exposure data, and optionally a
    ground truth ``HDRImg.hdr`` (or ``.exr``, or the only radiance file). ``exposures`` (EV) overrides
    both. Hidden files and files of other kinds (notes, sidecars) are ignored; an extra image is an error.
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
        scan = scan_scene(folder, num_images)
        images, ground_truth = list(scan.images), scan.ground_truth
        if exposures is None:
            images, exposures, source = scene_exposures(scan)
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
