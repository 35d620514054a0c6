"""The aligned DiffHDR variant: conditioned on the aligned bracket and the flow-merge prior, sampling the residual."""

import numpy as np
import pytest
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.alignment import RejectedFrame
from diffhdr_diffusers.data import TrainingTransform
from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.errors import FallbackWarning, InputError
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units
from diffhdr_diffusers.merging import flow_merge
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.pipelines.model_card import render_model_card
from diffhdr_diffusers.pipelines.presets import FAST_PRESET
from diffhdr_diffusers.prior import prior_channels, prior_conditioning
from diffhdr_diffusers.schedulers import original_ddim_scheduler, scheduler_from_name


@pytest.fixture(scope="module")
def scene():
    return synthesize_scene(seed=5, index=0, size=(64, 96), ev_sets=[(-2.0, 0.0, 2.0)])


def aligned_pipeline(seed: int = 0, trained: bool = False, **settings) -> DiffHDRPipeline:
    torch.manual_seed(seed)
    unet, encoder = build_models("aligned-tiny")
    if trained:  # a model that has learned something: its correction is not zero
        torch.nn.init.normal_(unet.conv_out.weight, std=0.01)
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler("sample"), default_num_inference_steps=3,
                           default_patch_size=32, default_stride=16, alignment={}, **settings)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_config_adds_prior_planes_and_keeps_the_paper_network_unchanged():
    _, paper_encoder = build_models("tiny")
    unet, encoder = build_models("aligned-tiny")
    assert encoder.in_channels == paper_encoder.in_channels + prior_channels(3) == 18 + 6
    assert set(encoder.state_dict()) - set(paper_encoder.state_dict()) == {"prior_conv.weight", "prior_conv.bias"}
    assert not unet.conv_out.weight.any() and not unet.conv_out.bias.any()


@pytest.mark.parametrize("mu", [5000.0, 100.0])
@pytest.mark.parametrize("processing_resolution", [0, 64])
def test_an_untrained_aligned_model_returns_the_flow_merge(scene, mu, processing_resolution):
    """Whatever the pipeline's mu (the prior is built with it, not with the default 5000), and at a processing
    resolution too (the guide comes back exactly where the model does not correct it)."""
    out = aligned_pipeline(mu=mu)(scene.images, scene.exposures, generator=torch.Generator().manual_seed(0),
                                  processing_resolution=processing_resolution)
    merged = flow_merge(scene.images, scene.exposures).radiance
    expected = np.clip(mu_law(to_model_units(merged, scene.exposures), mu), 0, 1)
    np.testing.assert_allclose(out.mu_law[0], expected, atol=1e-5)
    np.testing.assert_allclose(out.hdr[0], merged, rtol=1e-3, atol=1e-6)
    assert out.alignment_failures == [[]]


def test_prior_conditioning_layout(scene):
    prepared = prior_conditioning(scene.images, scene.exposures)
    assert prepared.conditioning.shape == (64, 96, 18 + 3 + 3)
    np.testing.assert_array_equal(prepared.conditioning[..., 18:21], prepared.prior)
    confidence = prepared.conditioning[..., 21:]
    assert confidence.min() >= 0 and confidence.max() <= 1
    np.testing.assert_array_equal(confidence[..., 1], 1.0)  # the reference trusts itself


def test_save_load_carries_alignment(scene, tmp_path):
    pipe = aligned_pipeline(trained=True)
    generator = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    reference = pipe(scene.images, scene.exposures, generator=generator()).mu_law
    prior = prior_conditioning(scene.images, scene.exposures).prior
    assert np.abs(reference[0] - prior).mean() > 1e-3  # this model corrects the prior
    pipe.save_pretrained(tmp_path / "aligned")
    loaded = DiffHDRPipeline.from_pretrained(tmp_path / "aligned")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.alignment == {}
    np.testing.assert_allclose(loaded(scene.images, scene.exposures, generator=generator()).mu_law, reference,
                               atol=1e-5)


def test_correction_gate_keeps_the_prior_where_the_reference_is_not_clipped(scene, tmp_path):
    """With correction_gate, a correcting model leaves the flow-merge exactly as it is wherever the reference's
    brightest channel is below the gate's start, corrects as without a gate where it is clipped, and the gate
    travels with the saved pipeline."""
    generator = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    free = aligned_pipeline(trained=True)(scene.images, scene.exposures, generator=generator()).mu_law[0]
    gated_pipe = aligned_pipeline(trained=True, correction_gate=[0.9, 0.95])
    gated = gated_pipe(scene.images, scene.exposures, generator=generator()).mu_law[0]
    prepared = prior_conditioning(scene.images, scene.exposures)
    level = np.asarray(scene.images[1]).max(axis=-1)
    below, clipped = level < 0.9, level >= 0.95
    assert below.mean() > 0.3 and clipped.mean() > 0.01
    np.testing.assert_allclose(gated[below], prepared.prior[below], atol=1e-6)
    assert np.abs(free[below] - prepared.prior[below]).mean() > 1e-3  # without the gate it corrects there too
    np.testing.assert_allclose(gated[clipped], free[clipped], atol=1e-5)
    gated_pipe.save_pretrained(tmp_path / "gated")
    assert DiffHDRPipeline.from_pretrained(tmp_path / "gated").config.correction_gate == [0.9, 0.95]
    assert "reaches 0.9 (fully from 0.95)" in render_model_card(folder=tmp_path / "gated")  # the card says so
    with pytest.raises(InputError, match="correction_gate"):
        DiffHDRPipeline(*build_models("tiny"), original_ddim_scheduler(), correction_gate=[0.9, 1.0])
    for bad in ([1.0, 0.9], [0.9]):
        with pytest.raises(InputError, match="two codes 0 <= start < end"):
            aligned_pipeline(correction_gate=bad)
        with pytest.raises(InputError, match="two codes"):
            TrainingTransform(alignment={}, correction_gate=bad)


def test_gated_training_targets_are_zero_where_the_pipeline_keeps_the_prior(scene):
    decoded = {"scene": "s", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    rng = lambda: np.random.default_rng(0)  # noqa: E731
    free = TrainingTransform(crop_size=64, augment=False, seed=0, alignment={}).transform_scene(decoded, rng())
    conditioning, gated = TrainingTransform(crop_size=64, augment=False, seed=0, alignment={},
                                            correction_gate=(0.9, 0.95)).transform_scene(decoded, rng())
    level = conditioning[6:9].amax(dim=0)  # the reference frame (the middle one) as merged
    assert (level < 0.9).float().mean() > 0.3
    assert gated[:, level < 0.9].abs().max() == 0 and free[1][:, level < 0.9].abs().max() > 0
    torch.testing.assert_close(gated[:, level >= 0.95], free[1][:, level >= 0.95])


@pytest.mark.parametrize("scheduler, options", [("ddim", FAST_PRESET), ("dpm++", {"num_inference_steps": 4}),
                                                ("euler", {"num_inference_steps": 4}), ("ddim", {"ensemble": 2})])
def test_schedulers_presets_and_batches_sample_around_the_prior(scene, scheduler, options):
    """A zero correction must come out as the prior itself, whatever the scheduler, grid or batch."""
    pipe = aligned_pipeline()
    pipe.scheduler = scheduler_from_name(scheduler, pipe.scheduler.config)
    batch = options.pop("ensemble", 1)
    prior = prior_conditioning(scene.images, scene.exposures).prior
    out = pipe([scene.images] * batch, [[ev + k for ev in scene.exposures] for k in range(batch)],
               generator=torch.Generator().manual_seed(0), **options)
    for k in range(batch):
        np.testing.assert_allclose(out.mu_law[k], prior, atol=1e-5)
        np.testing.assert_allclose(out.hdr[k], out.hdr[0] * 2.0**-k, rtol=1e-5, atol=1e-8)


def test_failed_alignment_falls_back_to_the_reference(scene):
    other = synthesize_scene(seed=99, index=3, size=(64, 96), ev_sets=[(-2.0, 0.0, 2.0)])
    images = [other.images[0], scene.images[1], other.images[2]]
    with pytest.warns(FallbackWarning) as caught:  # never silent (it was, to a pipeline user: trial 4)
        out = aligned_pipeline()(images, scene.exposures, generator=torch.Generator().manual_seed(0))
    assert [str(warning.message).split(" not used: ")[0] for warning in caught] == ["bracket 1: frame 1", "bracket 1: frame 3"]
    assert "apply_camera" in str(caught[0].message)
    assert out.alignment_failures == [[0, 2]]
    assert np.isfinite(out.hdr).all()
    for frame in out.alignment_failures[0]:  # each says why, with the measured figure
        assert isinstance(frame, RejectedFrame) and "% of informative pixels consistent" in frame.reason
    hdr, _, uncertainty, failures = aligned_pipeline()(
        images, scene.exposures, generator=torch.Generator().manual_seed(0), return_dict=False)
    assert failures == [[0, 2]] and [f.reason for f in failures[0]] == [f.reason for f in out.alignment_failures[0]]
    np.testing.assert_array_equal(hdr, out.hdr)
    assert uncertainty is None


def test_training_transform_targets_the_residual(scene):
    decoded = {"scene": "s", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    transform = TrainingTransform(crop_size=32, seed=0, alignment={})
    conditioning, target = transform.transform_scene(decoded, np.random.default_rng(0))
    assert conditioning.shape == (24, 32, 32) and target.shape == (3, 32, 32)
    prior = conditioning[18:21]
    truth = target + prior  # the residual plus the prior is the ground truth's mu-law (model units)
    full = mu_law(to_model_units(scene.radiance, scene.exposures))
    assert truth.min() >= -1e-3 and truth.max() <= full.max() + 1e-3
    assert target.abs().mean() < (truth - truth.mean()).abs().mean()  # the residual is smaller than the signal
    assert "s" in transform._priors  # computed once per scene


def test_training_targets_use_the_pipelines_mu(scene):
    """The prior and the target are in the pipeline's mu-law domain: prior + residual = mu_law(truth, mu) exactly."""
    decoded = {"scene": "s", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    truth = to_model_units(scene.radiance, scene.exposures)
    merged = to_model_units(flow_merge(scene.images, scene.exposures).radiance, scene.exposures)
    for mu in (5000.0, 100.0):
        transform = TrainingTransform(crop_size=64, augment=False, seed=0, alignment={}, mu=mu)
        conditioning, target = transform.transform_scene(decoded, np.random.default_rng(0))
        prior = conditioning[18:21].numpy().transpose(1, 2, 0)
        full_prior = np.clip(mu_law(merged, mu), 0, 1)
        # the crop is 64 rows (all of them) at some column: find it from the prior
        left = min(range(33), key=lambda x: np.abs(full_prior[:, x:x + 64] - prior).max())
        np.testing.assert_allclose(prior, full_prior[:, left:left + 64], atol=1e-3)  # float16 storage
        np.testing.assert_allclose(target.numpy().transpose(1, 2, 0) + prior, mu_law(truth[:, left:left + 64], mu),
                                   atol=1e-6)


def test_prior_units_targets_ignore_a_units_error_of_the_exposures(scene):
    """With target_units="prior", a ground truth off by a constant factor (the response estimate's units error)
    gives the same target; with the default the target carries that factor."""
    decoded = {"scene": "s", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    off = dict(decoded, radiance=scene.radiance * 2.0)  # a stop off
    targets = {}
    for units in ("exposures", "prior"):  # a transform per ground truth: each keeps its scene's prior and scale
        targets[units] = [TrainingTransform(crop_size=32, seed=0, alignment={}, target_units=units).transform_scene(
            d, np.random.default_rng(3))[1] for d in (decoded, off)]
    torch.testing.assert_close(*targets["prior"], atol=1e-5, rtol=0)
    assert (targets["exposures"][1] - targets["exposures"][0]).abs().mean() > 0.02
    with pytest.raises(ValueError, match="target_units"):
        TrainingTransform(alignment={}, target_units="literal")


def test_training_priors_are_kept_on_disk_and_read_back_exactly(scene, tmp_path):
    decoded = {"scene": "scene/0", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    first = TrainingTransform(crop_size=32, seed=0, alignment={}, prior_cache_dir=tmp_path / "cache")
    computed = first.scene_prior(decoded)
    (stored,) = (tmp_path / "cache").iterdir()
    assert stored.name.startswith("scene_0-") and stored.suffix == ".npz"
    again = TrainingTransform(crop_size=32, seed=0, alignment={}, prior_cache_dir=tmp_path / "cache")
    for a, b in zip(computed, again.scene_prior(decoded)):
        np.testing.assert_array_equal(a, b)
    rng = lambda: np.random.default_rng(4)  # noqa: E731
    for a, b in zip(first.transform_scene(decoded, rng()), again.transform_scene(decoded, rng())):
        assert torch.equal(a, b)
    other_settings = TrainingTransform(crop_size=32, alignment={"homography": False}, prior_cache_dir=tmp_path / "cache")
    other_settings.scene_prior(decoded)
    assert len(list((tmp_path / "cache").iterdir())) == 2  # the settings are part of the key


def test_the_prior_cache_keys_on_the_flow_merge_version(monkeypatch, tmp_path):
    """A changed flow-merge (its FLOW_MERGE_VERSION bumped) reads no cache file of the old one: those priors are
    stale, and a model trained on them would be run on other priors."""
    transform = TrainingTransform(alignment={}, prior_cache_dir=tmp_path)
    before = transform._cache_path("scene")
    monkeypatch.setattr("diffhdr_diffusers.merging.FLOW_MERGE_VERSION", 99)
    assert transform._cache_path("scene") != before and transform._cache_path("scene").parent == tmp_path
