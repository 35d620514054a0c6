"""The camera model: how a frame's code values become linear light, and the frames' true exposures.

Every merge path (alignment, flow-merge, the models' conditioning, the baselines, evaluation and
training data) works in one *canonical encoding*: ``code_c = inverse_response(code) ** (1 / gamma)``
with the pipeline's ``gamma`` (2.2), so that the HDR-domain view ``code_c**gamma / 2**ev`` of
:mod:`~diffhdr_diffusers.hdr_domain` is exactly ``inverse_response(code) / 2**ev``.
:func:`apply_camera` is the one place that maps camera frames into that encoding. A gamma-2.2
response leaves the frames untouched (bit for bit), so the paper's path and Kalantari data do not move.

* :mod:`.response`: :class:`Response` (named curves, tables, files) and :func:`parse_response`.
* :mod:`.estimate`: :func:`estimate_camera`, the response and exposure ratios from a bracket itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..bands import map_bands
from ..hdr_domain import GAMMA
from .estimate import CameraEstimate, estimate_camera
from .response import CURVES, Response, parse_response


@dataclass
class CameraModel:
    """What :func:`apply_camera` used for one bracket.

    Attributes:
        response: the inverse response applied.
        source: how it was chosen: ``"auto"`` (estimated from this bracket), ``"auto (fallback)"``,
            or the ``--response`` value (``"gamma:2.2"``, ``"srgb"``, ``"linear"``, a file, ``"raw"``).
        exposures: the EVs used, after any measured correction (same order as the frames).
        nominal_exposures: the EVs as given (file, flag or EXIF).
        warnings: one line each: a fallback, or an exposure correction, with the reason.
        fallback: whether estimation failed and a default response was used instead.
    """

    response: Response
    source: str
    exposures: list[float]
    nominal_exposures: list[float]
    warnings: list[str] = field(default_factory=list)
    fallback: bool = False

    def to_dict(self) -> dict:
        """JSON-serialisable record, for output metadata and batch done-markers."""
        return {
            "response": self.response.name,
            "source": self.source,
            "exposures": [round(float(ev), 4) for ev in self.exposures],
            "nominal_exposures": [round(float(ev), 4) for ev in self.nominal_exposures],
            "fallback": self.fallback,
            "curve": self.response.to_dict(samples=17),
        }


def describe_camera(record: dict, reference_index: int | None = None) -> str:
    """One line for people: the response used and how it was chosen, and the exposures merged relative to the
    reference (``record``: :meth:`CameraModel.to_dict`), e.g. ``camera response estimated from the bracket,
    exposures EV -2.02, 0, +2.04 from the reference (measured)``: the bracket's line before it gives the EVs as
    read, which may have another zero."""
    name, source = record.get("response", "?"), record.get("source", "?")
    if source == "auto":
        text = "estimated from the bracket"
    elif source == "auto (fallback)":
        text = f"{name} (not estimable from the bracket)"
    else:
        text = name if name == source else f"{name} ({source})"
    evs = [float(ev) for ev in record.get("exposures", [])]
    if not evs:
        return f"camera response {text}"
    nominal = [float(ev) for ev in record.get("nominal_exposures", evs)]
    ref = len(evs) // 2 if reference_index is None else reference_index
    relative = [ev - evs[ref] for ev in evs]
    measured = any(abs(ev - (given - nominal[ref])) >= 5e-3 for ev, given in zip(relative, nominal))
    words = ", ".join("0" if abs(ev) < 5e-3 else f"{ev:+.2f}".rstrip("0").rstrip(".") for ev in relative)
    how = " (measured)" if measured else ""
    if source in ("auto", "auto (fallback)") and len(evs) == 2:  # the ratio and the curve's steepness are one unknown
        how = " (as given: two frames cannot measure their own ratio)"
    return f"camera response {text}, exposures EV {words} from the reference{how}"


def _is_8bit(frame: np.ndarray) -> bool:
    """Whether a float frame holds 8-bit codes (``k / 255``), judged on a fixed sample of its values."""
    values = np.asarray(frame).reshape(-1)[::997]
    return bool(np.asarray(frame).dtype == np.float32 and np.array_equal(np.rint(values * 255) / 255, values))


def encode_canonical(frames: Sequence[np.ndarray], response: Response, gamma: float = GAMMA) -> list[np.ndarray]:
    """Frames in the canonical encoding ``inverse_response(code) ** (1/gamma)`` (float32); unchanged
    (the same arrays) when ``response`` is exactly ``code**gamma``."""
    if response.is_gamma(gamma):
        return [np.asarray(frame, dtype=np.float32) for frame in frames]
    if all(_is_8bit(frame) for frame in frames):  # 8-bit files: one exact lookup per code (cv2.LUT, fast)
        codes = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None].repeat(3, axis=1)
        table = np.power(response.linearize(codes), np.float32(1.0 / gamma)).astype(np.float32)[:, None, :]
        return [cv2.LUT(cv2.convertScaleAbs(np.asarray(frame, np.float32), alpha=255.0), table) for frame in frames]
    if response.exact:  # a formula (sRGB, another gamma): exact, no table near black
        return [np.power(response.linearize(frame), np.float32(1.0 / gamma)) for frame in frames]
    # One table from code to canonical code, interpolated linearly (two gathers a value), in row bands
    # on a few threads: fast at 12 MP.
    table = np.power(response.table.astype(np.float64), 1.0 / gamma)
    base = table[:-1].astype(np.float32).ravel()
    slope = np.diff(table, axis=0).astype(np.float32).ravel()
    steps = len(table) - 1
    channel = np.arange(3, dtype=np.int32)
    out = []
    for frame in frames:
        frame = np.asarray(frame, dtype=np.float32)
        canonical = np.empty_like(frame)

        def band(y0: int, y1: int, frame=frame, canonical=canonical) -> None:
            position = np.clip(frame[y0:y1], 0.0, 1.0)
            position *= np.float32(steps)
            index = position.astype(np.int32)
            np.minimum(index, steps - 1, out=index)
            position -= index
            index *= 3
            index += channel
            np.take(base, index, out=canonical[y0:y1])
            position *= np.take(slope, index)
            canonical[y0:y1] += position

        map_bands(band, *frame.shape[:2])
        out.append(canonical)
    return out


def apply_camera(
    frames: Sequence[np.ndarray],
    exposures: Sequence[float],
    response: str | Response | None = "auto",
    gamma: float = GAMMA,
    reference_index: int | None = None,
) -> tuple[list[np.ndarray], CameraModel]:
    """Map a bracket's frames into the canonical encoding through its camera response.

    Args:
        frames: N float (H, W, 3) frames in [0, 1] as read from the files (code values), short to long.
        exposures: N nominal EVs (file, flag or EXIF): the prior for the true exposure ratios.
        response: ``"auto"`` (estimate from the bracket), a :class:`Response`, or a ``--response``
            string (:func:`parse_response`).
        gamma: the canonical encoding's exponent (the pipeline's ``gamma``).
        reference_index: the reference frame (its EV is never corrected; with ``auto`` every EV, the
            reference's included, moves by the same units shift, see :data:`.estimate.UNITS_CODES`); default ``N // 2``.

    Returns:
        ``(canonical_frames, camera)``: the frames to merge and a :class:`CameraModel` whose
        ``exposures`` are the EVs to merge them with.
    """
    nominal = [float(ev) for ev in exposures]
    parsed = parse_response(response)
    if parsed == "auto":
        estimate: CameraEstimate = estimate_camera(frames, nominal, reference_index=reference_index)
        camera = CameraModel(estimate.response, "auto (fallback)" if estimate.fallback else "auto",
                             estimate.exposures, nominal, list(estimate.warnings), estimate.fallback)
    else:
        camera = CameraModel(parsed, str(response) if isinstance(response, (str, Path)) else parsed.name, nominal, nominal)
    return encode_canonical(frames, camera.response, gamma), camera


__all__ = [
    "CURVES",
    "CameraEstimate",
    "CameraModel",
    "Response",
    "apply_camera",
    "describe_camera",
    "encode_canonical",
    "estimate_camera",
    "parse_response",
]
