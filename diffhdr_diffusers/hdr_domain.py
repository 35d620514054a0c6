"""The HDR domain: mu-law, the ``ldr**gamma / 2**ev`` view of a frame, and exposure units.

Exposure values are literal: output radiance ``R`` satisfies ``R * 2**ev_i ~= ldr_i**gamma`` wherever
frame ``i`` is well exposed, whatever the EVs' offset (a -2/0/+2 bracket and a 0/2/4 bracket of the
same photos give radiance that differs by exactly 4x). The networks work in *model units*, where the
shortest exposure is at EV 0 (Kalantari's convention, values about [0, 1]); :func:`to_model_units` and
:func:`from_model_units` convert, and are exact inverses.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

GAMMA = 2.2
MU = 5000.0


def _is_tensor(value) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch (the CLI parses arguments without it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def mu_law(radiance, mu: float = MU):
    """Compress linear radiance in [0, 1] to ``log(1 + mu x) / log(1 + mu)`` (numpy arrays or torch tensors)."""
    if _is_tensor(radiance):
        return (mu * radiance).log1p() / math.log1p(mu)
    return np.log1p(mu * np.asarray(radiance)) / np.float32(math.log1p(mu))


def inverse_mu_law(compressed, mu: float = MU):
    """Invert :func:`mu_law`: ``((1 + mu) ** y - 1) / mu``."""
    if _is_tensor(compressed):
        return (compressed * math.log1p(mu)).expm1() / mu
    return np.expm1(np.asarray(compressed) * np.float32(math.log1p(mu))) / np.float32(mu)


def linearize(image: np.ndarray, ev: float, gamma: float = GAMMA) -> np.ndarray:
    """The HDR-domain view of one frame: ``ldr**gamma / 2**ev`` (float32), in the units ``ev`` is given in."""
    return (np.asarray(image, dtype=np.float32) ** gamma / np.float32(2.0**ev)).astype(np.float32)


def model_exposures(exposures: Sequence[float]) -> np.ndarray:
    """EVs in model units: shifted so that the shortest is 0 (as Kalantari's ``exposure.txt`` lists them)."""
    values = np.asarray(exposures, dtype=np.float64)
    return values - values.min()


def model_scale(exposures: Sequence[float]) -> float:
    """``2**min(ev)``: literal radiance times this is radiance in model units."""
    return float(2.0 ** np.min(np.asarray(exposures, dtype=np.float64)))


def to_model_units(radiance, exposures: Sequence[float]):
    """Literal radiance (in the EVs' units) to model units (shortest exposure at EV 0)."""
    return radiance * model_scale(exposures)


def from_model_units(radiance, exposures: Sequence[float]):
    """Model units back to literal radiance: shifting every EV by ``c`` scales the result by ``2**-c``."""
    return radiance / model_scale(exposures)


def make_conditioning(images: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = GAMMA) -> np.ndarray:
    """Stack ``[ldr, ldr**gamma / 2**ev]`` for every exposure along channels, in model units.

    Args:
        images: N float arrays (H, W, 3) in [0, 1], short to long.
        exposures: N EV stops, any offset; the network sees them shifted so that the shortest is 0.
        gamma: the inverse camera response exponent.

    Returns:
        float32 array (H, W, 6 * N).
    """
    planes = []
    for image, ev in zip(images, model_exposures(exposures)):
        image = np.asarray(image, dtype=np.float32)
        planes += [image, linearize(image, ev, gamma)]
    return np.concatenate(planes, axis=-1)
