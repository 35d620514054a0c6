"""Why a frame was not used: the measured exposure ratio against the reference, for the warning."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WELL_EXPOSED = (0.1, 0.9)  # code values (brightest channel) counted as well exposed, away from noise and clipping
MAX_SAMPLES = 200_000  # pixels sampled for the ratio (a regular subsample of large frames)
EV_TOLERANCE = 0.2  # measured and expected exposure differ by more than this (stops, 15 %): the exposure is the cause


def measured_ratio(frame: np.ndarray, reference: np.ndarray, gamma: float) -> float | None:
    """The median ratio ``linear(frame) / linear(reference)`` (channel means) over pixels well exposed in both
    (brightest channel within :data:`WELL_EXPOSED`), or None if too few.

    A median over the whole frame, without alignment: camera motion moves pixels but barely the ratio.
    """
    step = max(1, int(np.sqrt(frame.shape[0] * frame.shape[1] / MAX_SAMPLES)))
    frame, reference = frame[::step, ::step], reference[::step, ::step]
    low, high = WELL_EXPOSED
    frame_peak, reference_peak = frame.max(axis=-1), reference.max(axis=-1)
    good = (frame_peak > low) & (frame_peak < high) & (reference_peak > low) & (reference_peak < high)
    if good.sum() < 100:
        return None
    ratios = np.power(frame.mean(axis=-1)[good], gamma) / np.power(reference.mean(axis=-1)[good], gamma)
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
