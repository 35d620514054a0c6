"""Exposure values (EV stops): parse text files, derive them from EXIF, validate them.

An exposure of ``ev`` stops means ``2 ** ev`` times the light of exposure 0. Brackets are ordered
from short to long, so valid exposures are strictly increasing. EVs are literal: the merged radiance
is in their units (:mod:`diffhdr_diffusers.hdr_domain`). Where only ratios are known (exposure times,
relative exposures, EXIF), the reference (middle) frame, index ``N // 2``, is EV 0, as a camera's
-2/0/+2 bracket has it; the output is then in the reference frame's units.
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
        raise ExposureError(f"{path}: holds no {what}s; write one per line, short to long.")
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


def reference_at_zero(stops: Sequence[float]) -> list[float]:
    """Shift EV stops so that the reference (middle, index ``N // 2``) frame is at EV 0."""
    reference = stops[len(stops) // 2] if stops else 0.0
    return [stop - reference for stop in stops]


def _exif_number(tags: dict, names: Sequence[str]) -> float | None:
    for name in names:
        tag = tags.get(name)
        if tag is None or not tag.values:
            continue
        value = tag.values[0]
        try:
            number = float(Fraction(value.num, value.den)) if hasattr(value, "num") else float(value)
        except (ValueError, ZeroDivisionError, TypeError):
            continue
        if math.isfinite(number) and number > 0:
            return number
    return None


def _exposure_stops(path: Path) -> float:
    """Return log2(t * ISO / N^2) for one image, from its EXIF."""
    try:
        with quiet_logger("exifread"), path.open("rb") as handle:
            tags = exifread.process_file(handle, details=False)
    except OSError as error:
        raise ExposureError(f"{path}: cannot be read for EXIF ({error.strerror or error}).") from error
    except Exception as error:  # exifread raises assorted errors on corrupt metadata
        raise ExposureError(f"{path}: EXIF data is corrupt ({error}); {GIVE_EXPOSURES}.") from error
    time = _exif_number(tags, ("EXIF ExposureTime",))
    if time is None:
        raise ExposureError(
            f"{path}: no EXIF exposure time; {GIVE_EXPOSURES}, or put an exposure.txt next to the images."
        )
    f_number = _exif_number(tags, ("EXIF FNumber",)) or 1.0
    iso = _exif_number(tags, ("EXIF ISOSpeedRatings", "EXIF PhotographicSensitivity")) or 100.0
    return math.log2(time * iso / f_number**2)


def exposures_from_exif(paths: Sequence[str | os.PathLike]) -> list[float]:
    """Return each image's EV relative to the reference (middle) image, from EXIF ExposureTime, FNumber and ISO.

    EV = log2(t * ISO / N^2), shifted so that image ``len(paths) // 2`` is at EV 0 (a -2/0/+2 bracket reads
    as -2, 0, 2). A missing f-number or ISO counts as equal across the bracket. Images without an exposure
    time raise :class:`ExposureError` asking for the exposures.
    """
    return reference_at_zero([_exposure_stops(Path(path)) for path in paths])


def validate_exposures(exposures: Sequence[float], num_images: int, source: str = "exposures") -> list[float]:
    """Check exposures for a bracket of ``num_images`` and return them as a list of floats.

    They must be numbers, one per image, finite, not all equal and strictly increasing (short to
    long). ``source`` names where they came from (a file or an argument) in the error message.
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
        raise ExposureError(f"{source}: all exposures equal {values[0]:g} EV; a bracket needs different exposures.")
    if any(later <= earlier for earlier, later in zip(values, values[1:])):
        if len(set(values)) == len(values):
            order = ", ".join(str(index + 1) for index in sorted(range(len(values)), key=values.__getitem__))
            raise ExposureError(
                f"{source}: exposures {values} are not increasing; images must be ordered short to long. "
                f"The files may be listed in the wrong order: reorder them as positions {order} of the "
                f"current order, which gives exposures {sorted(values)}."
            )
        raise ExposureError(f"{source}: exposures {values} repeat a value; each image needs a different exposure.")
    return values
