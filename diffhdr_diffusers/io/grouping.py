"""Group a flat folder of frames (a memory card) into exposure brackets.

A card holds 3-, 5- or 7-frame brackets one after another. Frames are put in capture order (EXIF
DateTimeOriginal plus SubsecTimeOriginal; the file name where a frame has no time) and split:

* ``time`` (default): a new bracket starts after a gap longer than ``gap`` seconds, and within a burst
  of brackets shot back to back, where the exposure pattern repeats (a bias sequence such as
  0, -2, +2 starting over). A run whose exposures never repeat is one bracket.
* ``count:N``: every N frames in capture order are one bracket.
* ``folder``: one bracket per sub-folder (batch mode's scene folders).

A frame that fits no bracket (a single frame, a run with a repeated exposure) is reported with the
reason, never dropped silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..errors import InputError
from .exposures import exif_exposure_stops, exif_number, read_exif_tags

DEFAULT_GAP = 2.0  # seconds between two frames that starts a new bracket
MAX_FRAMES = 9


@dataclass
class Frame:
    """One frame on the card: its file, capture time (seconds, or ``None``) and exposure in stops (or ``None``)."""

    path: Path
    time: float | None
    stops: float | None


@dataclass
class Bracketing:
    """The brackets found, in capture order, and the frames left over with the reason for each."""

    brackets: list[list[Path]]
    leftovers: list[tuple[Path, str]] = field(default_factory=list)

    def describe(self) -> list[str]:
        """One line per bracket and per leftover frame, for listings (``--dry-run``)."""
        lines = [f"bracket {index + 1}: {len(paths)} frames: {', '.join(path.name for path in paths)}"
                 for index, paths in enumerate(self.brackets)]
        lines += [f"not grouped: {path.name}: {reason}" for path, reason in self.leftovers]
        return lines


def read_frame(path: str | os.PathLike) -> Frame:
    """A frame's capture time and exposure (``log2(t * ISO / N^2)``, else the exposure bias) from its EXIF; corrupt
    metadata gives neither (the frame is then reported, not grouped)."""
    path = Path(path)
    tags = read_exif_tags(path, corrupt_ok=True)
    when = None
    stamp = tags.get("EXIF DateTimeOriginal") or tags.get("Image DateTime")
    if stamp is not None:
        try:
            when = datetime.strptime(str(stamp.values).strip(), "%Y:%m:%d %H:%M:%S").timestamp()
        except ValueError:
            when = None
    if when is not None:
        subsec = tags.get("EXIF SubSecTimeOriginal")
        digits = re.sub(r"\D", "", str(subsec.values)) if subsec is not None else ""
        if digits:
            when += int(digits) / 10 ** len(digits)
    stops = exif_exposure_stops(path, tags)
    if stops is None:
        stops = exif_number(tags, ("EXIF ExposureBiasValue",), positive=False)
    return Frame(path, when, stops)


def _natural_key(path: Path):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _split_pattern(run: list[Frame]) -> list[list[Frame]] | None:
    """Split a back-to-back run into brackets where its exposure pattern repeats; ``None`` if it does not split."""
    if all(frame.stops is not None for frame in run):
        keys = [round(frame.stops * 3) for frame in run]  # third-stop steps, as cameras bracket
        if len(set(keys)) == len(keys):
            return [run]
        for period in range(2, min(MAX_FRAMES, len(run)) + 1):
            if len(run) % period:
                continue
            chunks = [run[start:start + period] for start in range(0, len(run), period)]
            pattern = keys[:period]
            if len(set(pattern)) == period and all(keys[start:start + period] == pattern for start in range(0, len(run), period)):
                return chunks
    return None


def group_frames(paths: Sequence[str | os.PathLike], by: str = "time", gap: float = DEFAULT_GAP) -> Bracketing:
    """Group frames into brackets (see the module docstring).

    Args:
        paths: frame files (any order).
        by: ``"time"``, ``"count:N"`` or ``"folder"``.
        gap: seconds between consecutive frames that start a new bracket (``by="time"``).

    Raises:
        InputError: an unknown ``by``.
    """
    frames = [read_frame(path) for path in paths]
    timed = sorted((f for f in frames if f.time is not None), key=lambda f: (f.time, _natural_key(f.path)))
    untimed = sorted((f for f in frames if f.time is None), key=lambda f: _natural_key(f.path))
    ordered = timed + untimed
    result = Bracketing([])

    def add(run: list[Frame], why_not: str) -> None:
        if len(run) >= 2:
            result.brackets.append([frame.path for frame in run])
        else:
            result.leftovers += [(frame.path, why_not) for frame in run]

    if by == "folder":
        folders: dict[Path, list[Frame]] = {}
        for frame in ordered:
            folders.setdefault(frame.path.parent, []).append(frame)
        for run in folders.values():
            add(run, "the only frame in its folder")
        return result
    match = re.fullmatch(r"count:(\d+)", by)
    if match:
        count = int(match.group(1))
        if not 2 <= count <= MAX_FRAMES:
            raise InputError(f"grouping {by!r}: a bracket has 2 to {MAX_FRAMES} frames.")
        for start in range(0, len(ordered), count):
            run = ordered[start:start + count]
            if len(run) == count:
                add(run, "")
            else:
                result.leftovers += [(frame.path, f"the last {len(run)} frames do not make a bracket of {count}")
                                     for frame in run]
        return result
    if by != "time":
        raise InputError(f"grouping {by!r}: use time, count:N (N frames a bracket) or folder.")
    if untimed:
        result.leftovers += [(frame.path, "no capture time in its EXIF; group by count or by folder instead")
                             for frame in untimed]
    runs: list[list[Frame]] = []
    for frame in timed:
        if runs and frame.time - runs[-1][-1].time <= gap:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    for run in runs:
        if len(run) == 1:
            add(run, f"no other frame within {gap:g} s")
            continue
        chunks = _split_pattern(run)
        if chunks is None:
            reason = "its burst repeats an exposure without a regular pattern; group by count or by folder instead"
            result.leftovers += [(frame.path, reason) for frame in run]
            continue
        for chunk in chunks:
            add(chunk, "")
    return result
