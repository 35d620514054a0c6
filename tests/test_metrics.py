"""The Kalantari-protocol metrics and the PU21 perceptual metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from diffhdr_diffusers.errors import DiffHDRError, InputError
from diffhdr_diffusers.metrics import (
    DisplayAssumptions,
    MissingDependencyError,
    compute_metrics,
    cvvdp_available,
    cvvdp_jod,
    psnr_l,
    psnr_mu,
    pu21_encode,
    pu21_psnr,
    pu21_ssim,
    ssim,
    ssim_l,
    ssim_mu,
)
from diffhdr_diffusers.hdr_domain import mu_law

# Our SSIM keeps the pixels where the 11x11 window fits (a 5-pixel border dropped). scikit-image with
# the same window computes the map with reflect padding and also crops (win_size - 1) // 2 = 5 pixels
# before averaging, so on the same image the two agree up to float64 rounding:
SKIMAGE_SSIM_BOUND = 1e-10


def _radiance(seed: int, shape=(40, 56, 3)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(np.log(1e-4), 0.0, shape)).astype(np.float32)


def _skimage_ssim(prediction: np.ndarray, target: np.ndarray) -> float:
    return structural_similarity(
        prediction, target, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=2,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_skimage_gaussian_ssim(seed):
    target = _radiance(seed).astype(np.float64)
    rng = np.random.default_rng(seed + 10)
    prediction = np.clip(target * rng.normal(1.0, 0.2, target.shape) + rng.normal(0, 0.002, target.shape), 0, None)
    expected_l = _skimage_ssim(np.clip(prediction, 0, 1) * 255.0, np.clip(target, 0, 1) * 255.0)
    expected_mu = _skimage_ssim(np.clip(mu_law(prediction.astype(np.float64)), 0, 1) * 255.0,
                                np.clip(mu_law(target.astype(np.float64)), 0, 1) * 255.0)
    assert abs(ssim_l(prediction, target) - expected_l) < SKIMAGE_SSIM_BOUND
    assert abs(ssim_mu(prediction, target) - expected_mu) < SKIMAGE_SSIM_BOUND
    assert expected_mu < 0.99  # The images really differ, so the comparison means something.


def test_ssim_is_the_mean_of_skimages_map_without_its_5_pixel_border():
    target = np.clip(_radiance(3), 0, 1) * 255.0
    prediction = np.clip(target + np.random.default_rng(3).normal(0, 20, target.shape), 0, 255)
    _, ssim_map = structural_similarity(
        prediction, target, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255,
        channel_axis=2, full=True,
    )
    assert abs(ssim(prediction, target) - ssim_map[5:-5, 5:-5].mean()) < SKIMAGE_SSIM_BOUND
    # The dropped border (computed by skimage with reflect padding) would change the score.
    assert abs(ssim(prediction, target) - ssim_map.mean()) > 1e-4


def test_psnr_matches_hand_computation():
    target = np.zeros((4, 4, 3))
    prediction = np.zeros((4, 4, 3))
    prediction[0, 0, 0] = 0.5  # MSE = 0.25 / 48.
    assert psnr_l(prediction, target) == pytest.approx(10 * math.log10(48 / 0.25), abs=1e-12)
    compressed = math.log1p(5000 * 0.5) / math.log1p(5000)
    assert psnr_mu(prediction, target) == pytest.approx(10 * math.log10(48 / compressed**2), abs=1e-12)


def test_identical_images_give_inf_and_one():
    target = _radiance(4)
    scores = compute_metrics(target, target.copy())
    assert scores["psnr_l"] == math.inf and scores["psnr_mu"] == math.inf and scores["pu21_psnr"] == math.inf
    assert scores["ssim_l"] == pytest.approx(1.0, abs=1e-12)
    assert scores["ssim_mu"] == pytest.approx(1.0, abs=1e-12)
    assert scores["pu21_ssim"] == pytest.approx(1.0, abs=1e-12)


def test_every_metric_degrades_monotonically_with_noise():
    target = _radiance(5)
    noise = np.random.default_rng(6).normal(size=target.shape)
    rows = [compute_metrics(np.clip(target * (1 + sigma * noise), 0, None), target) for sigma in (0.02, 0.1, 0.3)]
    for name in rows[0]:
        values = [row[name] for row in rows]
        assert values[0] > values[1] > values[2], (name, values)


def test_ssim_l_clips_to_one_but_psnr_l_does_not():
    target = np.full((16, 16, 3), 0.9)
    brighter = np.full((16, 16, 3), 3.0)
    assert ssim_l(brighter, np.ones((16, 16, 3))) == pytest.approx(1.0)
    assert psnr_l(brighter, target) == pytest.approx(-10 * math.log10(2.1**2))


def test_metrics_reject_mismatched_or_nonfinite_images():
    image = np.ones((16, 16, 3))
    with pytest.raises(InputError, match="shape"):
        psnr_l(image, np.ones((16, 15, 3)))
    bad = image.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        ssim_mu(bad, image)
    with pytest.raises(InputError, match="11x11"):
        ssim(np.ones((8, 8)), np.ones((8, 8)))


def test_pu21_encoding_matches_published_anchor_points():
    # PU21 maps 100 cd/m^2 to about 256 (the SDR-like range) and is strictly increasing.
    luminance = np.array([0.005, 0.1, 1.0, 100.0, 1000.0, 10000.0])
    encoded = pu21_encode(luminance)
    assert encoded[3] == pytest.approx(256.0, abs=0.5)
    assert encoded[0] == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(encoded) > 0)
    assert pu21_encode(20000.0) == pu21_encode(10000.0)  # Clamped to the valid range.


def test_pu21_depends_on_the_stated_display_and_describes_it():
    target = _radiance(7)
    prediction = target * 1.1
    dim = DisplayAssumptions(peak_luminance=100.0)
    bright = DisplayAssumptions(peak_luminance=4000.0)
    assert pu21_psnr(prediction, target, dim) != pytest.approx(pu21_psnr(prediction, target, bright))
    assert "4000 cd/m^2" in bright.describe() and "99.9th-percentile" in bright.describe()
    assert "radiance 1.0" in DisplayAssumptions(reference_percentile=None).describe()
    # Scaling prediction and target together does not change a percentile-anchored score.
    assert pu21_ssim(prediction * 8, target * 8, bright) == pytest.approx(pu21_ssim(prediction, target, bright))
    with pytest.raises(InputError):
        DisplayAssumptions(peak_luminance=-1)


@pytest.mark.skipif(cvvdp_available(), reason="cvvdp is installed")
def test_missing_cvvdp_gives_a_clear_error():
    image = _radiance(8)
    with pytest.raises(MissingDependencyError, match="pip install cvvdp") as raised:
        cvvdp_jod(image, image)
    assert isinstance(raised.value, DiffHDRError)
