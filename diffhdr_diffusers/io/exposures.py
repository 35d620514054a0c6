"""Exposure values (EV stops): parse text files, derive them from EXIF, validate them.

An exposure of ``ev`` stops means ``2 ** ev`` times the light of exposure 0. Brackets are ordered
from short to long, so valid exposures are strictly increasing. EVs are literal: the merged radiance
is in their units (:mod:`diffhdr_diffusers.hdr_domain`). Where only ratios are known (exposure times,
relative exposures, EXIF), the reference (middle) frame, index ``N // 2``, is EV 0, as a camera's
-2/0/+2 bracket has it (for an even N, the longer of the two middle frames); the output is then in the
reference frame's units. Errors say what to do in domain terms (:data:`EXPLICIT_EXPOSURES_HINT`), never
in a front end's flags.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import exifread

from ..errors import GIVE_EXPOSURES, ExposureError
from .decode import quiet_logger
from .formats import RAW_SUFFIXES

EXPOSURE_TXT = "exposure.txt"
EXPOSURE_TIMES_TXT = "exposure_times.txt"
RELATIVE_EXPOSURES_TXT = "relative_exposures.txt"


def _number(text: str) -> float:
    """Parse ``text`` as a float, accepting fractions such as ``1/250``; raise ``ValueError`` otherwise."""
    if "/" in text:
        return float(Fraction(text.strip()))
    return float(text)


def _read_values(path: str | os.PathLike, what: str, separators: str = r"[\s,;]+") -> list[float]:
    """Read the numbers of a text file, one or more per non-empty line ('#' starts a comment)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ExposureError(f"{path}: {what} file not found.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ExposureError(f"{path}: cannot be read as text ({error}).") from error
    values = []
    for number, line in enumerate(lines, start=1):
        content = line.split("#", 1)[0].strip()
        for token in filter(None, re.split(separators, content)):
            try:
                value = _number(token)
            except (ValueError, ZeroDivisionError):
                raise ExposureError(f"{path}, line {number}: {token!r} is not a number; write one {what} per line.") from None
            if not math.isfinite(value):
                raise ExposureError(f"{path}, line {number}: {token!r} is not finite; write a finite {what}.")
            values.append(value)
    if not values:
        raise ExposureError(f"{path}: holds no {what}s; write one per line, in the order of the images' names.")
    return values


def read_exposure_txt(path: str | os.PathLike) -> list[float]:
    """Read a Kalantari ``exposure.txt``: one EV per non-empty line (``-2``, ``1.5``, ``+3``, ``0.0``)."""
    return _read_values(path, "exposure value (EV)", separators=r"\s+")


def read_exposure_times_txt(path: str | os.PathLike) -> list[float]:
    """Read exposure times in seconds (``0.004`` or ``1/250``), one per line; return EV = log2(t / t_reference)."""
    times = _read_values(path, "exposure time in seconds")
    if min(times) <= 0:
        raise ExposureError(f"{Path(path)}: exposure times must be positive seconds, got {times}.")
    return reference_at_zero([math.log2(time) for time in times])


def read_relative_exposures_txt(path: str | os.PathLike) -> list[float]:
    """Read relative exposures as ratios (``1:2:4`` or one per line); return EV = log2(ratio / ratio_reference)."""
    ratios = _read_values(path, "relative exposure", separators=r"[\s,;:]+")
    if min(ratios) <= 0:
        raise ExposureError(f"{Path(path)}: relative exposures must be positive ratios, got {ratios}.")
    return reference_at_zero([math.log2(ratio) for ratio in ratios])


def format_exposures(exposures: Sequence[float]) -> str:
    """EVs as front ends show them: to 0.01 stops (EXIF's 1/1000 s against 1/60 s reads -4.06, not -4.05889)."""
    return ", ".join(f"{round(float(value), 2) + 0.0:g}" for value in exposures)


def reference_at_zero(stops: Sequence[float]) -> list[float]:
    """Shift EV stops so that the reference (middle, index ``N // 2``) frame is at EV 0."""
    reference = stops[len(stops) // 2] if stops else 0.0
    return [stop - reference for stop in stops]


EXPLICIT_EXPOSURES_HINT = GIVE_EXPOSURES  # the wording front ends replace with their own
"""The fix the library suggests when exposures cannot be read; front ends reword it for their users
(the CLI's ``--exposures``, the app's Exposures box)."""

EXIF_TOLERANCE = 0.3
"""EV difference above which the images' EXIF contradicts an exposure file (nominal shutter speeds such as
1/60 s for 1/64 s differ by 0.09 EV)."""

# exifread names a tag by its IFD: "EXIF ..." in the Exif IFD, "Image ..." in IFD0 (where DNG and TIFF/EP
# writers may keep them).
_EXIF_TIME = ("EXIF ExposureTime", "Image ExposureTime")
_EXIF_F_NUMBER = ("EXIF FNumber", "Image FNumber")
_EXIF_ISO = ("EXIF ISOSpeedRatings", "EXIF PhotographicSensitivity", "Image ISOSpeedRatings")


def exif_number(tags: dict, names: Sequence[str], positive: bool = True) -> float | None:
    """The first of the tags ``names`` that holds a finite number (a positive one unless ``positive=False``)."""
    for name in names:
        tag = tags.get(name)
        if tag is None or not tag.values:
            continue
        value = tag.values[0]
        if isinstance(value, tuple) and value:  # exifread wraps doubles (type 12) in a tuple
            value = value[0]
        try:
            number = float(Fraction(value.num, value.den)) if hasattr(value, "num") else float(value)
        except (ValueError, ZeroDivisionError, TypeError):
            continue
        if math.isfinite(number) and (number > 0 or not positive):
            return number
    return None


def read_exif_tags(path: Path, corrupt_ok: bool = False) -> dict:
    """exifread's tags of ``path`` (quietly); an unreadable file raises :class:`ExposureError`, and so does corrupt
    metadata unless ``corrupt_ok`` (then there are no tags)."""
    try:
        with quiet_logger("exifread"), path.open("rb") as handle:
            return exifread.process_file(handle, details=False)
    except OSError as error:
        raise ExposureError(f"{path}: cannot be read for EXIF ({error.strerror or error}).") from error
    except Exception as error:  # exifread raises assorted errors on corrupt metadata
        if corrupt_ok:
            return {}
        raise ExposureError(f"{path}: EXIF data is corrupt ({error}); {EXPLICIT_EXPOSURES_HINT}.") from error


def _raw_exposure(path: Path) -> tuple[float | None, float | None, float | None]:
    """(time, f-number, ISO) as LibRaw parsed them from a RAW file (any of them ``None`` when absent)."""
    from .raw import raw_exposure  # rawpy is imported only for RAW files

    return raw_exposure(path)


def exif_exposure_stops(path: Path, tags: dict | None = None) -> float | None:
    """log2(t * ISO / N^2) of one image from its EXIF ``tags`` (read when not given; for RAW files also LibRaw's
    metadata), or ``None`` without an exposure time. A missing f-number or ISO counts as f/1, ISO 100."""
    tags = read_exif_tags(path) if tags is None else tags
    time = exif_number(tags, _EXIF_TIME)
    f_number = exif_number(tags, _EXIF_F_NUMBER)
    iso = exif_number(tags, _EXIF_ISO)
    if time is None and path.suffix.lower() in RAW_SUFFIXES:
        # RAW formats exifread does not parse (CR3, RAF, ...): LibRaw reads their maker's metadata.
        time, raw_f_number, raw_iso = _raw_exposure(path)
        f_number, iso = f_number or raw_f_number, iso or raw_iso
    if time is None:
        return None
    return math.log2(time * (iso or 100.0) / (f_number or 1.0) ** 2)


def _exposure_stops(path: Path) -> float:
    """:func:`exif_exposure_stops`, which must be there."""
    stops = exif_exposure_stops(path)
    if stops is None:
        raise ExposureError(
            f"{path}: no EXIF exposure time; {EXPLICIT_EXPOSURES_HINT}, or put an {EXPOSURE_TXT} next to the images."
        )
    return stops


def exposures_from_exif(paths: Sequence[str | os.PathLike]) -> list[float]:
    """Return each image's EV relative to the reference (middle) image, from EXIF ExposureTime, FNumber and ISO.

    EV = log2(t * ISO / N^2), shifted so that image ``len(paths) // 2`` is at EV 0 (a -2/0/+2 bracket reads
    as -2, 0, 2). The tags are read from the Exif IFD or from IFD0 (where DNG writers may keep them); for
    RAW files exifread cannot parse, LibRaw's reading of the maker's metadata is used. A missing f-number
    or ISO counts as equal across the bracket. Images without an exposure time raise :class:`ExposureError`.
    """
    return reference_at_zero([_exposure_stops(Path(path)) for path in paths])


def exif_contradiction(paths: Sequence[Path], exposures: Sequence[float], source: str) -> str | None:
    """A one-line warning when the images' EXIF disagrees with ``exposures`` read from ``source`` (a file).

    Both are compared as EVs relative to the reference frame; images without EXIF exposure data are
    no contradiction (``None``). The exposure file wins; the warning names both.
    """
    try:
        exif = exposures_from_exif(paths)
    except ExposureError:
        return None
    if len(exposures) != len(exif):
        return None
    order = sorted(range(len(paths)), key=lambda index: exposures[index])  # short to long: the reference in the middle
    given = reference_at_zero([exposures[index] for index in order])
    exif = reference_at_zero([exif[index] for index in order])
    if max(abs(a - b) for a, b in zip(given, exif)) <= EXIF_TOLERANCE:
        return None
    listing = lambda values: ", ".join(f"{value:+.2f}" for value in values)
    return (f"{source} gives {listing(given)} EV but the EXIF of {', '.join(paths[index].name for index in order)} "
            f"gives {listing(exif)} EV (relative to the reference frame); using {Path(source).name}.")


def sort_by_exposure(
    paths: Sequence[Path], exposures: Sequence[float], source: str, relative: bool = False
) -> tuple[list[Path], list[float], list[str]]:
    """Order a bracket short to long: ``(paths, exposures, notes)``, with a note when the order changed.

    ``relative``: the EVs are only relative (EXIF, exposure times, ratios), so after sorting they are
    shifted to put the reference (middle) frame at EV 0; literal EVs (``exposure.txt``, an explicit
    list) are kept as they are.

    ``exposures`` (one number per path, finite) must all differ: equal exposures (identical EXIF times,
    a file listing one value twice) raise :class:`ExposureError` naming the frames and suggesting to give
    the exposures explicitly.
    """
    values = validate_exposures(exposures, len(paths), source, ordered=False)
    seen: dict[float, list[Path]] = {}
    for path, value in zip(paths, values):
        seen.setdefault(value, []).append(path)
    repeated = [(value, group) for value, group in seen.items() if len(group) > 1]
    if repeated:
        value, group = repeated[0]
        raise ExposureError(
            f"{source}: {', '.join(path.name for path in group)} have the same exposure ({value:g} EV); "
            f"a bracket needs a different exposure for each frame: {EXPLICIT_EXPOSURES_HINT}."
        )
    order = sorted(range(len(values)), key=values.__getitem__)
    paths, sorted_values = [paths[index] for index in order], [values[index] for index in order]
    if relative:
        sorted_values = reference_at_zero(sorted_values)
    if order == list(range(len(values))):
        return paths, sorted_values, []
    note = (f"frames sorted by exposure, short to long: "
            f"{', '.join(f'{path.name} ({round(value, 2) + 0.0:+g} EV)' for path, value in zip(paths, sorted_values))}.")
    return paths, sorted_values, [note]


def validate_exposures(
    exposures: Sequence[float], num_images: int, source: str = "exposures", ordered: bool = True
) -> list[float]:
    """Check exposures for a bracket of ``num_images`` and return them as a list of floats.

    They must be numbers, one per image, finite, not all equal and, when ``ordered``, strictly
    increasing (short to long). ``source`` names where they came from (a file or an argument) in the
    error message.
    """
    if exposures is None or isinstance(exposures, (str, bytes)) or not isinstance(exposures, Iterable):
        raise ExposureError(f"{source}: no exposure list (got {exposures!r}); give one EV number per image, short to long.")
    exposures = list(exposures)
    try:
        values = [float(value) for value in exposures]
    except (TypeError, ValueError):
        raise ExposureError(f"{source}: {exposures!r} are not all numbers; give one EV number per image.") from None
    if len(values) != num_images:
        raise ExposureError(f"{source}: {len(values)} exposures for {num_images} images; give exactly one EV per image.")
    if not all(math.isfinite(value) for value in values):
        raise ExposureError(f"{source}: {values} contains NaN or infinity; give finite EV values.")
    if num_images > 1 and len(set(values)) == 1:
        raise ExposureError(
            f"{source}: all exposures equal {values[0]:g} EV; a bracket needs different exposures: {EXPLICIT_EXPOSURES_HINT}."
        )
    if ordered and any(later <= earlier for earlier, later in zip(values, values[1:])):
        if len(set(values)) == len(values):
            order = ", ".join(str(index + 1) for index in sorted(range(len(values)), key=values.__getitem__))
            raise ExposureError(
                f"{source}: exposures {values} are not increasing; images must be ordered short to long. "
                f"They may be listed in the wrong order: reorder them as positions {order} of the "
                f"current order, which gives exposures {sorted(values)}."
            )
        raise ExposureError(f"{source}: exposures {values} repeat a value; each image needs a different exposure.")
    return values
