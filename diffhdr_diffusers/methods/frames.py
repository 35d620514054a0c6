"""Read a bracket of any size (2 or more frames) for the front ends: a scene folder or image files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import MERGE_AS_SHOOT, InputError


def frame_files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The frames ``inputs`` hold: the files given but an exposure file, or the LDR and RAW images of one scene
    folder."""
    from ..io.scene import is_exposure_file, is_ldr, is_raw, scene_entries

    paths = [Path(item) for item in inputs]
    if len(paths) == 1 and paths[0].is_dir():
        return [path for path in scene_entries(paths[0]) if is_ldr(path) or is_raw(path)]
    return [path for path in paths if not is_exposure_file(path)]


def count_frames(inputs: Sequence[str | os.PathLike]) -> int:
    """How many frames ``inputs`` hold (:func:`frame_files`)."""
    return len(frame_files(inputs))


def read_bracket(inputs: str | os.PathLike | Sequence[str | os.PathLike], exposures: Sequence[float] | None = None,
                 half_size: bool = False):
    """:func:`~diffhdr_diffusers.io.load_bracket` of however many frames ``inputs`` hold (2 to 9)."""
    from ..io import load_bracket

    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    present = all(Path(item).exists() for item in inputs)  # else the loader names the missing input
    count = count_frames(inputs) if present else len(inputs)
    if present and count < 2:
        folder = len(inputs) == 1 and Path(inputs[0]).is_dir()
        where = f"{inputs[0]}: " if folder else ""
        found = f": {', '.join(Path(item).name for item in inputs)}" if inputs and not folder else ""
        scenes = [path.name for path in sorted(Path(inputs[0]).iterdir()) if path.is_dir() and count_frames([path]) >= 2] if folder else []
        if scenes:
            shown = ", ".join(scenes[:3]) + (", ..." if len(scenes) > 3 else "")
            raise InputError(f"{where}holds scene folders ({shown}), not the frames of one bracket; {MERGE_AS_SHOOT}.")
        raise InputError(f"{where}a bracket needs at least 2 frames (exposures of one scene), found {count}{found}.")
    return load_bracket(inputs, exposures=exposures, half_size=half_size)


def frame_names(bracket) -> list[str]:
    """The bracket's frames by file name (``frame 1``, ... when it was not read from files)."""
    if bracket.paths:
        return [path.name for path in bracket.paths]
    return [f"frame {index + 1}" for index in range(len(bracket.images))]
