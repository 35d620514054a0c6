"""Exposure values mean what they say: radiance is in the EVs' units, and shifting every EV by c scales it by 2**-c."""

import numpy as np
import pytest
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.cli import attach_negative_values, build_parser
from diffhdr_diffusers.methods.classical import BASELINES
from diffhdr_diffusers.hdr_domain import from_model_units, linearize, make_conditioning, model_exposures, to_model_units
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.schedulers import original_ddim_scheduler

EXPOSURES = [-2.0, 0.0, 2.0]


@pytest.fixture(scope="module")
def bracket():
    rng = np.random.default_rng(3)
    radiance = rng.random((40, 48, 3)).astype(np.float32) * 2.0  # literal units of EXPOSURES
    return radiance, [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in EXPOSURES]


def test_model_units_round_trip_and_conditioning_ignores_the_offset(bracket):
    radiance, images = bracket
    assert list(model_exposures(EXPOSURES)) == [0.0, 2.0, 4.0]
    np.testing.assert_array_equal(from_model_units(to_model_units(radiance, EXPOSURES), EXPOSURES), radiance)
    np.testing.assert_array_equal(to_model_units(radiance, EXPOSURES), radiance / 4)
    np.testing.assert_array_equal(make_conditioning(images, EXPOSURES), make_conditioning(images, [0, 2, 4]))


@pytest.mark.parametrize("method", ["reference", "naive-merge", "debevec"])
def test_baselines_are_in_literal_units(bracket, method):
    radiance, images = bracket
    merged = BASELINES[method](images, EXPOSURES)
    shifted = BASELINES[method](images, [ev + 3 for ev in EXPOSURES])
    np.testing.assert_allclose(shifted, merged * 2.0**-3, rtol=1e-5)  # OpenCV merges in float32
    # R * 2**ev_ref ~= ldr_ref**2.2 where the reference is well exposed.
    well = (images[1] > 0.1) & (images[1] < 0.9)
    ratio = (merged * 2.0 ** EXPOSURES[1])[well] / linearize(images[1], 0)[well]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01 if method == "debevec" else 1e-5)  # 8-bit for OpenCV


@pytest.mark.parametrize("config", ["tiny", "aligned-tiny"])
def test_pipeline_output_scales_by_two_to_the_minus_shift(bracket, config):
    _, images = bracket
    torch.manual_seed(0)
    unet, encoder = build_models(config)
    alignment = {} if config.startswith("aligned") else None
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler("sample"), default_num_inference_steps=2,
                           default_patch_size=32, default_stride=16, alignment=alignment)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(images, EXPOSURES, generator=torch.Generator().manual_seed(0))
    for shift in (-1.5, 2.0, 5.0):
        moved = pipe(images, [ev + shift for ev in EXPOSURES], generator=torch.Generator().manual_seed(0))
        np.testing.assert_array_equal(moved.mu_law, out.mu_law)  # the network sees the same thing
        np.testing.assert_allclose(moved.hdr, out.hdr * np.float32(2.0**-shift), rtol=1e-6)


def test_negative_exposures_parse_as_users_type_them():
    argv = ["merge", "scene", "--exposures", "-2,0,2", "-o", "x.hdr"]
    assert attach_negative_values(argv)[2] == "--exposures=-2,0,2"
    args = build_parser().parse_args(attach_negative_values(argv))
    assert args.exposures == [-2.0, 0.0, 2.0] and args.output == ["x.hdr"]
    # A single negative number and other options are left alone.
    assert attach_negative_values(["merge", "--seed", "-3", "a"]) == ["merge", "--seed=-3", "a"]
    assert attach_negative_values(["merge", "-o", "-x.hdr"]) == ["merge", "-o", "-x.hdr"]
