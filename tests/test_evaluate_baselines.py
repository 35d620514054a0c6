"""Classical merges (reference frame, naive triangle-weighted merge, OpenCV Debevec)."""

from __future__ import annotations

import numpy as np
import pytest
from merge_support import EXPOSURES, expose, moved, scene_radiance

from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.methods.classical import BASELINES, baseline, gamma_response, linearize, to_uint8
from diffhdr_diffusers.hdr_domain import to_model_units
from diffhdr_diffusers.metrics import psnr_mu


def _bracket(radiance, moving=False):
    """Three 16-bit-quantised exposures of ``radiance`` (with the moving square when ``moving``)."""
    if not moving:
        return [np.round(expose(radiance, ev) * 65535) / 65535 for ev in EXPOSURES]
    return [np.round(expose(moved(radiance, frame, True), ev) * 65535) / 65535 for frame, ev in enumerate(EXPOSURES)]


@pytest.fixture(scope="module")
def radiance():
    return scene_radiance(np.random.default_rng(0), 32, 48)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_return_float32_radiance_in_the_ground_truth_scale(name, radiance):
    # Exposures with an arbitrary offset: the merge is in their literal units, 2**7.5 times the offset-free one.
    shift = -7.5
    merged = baseline(name)(_bracket(radiance), [ev + shift for ev in EXPOSURES])
    assert merged.dtype == np.float32 and merged.shape == radiance.shape
    assert np.isfinite(merged).all() and merged.min() >= 0
    assert psnr_mu(to_model_units(merged, [ev + shift for ev in EXPOSURES]), radiance) > 25


def test_reference_is_the_medium_frame_linearised(radiance):
    images = _bracket(radiance)
    np.testing.assert_array_equal(baseline("reference")(images, EXPOSURES), linearize(images[1], EXPOSURES[1]))
    # Highlights saturated in the medium frame stay clipped at 1 / 2**2.
    assert baseline("reference")(images, EXPOSURES).max() <= 0.25 + 1e-6


def test_merges_recover_a_static_scene_better_than_the_reference(radiance):
    # Channels of natural scenes are correlated; OpenCV weights whole pixels (not channels), so a
    # scene with independent channels would penalise Debevec for a reason unrelated to this test.
    radiance = np.clip(radiance[..., :1] * np.array([1.0, 0.8, 0.6], dtype=np.float32), 0, 1)
    images = _bracket(radiance)
    reference = psnr_mu(baseline("reference")(images, EXPOSURES), radiance)
    naive = psnr_mu(baseline("naive-merge")(images, EXPOSURES), radiance)
    debevec = psnr_mu(baseline("debevec")(images, EXPOSURES), radiance)
    assert naive > 60  # 16-bit inputs, exact response: near-lossless.
    assert naive > debevec > reference  # Debevec is limited by OpenCV's 8-bit inputs.


def test_naive_merge_ghosts_where_the_reference_does_not(radiance):
    images = _bracket(radiance, moving=True)
    target = moved(radiance, 1, True)  # The object is where the medium (reference) frame shows it.
    ghost = (slice(8, 16), slice(4, 10))  # Where only the short frame shows the (unsaturated) object.
    naive_error = np.abs(baseline("naive-merge")(images, EXPOSURES) - target)[ghost].mean()
    reference_error = np.abs(baseline("reference")(images, EXPOSURES) - target)[ghost].mean()
    assert naive_error > 10 * reference_error


def test_debevec_inputs_and_response_are_documented_8_bit():
    assert to_uint8(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 128, 255, 255]
    response = gamma_response()
    assert response.shape == (256, 1, 3) and response.dtype == np.float32
    assert response[0, 0, 0] == response[1, 0, 0] > 0  # No log(0) in OpenCV's merge.
    assert response[255, 0, 0] == pytest.approx(1.0)


def test_unknown_baseline_and_mismatched_inputs_are_rejected(radiance):
    with pytest.raises(InputError, match="naive-merge"):
        baseline("median")
    with pytest.raises(InputError, match="one exposure per image"):
        baseline("naive-merge")(_bracket(radiance), [0.0, 2.0])
