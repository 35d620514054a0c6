"""processing_resolution / match_input_resolution: a downscaled model run carried back by guided upsampling."""

import cv2
import numpy as np
import pytest
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units
from diffhdr_diffusers.merging import flow_merge_radiance
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.pipelines.resolution import guided_upsample, processing_size, resize_frames, upsample
from diffhdr_diffusers.merging import reference_image
from diffhdr_diffusers.schedulers import original_ddim_scheduler


@pytest.fixture(scope="module")
def scene():
    return synthesize_scene(seed=7, index=0, size=(96, 144), ev_sets=[(-2.0, 0.0, 2.0)])


def pipeline(config: str, trained: bool = False, **settings) -> DiffHDRPipeline:
    torch.manual_seed(0)
    unet, encoder = build_models(config)
    if trained:  # a correction that is not zero
        torch.nn.init.normal_(unet.conv_out.weight, std=0.01)
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler("sample" if "aligned" in config else "epsilon"),
                           default_num_inference_steps=2, default_patch_size=32, default_stride=16,
                           alignment={} if "aligned" in config else None, **settings)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call(pipe, scene, **kwargs):
    return pipe(scene.images, scene.exposures, generator=torch.Generator().manual_seed(0), **kwargs)


@pytest.mark.parametrize("size, resolution, expected", [
    ((3000, 4000), 512, (384, 512)), ((4000, 3000), 512, (512, 384)), ((96, 144), 64, (43, 64)),
    ((96, 144), 0, (96, 144)), ((96, 144), 144, (96, 144)), ((96, 144), 1000, (96, 144)),  # never upscaled
])
def test_processing_size_is_the_longest_side(size, resolution, expected):
    assert processing_size(*size, resolution) == expected


def test_guided_upsampling_of_an_unchanged_guide_is_the_full_size_guide():
    rng = np.random.default_rng(0)
    full = rng.random((40, 60, 3), dtype=np.float32)
    small = upsample(full, 10, 15)  # any processing-size guide
    np.testing.assert_array_equal(guided_upsample(small, small, full), full)


def test_guided_upsampling_carries_a_correction_and_keeps_full_size_detail():
    rng = np.random.default_rng(1)
    full = rng.random((40, 60, 3), dtype=np.float32)  # detail at the finest scale
    small = upsample(full, 10, 15)
    out = guided_upsample(small + 0.1, small, full)
    np.testing.assert_allclose(out, full + 0.1, atol=1e-5)  # a constant correction, detail of the full guide
    doubled = guided_upsample(2 * small, small, full, radius=2, eps=1e-4)  # proportional to the guide
    assert np.abs(doubled - 2 * full).mean() < 0.1 * np.abs(full).mean()


class CountingDIS:
    """OpenCV's DIS flow, counting its calls (a stand-in for ``cv2.DISOpticalFlow_create``)."""

    calls = 0

    def __init__(self, preset):
        self.dis = DIS_CREATE(preset)

    def calc(self, *args):
        CountingDIS.calls += 1
        return self.dis.calc(*args)


DIS_CREATE = cv2.DISOpticalFlow_create


def test_an_untrained_aligned_model_returns_the_full_size_flow_merge(scene, monkeypatch):
    monkeypatch.setattr(cv2, "DISOpticalFlow_create", CountingDIS)
    CountingDIS.calls = 0
    out = call(pipeline("aligned-tiny"), scene, processing_resolution=72)
    # A bracket is aligned once (forward and backward flow per non-reference frame): the processing-size
    # conditioning warps with the full-size prior's flows, resized, instead of aligning again (8 calls before).
    assert CountingDIS.calls == 4
    merged = flow_merge_radiance(scene.images, scene.exposures)
    assert out.hdr.shape == (1, 96, 144, 3)
    np.testing.assert_allclose(out.mu_law[0], np.clip(mu_law(to_model_units(merged, scene.exposures)), 0, 1),
                               atol=1e-5)


def test_a_correction_learned_at_low_resolution_reaches_the_full_size(scene):
    trained, untrained = pipeline("aligned-tiny", trained=True), pipeline("aligned-tiny")
    low = call(trained, scene, processing_resolution=72, match_input_resolution=False)
    full = call(trained, scene, processing_resolution=72)
    assert low.mu_law.shape == (1, 48, 72, 3) and full.mu_law.shape == (1, 96, 144, 3)
    low_correction = low.mu_law[0] - call(untrained, scene, processing_resolution=72,
                                          match_input_resolution=False).mu_law[0]
    full_correction = full.mu_law[0] - call(untrained, scene, processing_resolution=72).mu_law[0]
    assert np.abs(low_correction).mean() > 1e-2
    # At the processing size the carried correction is the model's, smoothed over the fit's windows.
    smooth = lambda image: cv2.blur(image, (5, 5))  # noqa: E731
    carried = smooth(resize_frames([full_correction], (48, 72))[0])
    assert np.corrcoef(carried.ravel(), smooth(low_correction).ravel())[0, 1] > 0.8


def test_paper_model_is_guided_by_the_reference_frame(scene):
    pipe = pipeline("tiny")
    out = call(pipe, scene, processing_resolution=72)
    low = call(pipe, scene, processing_resolution=72, match_input_resolution=False)
    assert out.hdr.shape == (1, 96, 144, 3) and low.hdr.shape == (1, 48, 72, 3)
    coarse = lambda image: resize_frames([image], (6, 9))[0]  # noqa: E731 (the coarse scale a correction keeps)
    assert np.abs(coarse(out.mu_law[0]) - coarse(low.mu_law[0])).mean() < 0.05
    # The guide is the reference frame's HDR view: an output equal to it comes back as its full-size self.
    prepared = pipe.image_processor.preprocess(scene.images, scene.exposures, 3, None, 72)
    mean, _ = pipe.image_processor.match_input_resolution(prepared.guide, None, prepared)
    np.testing.assert_array_equal(mean[0].permute(1, 2, 0).numpy(), reference_image(scene.images, scene.exposures))


def test_default_comes_from_the_config_and_is_saved(scene, tmp_path):
    pipe = pipeline("aligned-tiny", trained=True, default_processing_resolution=72)
    pipe.save_pretrained(tmp_path)
    loaded = DiffHDRPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.default_processing_resolution == 72
    np.testing.assert_array_equal(call(loaded, scene).mu_law, call(pipe, scene, processing_resolution=72).mu_law)
    native = call(pipe, scene, processing_resolution=0)
    assert not np.array_equal(native.mu_law, call(pipe, scene).mu_law)


def test_ensembles_upsample_their_uncertainty(scene):
    out = call(pipeline("aligned-tiny", trained=True), scene, processing_resolution=72, ensemble_size=2)
    assert out.uncertainty.shape == out.mu_law.shape == (1, 96, 144, 3)
    assert out.uncertainty.max() > 0


@pytest.mark.parametrize("value", [-1, 1.5, "512", True])
def test_bad_processing_resolution_is_refused(scene, value):
    with pytest.raises(InputError, match="processing_resolution"):
        call(pipeline("tiny"), scene, processing_resolution=value)
