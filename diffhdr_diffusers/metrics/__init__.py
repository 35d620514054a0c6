"""Image quality metrics for HDR merges: the Kalantari protocol (PSNR/SSIM, linear and mu-law) and
perceptual stand-ins for HDR-VDP-2 (PU21-PSNR/SSIM, optional ColorVideoVDP)."""

from __future__ import annotations

import numpy as np

from .cvvdp import MissingDependencyError, cvvdp_available, cvvdp_jod
from .kalantari import psnr, psnr_l, psnr_mu, ssim, ssim_l, ssim_mu
from .pu21 import DisplayAssumptions, pu21_encode, pu21_psnr, pu21_ssim

KALANTARI_METRICS = ("psnr_mu", "psnr_l", "ssim_mu", "ssim_l")
PERCEPTUAL_METRICS = ("pu21_psnr", "pu21_ssim")


def compute_metrics(
    prediction: np.ndarray,
    target: np.ndarray,
    display: DisplayAssumptions | None = None,
    perceptual: bool = True,
    cvvdp: bool = False,
) -> dict[str, float]:
    """All metrics of one linear-radiance prediction (H, W, 3) against its ground truth.

    Returns ``psnr_mu``, ``psnr_l``, ``ssim_mu``, ``ssim_l`` (Kalantari protocol), plus ``pu21_psnr``
    and ``pu21_ssim`` when ``perceptual`` and ``cvvdp_jod`` when ``cvvdp``, both under ``display``
    (see :class:`DisplayAssumptions`; print ``display.describe()`` with the numbers).
    """
    scores = {
        "psnr_mu": psnr_mu(prediction, target),
        "psnr_l": psnr_l(prediction, target),
        "ssim_mu": ssim_mu(prediction, target),
        "ssim_l": ssim_l(prediction, target),
    }
    display = display or DisplayAssumptions()
    if perceptual:
        scores["pu21_psnr"] = pu21_psnr(prediction, target, display)
        scores["pu21_ssim"] = pu21_ssim(prediction, target, display)
    if cvvdp:
        scores["cvvdp_jod"] = cvvdp_jod(prediction, target, display)
    return scores


__all__ = [
    "KALANTARI_METRICS",
    "PERCEPTUAL_METRICS",
    "DisplayAssumptions",
    "MissingDependencyError",
    "compute_metrics",
    "cvvdp_available",
    "cvvdp_jod",
    "psnr",
    "psnr_l",
    "psnr_mu",
    "pu21_encode",
    "pu21_psnr",
    "pu21_ssim",
    "ssim",
    "ssim_l",
    "ssim_mu",
]
