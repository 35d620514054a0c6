"""The mu-law range compressor used by DiffHDR and the Kalantari protocol (mu = 5000)."""

from __future__ import annotations

import math

import numpy as np
import torch

MU = 5000.0


def mu_law(radiance, mu: float = MU):
    """Compress linear radiance in [0, 1] to ``log(1 + mu x) / log(1 + mu)``."""
    if isinstance(radiance, torch.Tensor):
        return torch.log1p(mu * radiance) / math.log1p(mu)
    return np.log1p(mu * np.asarray(radiance)) / np.float32(math.log1p(mu))


def inverse_mu_law(compressed, mu: float = MU):
    """Invert :func:`mu_law`: ``((1 + mu) ** y - 1) / mu``."""
    if isinstance(compressed, torch.Tensor):
        return torch.expm1(compressed * math.log1p(mu)) / mu
    return np.expm1(np.asarray(compressed) * np.float32(math.log1p(mu))) / np.float32(mu)
