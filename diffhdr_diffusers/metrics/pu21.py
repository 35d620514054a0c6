"""PU21 perceptually uniform encoding and the PU21-PSNR / PU21-SSIM metrics.

PU21 (Mantiuk and Azimi, "PU21: A novel perceptually uniform encoding for adapting existing quality
metrics for HDR", Picture Coding Symposium 2021) maps absolute luminance in cd/m^2 to values that are
roughly perceptually uniform, with 100 cd/m^2 mapped to about 256, so SDR metrics can run on HDR images.
It stands in for the HDR-VDP-2 column of HDR deghosting papers (HDR-VDP-2 is MATLAB-only).

Radiance from a merge is relative, so the metric needs an explicit display assumption: which radiance
value is shown at which luminance. :class:`DisplayAssumptions` holds it; ``describe()`` prints it next
to the numbers, because PU21 scores change with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .kalantari import _as_pair, psnr, ssim

# The 'banding_glare' parameter set of PU21, the one the authors recommend.
PU21_BANDING_GLARE = (
    0.353487901,
    0.3734658629,
    8.277049286e-05,
    0.9062562627,
    0.09150303166,
    0.9099517204,
    596.3148142,
)
PU21_MIN_LUMINANCE = 0.005
PU21_MAX_LUMINANCE = 10000.0
PU21_PEAK_VALUE = 256.0  # The data range the PU21 authors use for PSNR and SSIM (PU value of 100 cd/m^2).
RGB_TO_LUMINANCE = np.array([0.212656, 0.715158, 0.072186])  # Rec. 709 / sRGB primaries.


def pu21_encode(luminance) -> np.ndarray:
    """Encode absolute luminance (cd/m^2) with PU21 'banding_glare'; input is clamped to [0.005, 10000]."""
    p = PU21_BANDING_GLARE
    luminance = np.clip(np.asarray(luminance, dtype=np.float64), PU21_MIN_LUMINANCE, PU21_MAX_LUMINANCE)
    powered = luminance ** p[3]
    encoded = p[6] * (((p[0] + p[1] * powered) / (1.0 + p[2] * powered)) ** p[4] - p[5])
    return np.maximum(encoded, 0.0)


def luminance_of(radiance: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of linear RGB (H, W, 3)."""
    return np.asarray(radiance, dtype=np.float64) @ RGB_TO_LUMINANCE


@dataclass(frozen=True)
class DisplayAssumptions:
    """How relative radiance becomes absolute luminance for PU21 and ColorVideoVDP.

    Attributes:
        peak_luminance: cd/m^2 that the anchor radiance is shown at (1000 is a typical HDR display).
        reference_percentile: the anchor is this percentile of the *target's* luminance (robust to a
            few hot pixels). ``None`` anchors radiance 1.0 instead (Kalantari's ground truth is
            normalised to about 1). The same scale factor is applied to prediction and target.
    """

    peak_luminance: float = 1000.0
    reference_percentile: float | None = 99.9

    def __post_init__(self):
        if not np.isfinite(self.peak_luminance) or self.peak_luminance <= 0:
            raise InputError(f"peak_luminance must be a positive number of cd/m^2, got {self.peak_luminance}.")
        if self.reference_percentile is not None and not 0 < self.reference_percentile <= 100:
            raise InputError(
                f"reference_percentile must be in (0, 100] or None, got {self.reference_percentile}."
            )

    def scale_for(self, target: np.ndarray) -> float:
        """cd/m^2 per unit of radiance for this target."""
        if self.reference_percentile is None:
            anchor = 1.0
        else:
            anchor = float(np.percentile(luminance_of(target), self.reference_percentile))
        if not anchor > 0:
            anchor = 1.0  # An all-black target: fall back to radiance 1.0 -> peak.
        return self.peak_luminance / anchor

    def describe(self) -> str:
        """One line stating the assumptions, to print with every PU21 or ColorVideoVDP result."""
        anchor = (
            "radiance 1.0"
            if self.reference_percentile is None
            else f"the ground truth's {self.reference_percentile:g}th-percentile luminance"
        )
        return (
            f"PU21 'banding_glare'; {anchor} is shown at {self.peak_luminance:g} cd/m^2 (same scale for the "
            f"prediction); luminance clamped to [{PU21_MIN_LUMINANCE}, {PU21_MAX_LUMINANCE:g}] cd/m^2; "
            f"PU21-PSNR on RGB and PU21-SSIM on luminance with data range {PU21_PEAK_VALUE:g}"
        )


def _absolute(prediction, target, display: DisplayAssumptions) -> tuple[np.ndarray, np.ndarray]:
    prediction, target = _as_pair(prediction, target)
    if prediction.ndim != 3 or prediction.shape[-1] != 3:
        raise InputError(f"PU21 metrics expect linear RGB images (H, W, 3), got shape {prediction.shape}.")
    scale = display.scale_for(target)
    return np.maximum(prediction, 0.0) * scale, np.maximum(target, 0.0) * scale


def pu21_psnr(prediction, target, display: DisplayAssumptions | None = None) -> float:
    """PSNR of PU21-encoded RGB (each channel encoded as luminance), peak value 256."""
    display = display or DisplayAssumptions()
    prediction, target = _absolute(prediction, target, display)
    return psnr(pu21_encode(prediction), pu21_encode(target), data_range=PU21_PEAK_VALUE)


def pu21_ssim(prediction, target, display: DisplayAssumptions | None = None) -> float:
    """Gaussian SSIM (the Kalantari window) of PU21-encoded luminance, data range 256, no clipping."""
    display = display or DisplayAssumptions()
    prediction, target = _absolute(prediction, target, display)
    return ssim(
        pu21_encode(luminance_of(prediction)), pu21_encode(luminance_of(target)), data_range=PU21_PEAK_VALUE
    )
