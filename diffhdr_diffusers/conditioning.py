"""The network's view of a bracket: per exposure, the LDR image and its HDR-domain version."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GAMMA = 2.2


def relative_exposures(exposures: Sequence[float]) -> np.ndarray:
    """EV stops relative to the shortest exposure, as Kalantari's ``exposure.txt`` lists them (0, 2, 4)."""
    values = np.asarray(exposures, dtype=np.float64)
    return values - values.min()


def make_conditioning(images: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = GAMMA) -> np.ndarray:
    """Stack ``[ldr, ldr**gamma / 2**ev]`` for every exposure along channels.

    Args:
        images: N float arrays (H, W, 3) in [0, 1], short to long.
        exposures: N EV stops; shifted so that the shortest is 0 (the training convention).
        gamma: the inverse camera response exponent.

    Returns:
        float32 array (H, W, 6 * N).
    """
    evs = relative_exposures(exposures)
    planes = []
    for image, ev in zip(images, evs):
        image = np.asarray(image, dtype=np.float32)
        planes += [image, (image**gamma / np.float32(2.0**ev)).astype(np.float32)]
    return np.concatenate(planes, axis=-1)
