"""PSNR and SSIM exactly as HDR deghosting papers report them on the Kalantari test set.

The protocol (shared by Kalantari 2017, AHDRNet, HDR-Transformer, DiffHDR, SAFNet and others):

* **PSNR-l / PSNR-mu**: ``-10 log10(MSE)`` with data range 1, on linear radiance or on its mu-law
  compression (mu = 5000), over all pixels and channels, without clipping.
* **SSIM-l / SSIM-mu**: values clipped to [0, 1] and scaled to [0, 255]; an 11x11 Gaussian window with
  sigma 1.5; ``C1 = (0.01 * 255)**2``, ``C2 = (0.03 * 255)**2``; per channel; the SSIM map keeps only
  the pixels where the window fits inside the image (a 5-pixel border is dropped); mean over channels.

Everything is computed in float64.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import InputError
from ..hdr_domain import MU

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_BORDER = SSIM_WINDOW // 2


def _as_pair(prediction, target) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images of the same shape and return them as float64 arrays."""
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape:
        raise InputError(
            f"prediction has shape {prediction.shape} but target has shape {target.shape}; "
            "metrics need images of the same size (crop or resize the prediction to the ground truth)."
        )
    if prediction.ndim not in (2, 3):
        raise InputError(f"metrics expect (H, W) or (H, W, C) images, got shape {prediction.shape}.")
    for name, image in (("prediction", prediction), ("target", target)):
        if not np.isfinite(image).all():
            raise InputError(f"the {name} contains NaN or infinite values; metrics need finite images.")
    return prediction, target


def psnr(prediction, target, data_range: float = 1.0) -> float:
    """``10 log10(data_range**2 / MSE)`` over all pixels and channels; ``inf`` for identical images."""
    prediction, target = _as_pair(prediction, target)
    mse = float(np.mean((prediction - target) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def _gaussian_window() -> np.ndarray:
    return cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F)


def _ssim_channel(prediction: np.ndarray, target: np.ndarray, data_range: float) -> float:
    """Mean SSIM of one channel over the pixels where the whole window fits (the 'valid' region)."""
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    kernel = _gaussian_window()
    border = SSIM_BORDER

    def blur(image: np.ndarray) -> np.ndarray:
        # The border mode never reaches the kept pixels: their windows lie inside the image.
        filtered = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
        return filtered[border:-border, border:-border]

    mean_p, mean_t = blur(prediction), blur(target)
    var_p = blur(prediction * prediction) - mean_p**2
    var_t = blur(target * target) - mean_t**2
    covariance = blur(prediction * target) - mean_p * mean_t
    ssim_map = ((2 * mean_p * mean_t + c1) * (2 * covariance + c2)) / (
        (mean_p**2 + mean_t**2 + c1) * (var_p + var_t + c2)
    )
    return float(ssim_map.mean())


def ssim(prediction, target, data_range: float = 255.0) -> float:
    """Gaussian SSIM (11x11, sigma 1.5) per channel over the valid region, averaged over channels.

    No clipping or scaling happens here; :func:`ssim_l` and :func:`ssim_mu` apply the protocol's
    clip-to-[0, 1] and scale-to-[0, 255]. Images must be larger than the 11x11 window.
    """
    prediction, target = _as_pair(prediction, target)
    height, width = prediction.shape[:2]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise InputError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {height}x{width}."
        )
    if prediction.ndim == 2:
        return _ssim_channel(prediction, target, data_range)
    channels = [
        _ssim_channel(np.ascontiguousarray(prediction[..., c]), np.ascontiguousarray(target[..., c]), data_range)
        for c in range(prediction.shape[-1])
    ]
    return float(np.mean(channels))


def _mu_law64(radiance: np.ndarray) -> np.ndarray:
    """mu-law in float64; negative radiance (never physical) is clipped to 0 first."""
    return np.log1p(MU * np.maximum(radiance, 0.0)) / math.log1p(MU)


def _to_255(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0) * 255.0


def psnr_l(prediction, target) -> float:
    """PSNR on linear radiance, data range 1."""
    return psnr(prediction, target, data_range=1.0)


def psnr_mu(prediction, target) -> float:
    """PSNR after mu-law compression (mu = 5000), data range 1."""
    prediction, target = _as_pair(prediction, target)
    return psnr(_mu_law64(prediction), _mu_law64(target), data_range=1.0)


def ssim_l(prediction, target) -> float:
    """SSIM on linear radiance clipped to [0, 1] and scaled to [0, 255]."""
    prediction, target = _as_pair(prediction, target)
    return ssim(_to_255(prediction), _to_255(target), data_range=255.0)


def ssim_mu(prediction, target) -> float:
    """SSIM on mu-law compressed radiance clipped to [0, 1] and scaled to [0, 255]."""
    prediction, target = _as_pair(prediction, target)
    return ssim(_to_255(_mu_law64(prediction)), _to_255(_mu_law64(target)), data_range=255.0)
