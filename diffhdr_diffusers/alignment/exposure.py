"""Exposure matching: show two frames of a bracket at one exposure, and where both carry information.

Flow and photometric checks compare a frame with the reference at the longer of their two exposures:
a shorter frame is raised to the reference's exposure, and for a longer frame the reference is
re-exposed at that frame's EV. The re-exposed image is clipped like a real capture, so saturation
appears in both views alike and no clipped value is ever extrapolated. Saturated or black pixels carry no motion information.
"""

from __future__ import annotations

import numpy as np

from ..hdr_domain import GAMMA, linearize

BLACK_LEVEL = 0.02  # LDR values at or below this (brightest channel) are black: noise, no structure
WHITE_LEVEL = 0.97  # LDR values at or above this (brightest channel) are saturated


def reexpose(image: np.ndarray, ev: float, target_ev: float, gamma: float = GAMMA) -> np.ndarray:
    """``image`` (LDR, taken at ``ev``) as a camera at ``target_ev`` would see it: ``clip(lin * 2**target_ev) ** (1/gamma)``."""
    exposed = np.clip(linearize(image, ev, gamma) * np.float32(2.0**target_ev), 0.0, 1.0)
    return (exposed ** np.float32(1.0 / gamma)).astype(np.float32)


def brightest(image: np.ndarray) -> np.ndarray:
    """(H, W) brightest channel of an (H, W, C) image: ``image.max(axis=2)``, without numpy's slow short-axis reduction."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] < 2:
        return image.max(axis=2)
    out = np.maximum(image[..., 0], image[..., 1])
    for channel in range(2, image.shape[2]):
        np.maximum(out, image[..., channel], out=out)
    return out


def informative(image: np.ndarray, black: float = BLACK_LEVEL, white: float = WHITE_LEVEL) -> np.ndarray:
    """Bool (H, W): pixels whose brightest channel is neither black nor saturated."""
    level = brightest(image)
    return (level > black) & (level < white)


def match_exposures(
    reference: np.ndarray,
    frame: np.ndarray,
    reference_ev: float,
    frame_ev: float,
    gamma: float = GAMMA,
    black: float = BLACK_LEVEL,
    white: float = WHITE_LEVEL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference and a frame at one exposure, and where both are informative.

    Returns:
        ``(reference_view, frame_view, valid)``: two float32 (H, W, 3) LDR images at one exposure (a
        shorter frame raised to ``reference_ev``, or the reference lowered to a longer ``frame_ev``), and
        a bool (H, W) mask of pixels neither black nor saturated in either original frame.
    """
    reference = np.asarray(reference, dtype=np.float32)
    frame = np.asarray(frame, dtype=np.float32)
    if frame_ev <= reference_ev:
        reference_view, frame_view = reference, reexpose(frame, frame_ev, reference_ev, gamma)
    else:
        reference_view, frame_view = reexpose(reference, reference_ev, frame_ev, gamma), frame
    valid = informative(reference, black, white) & informative(frame, black, white)
    return reference_view, frame_view, valid


def grey_u8(image: np.ndarray) -> np.ndarray:
    """8-bit grey (channel mean) of an LDR image in [0, 1], as dense flow wants it."""
    grey = np.asarray(image, dtype=np.float32).mean(axis=2)
    return np.clip(grey * 255.0 + 0.5, 0, 255).astype(np.uint8)


MEASURE_LOW, MEASURE_HIGH = 0.1, 0.9  # LDR levels (brightest channel) trusted for measuring an exposure
MIN_MEASURED = 64  # pixels needed to measure an exposure


def measured_exposure(reference: np.ndarray, warped: np.ndarray, mask: np.ndarray, gamma: float = GAMMA) -> float | None:
    """A frame's exposure relative to the reference, in stops, measured on matching pixels.

    Args:
        reference: the reference frame, float (H, W, 3) LDR.
        warped: the other frame warped onto it.
        mask: bool (H, W), pixels where the two show the same point (say, where the flow is consistent).
        gamma: the inverse response exponent.

    Returns:
        The median of ``log2(linear(warped) / linear(reference))`` (channel means) over the masked pixels that
        are well exposed in both frames (``None`` with fewer than :data:`MIN_MEASURED`): the frame's EV minus
        the reference's, for a correct response and correct EVs.
    """
    well = mask & _well_exposed(reference) & _well_exposed(warped)
    if int(well.sum()) < MIN_MEASURED:
        return None
    linear = lambda image: np.mean(np.asarray(image, np.float32)[well] ** np.float32(gamma), axis=-1)  # noqa: E731
    return float(np.median(np.log2(linear(warped) / np.maximum(linear(reference), np.float32(1e-8)))))


def _well_exposed(image: np.ndarray) -> np.ndarray:
    level = brightest(image)
    return (level > MEASURE_LOW) & (level < MEASURE_HIGH)
