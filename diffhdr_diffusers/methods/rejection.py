"""Why a frame was not used: the measured exposure ratio against the reference, for the warning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..alignment.exposure import BLACK_LEVEL, WHITE_LEVEL

MAX_SAMPLES = 200_000  # pixels sampled for the ratio (a regular subsample of large frames)
EV_TOLERANCE = 0.5  # measured and expected exposure differ by more than this (stops): the exposure is the cause


def measured_ratio(frame: np.ndarray, reference: np.ndarray, gamma: float) -> float | None:
    """The median ratio ``linear(frame) / linear(reference)`` over pixels well exposed in both (None if too few).

    A median over the whole frame, without alignment: camera motion moves pixels but barely the ratio.
    """
    step = max(1, int(np.sqrt(frame.shape[0] * frame.shape[1] / MAX_SAMPLES)))
    frame, reference = frame[::step, ::step], reference[::step, ::step]
    good = ((frame > BLACK_LEVEL) & (frame < WHITE_LEVEL) & (reference > BLACK_LEVEL) & (reference < WHITE_LEVEL))
    if good.sum() < 100:
        return None
    ratios = np.power(frame[good], gamma) / np.power(reference[good], gamma)
    return float(np.median(ratios))


def describe_rejection(frames: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int, index: int,
                       gamma: float) -> str:
    """One clause: why frame ``index`` was judged not to match the reference, with the measured figure."""
    expected = 2.0 ** (float(exposures[index]) - float(exposures[reference_index]))
    measured = measured_ratio(frames[index], frames[reference_index], gamma)
    if measured is None:
        return ("alignment found no consistent match with the reference (too few pixels are well exposed in both "
                "to measure their exposure ratio)")
    figure = f"exposure ratio {measured:.3g} measured where {expected:.3g} was expected"
    if abs(np.log2(max(measured, 1e-12)) - np.log2(expected)) > EV_TOLERANCE:
        return f"its brightness does not match the reference through the camera response ({figure})"
    return f"alignment found no consistent match with the reference, though its exposure matches ({figure})"
