"""Load an exposure bracket of 2 to 9 frames from a scene folder or from image files, in any order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .decode import read_bytes
from .exposures import exposures_from_exif, sort_by_exposure
from .icc import rgb_to_rec709
from .ldr import read_ldr
from .raw import decode_raw, to_rec709
from .scene import (
    check_frame_count,
    check_one_kind,
    is_exposure_file,
    is_ldr,
    is_raw,
    order_by_exposure,
    order_images,
    scan_scene,
    scene_entries,
)

LINEAR = "linear"
"""``Bracket.response_hint`` of RAW brackets: their frames are linear light (``Response.linear()``)."""


@dataclass
class Bracket:
    """An exposure bracket ready to merge.

    Attributes:
        images: float32 (H, W, 3) RGB arrays in [0, 1], ordered short to long. LDR frames hold the
            camera's code values; RAW frames hold linear, white-balanced camera RGB with the white
            level at 1.0 (merge them as they are, then apply :meth:`to_rec709`).
        exposures: EV stops of each image (strictly increasing).
        paths: the image files, in the same order.
        ground_truth: the scene's reference radiance file (``HDRImg.hdr``/``.exr`` or a single radiance file), if any.
        name: the scene folder name, or a name derived from the files.
        response_hint: ``"linear"`` when the frames are linear already (camera RAW files), so the camera
            step uses ``Response.linear()`` instead of estimating a response; ``None`` for LDR images.
        warnings: one line each, for the front end to show: the EXIF contradicts the exposure file, a RAW
            file had no white balance, ``half_size`` did not apply.
        notes: one line each, information rather than a problem: the frames were sorted by exposure.
        camera_to_rec709: for RAW brackets, the (3, 3) matrix from the frames' camera RGB to linear
            sRGB/Rec.709 (the reference frame's, from LibRaw); for LDR frames whose embedded ICC profile has
            other primaries than sRGB's (Adobe RGB, Display P3), the matrix from their linear RGB
            (:mod:`.icc`); ``None`` when the frames are sRGB/Rec.709 already.
        colour_profile: the name of the embedded profile ``camera_to_rec709`` comes from (LDR frames), if any.
    """

    images: list[np.ndarray]
    exposures: list[float]
    paths: list[Path]
    ground_truth: Path | None
    name: str
    response_hint: str | None = None
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    camera_to_rec709: np.ndarray | None = None
    colour_profile: str | None = None

    def to_rec709(self, radiance: np.ndarray) -> np.ndarray:
        """Merged radiance (H, W, 3) in the frames' colours to linear Rec.709, the colours of every output.

        RAW brackets are merged in camera RGB, and LDR frames in their own RGB, where each channel clips on
        its own as the merge's saturation rules assume; this applies the colour matrix once, after the merge
        (out-of-gamut negatives become 0). For sRGB frames it returns ``radiance`` unchanged.
        """
        if self.camera_to_rec709 is None:
            return radiance
        return to_rec709(radiance, self.camera_to_rec709)

    @property
    def reference_index(self) -> int:
        """The reference (middle) frame, ``N // 2``: for an even N, the longer of the two middle frames."""
        return len(self.images) // 2


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(path.name for path in paths) or "none"


def _resolve_inputs(inputs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    return [Path(item) for item in inputs]


def _folder_exposure_file(paths: Sequence[Path]) -> tuple[Path | None, list[Path]]:
    """For files passed one by one from one folder: that folder's exposure file and the frames it lists
    (the folder's frames of the same kind, in name order); ``(None, [])`` when there is none."""
    folders = {path.parent.resolve() for path in paths}
    if len(folders) != 1:
        return None, []
    entries = scene_entries(paths[0].parent)
    exposure_files = [path for path in entries if is_exposure_file(path)]
    if len(exposure_files) != 1:
        return None, []
    raw = is_raw(paths[0])
    listed = order_images([path for path in entries if (is_raw(path) if raw else is_ldr(path))])
    by_name = {path.resolve(): path for path in paths}
    return exposure_files[0], [by_name.get(path.resolve(), path) for path in listed]


def _read_raw_frames(paths: Sequence[Path], half_size: bool, warnings: list[str]) -> tuple[list[np.ndarray], np.ndarray]:
    """RAW frames in camera RGB, all with the reference frame's white balance; and its colour matrix."""
    reference = len(paths) // 2
    decoded = {reference: decode_raw(paths[reference], read_bytes(paths[reference]), half_size)}
    for index, path in enumerate(paths):
        if index != reference:
            decoded[index] = decode_raw(path, read_bytes(path), half_size, decoded[reference].white_balance)
    for index in range(len(paths)):
        warnings.extend(decoded[index].warnings)
    return [decoded[index].camera_rgb for index in range(len(paths))], decoded[reference].camera_to_rec709


def load_bracket(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    exposures: Sequence[float] | None = None,
    num_images: int | None = None,
    half_size: bool = False,
) -> Bracket:
    """Load a bracket from one scene folder or from image files, in any order.

    A scene folder is scanned by :func:`~diffhdr_diffusers.io.scene.scan_scene`, the rules the dataset
    loaders use too: the frames (LDR images, or camera RAW files read through LibRaw), one exposure file
    (``exposure.txt`` in EV, ``exposure_times.txt`` in seconds, or ``relative_exposures.txt`` as ratios
    such as ``1:2:4``, listing the frames in name order) or EXIF exposure data, and optionally a ground
    truth ``HDRImg.hdr`` (or ``.exr``, or the only radiance file). Image files passed one by one read
    their folder's exposure file when it has one, else their EXIF. ``exposures`` (EV, one per input
    frame in the order given) overrides both.

    The frames are sorted by exposure, short to long, with a note in ``Bracket.notes`` when that
    changes their order. ``num_images`` requires that many frames; ``None`` takes 2 to 9.
    ``half_size`` reads RAW frames at half the size on each side (LibRaw's fast path, no demosaicing).
    RAW frames come in the camera's white-balanced RGB (every frame with the reference frame's white
    balance); merge them, then convert the radiance with :meth:`Bracket.to_rec709`.

    Raises :class:`InputError` (or its subclasses :class:`ImageReadError`, :class:`ExposureError`)
    with the file and the fix for a wrong number of frames, RAW and LDR files mixed, unreadable or
    damaged files, frames of different sizes and missing, invalid or equal exposures.
    """
    paths = _resolve_inputs(inputs)
    ground_truth, warnings, notes = None, [], []
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        name = folder.resolve().name
        scan = scan_scene(folder, num_images)
        ground_truth = scan.ground_truth
        if exposures is None:
            images, exposures, _, warnings, notes = order_by_exposure(scan.images, scan.exposure_file, folder)
        else:
            images, exposures, notes = sort_by_exposure(list(scan.images), exposures, "exposures argument")
    else:
        missing = [path for path in paths if not path.exists()]
        if missing:
            raise InputError(f"input not found: {', '.join(map(str, missing))}; check the paths.")
        folders = [path for path in paths if path.is_dir()]
        if folders:
            raise InputError(f"give either one scene folder or the image files, not folders among files: {_names(folders)}.")
        given_files = [path for path in paths if is_exposure_file(path)]  # a shell's `scene/*` lists it too
        if len(given_files) > 1:
            raise InputError(f"several exposure files given ({_names(given_files)}); give only one.")
        paths = [path for path in paths if not is_exposure_file(path)]
        seen: set[Path] = set()
        for path in paths:
            if path.resolve() in seen:
                raise InputError(f"{path}: given twice; give each frame of the bracket once.")
            seen.add(path.resolve())
        check_frame_count(len(paths), num_images, "", ", ".join(map(str, paths)) or "none")
        check_one_kind(paths, "the bracket ")
        parents = {path.parent.resolve() for path in paths}
        name = parents.pop().name if len(parents) == 1 else paths[0].stem
        if exposures is None:
            exposure_file, listed = _folder_exposure_file(paths)
            if given_files and (exposure_file is None or exposure_file.resolve() != given_files[0].resolve()):
                exposure_file, listed = given_files[0], order_images(paths)  # it lists the frames given, by name
            if exposure_file is not None:
                images, exposures, _, warnings, notes = order_by_exposure(paths, exposure_file, paths[0].parent, listed)
            else:
                try:
                    from_exif = exposures_from_exif(paths)
                except InputError:
                    for path in filter(is_ldr, paths):  # a file that is no image says so, not that it lacks EXIF
                        read_ldr(path)
                    raise
                images, exposures, notes = sort_by_exposure(paths, from_exif, "EXIF of " + _names(paths), relative=True)
        else:
            images, exposures, notes = sort_by_exposure(paths, exposures, "exposures argument")
    raw = is_raw(images[0])
    if half_size and not raw:
        warnings.append("half size applies to RAW files only; the images are read at full size.")
    matrix, profile = None, None
    if raw:
        arrays, matrix = _read_raw_frames(images, half_size, warnings)
    else:
        arrays = [read_ldr(path) for path in images]
        matrix, profile = rgb_to_rec709(images[len(images) // 2]) or (None, None)
    sizes = {array.shape[:2] for array in arrays}
    if len(sizes) > 1:
        listing = ", ".join(f"{path.name} {array.shape[1]}x{array.shape[0]}" for path, array in zip(images, arrays))
        raise InputError(f"images differ in size ({listing}); all exposures of a bracket must have the same size.")
    return Bracket(images=arrays, exposures=exposures, paths=list(images), ground_truth=ground_truth, name=name,
                   response_hint=LINEAR if raw else None, warnings=warnings, notes=notes, camera_to_rec709=matrix,
                   colour_profile=profile)

