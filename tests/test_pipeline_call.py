"""The pipeline call as a diffusers user expects it: reference samples of every scheduler, ensembles with an
uncertainty map, step callbacks and interruption, PIL previews, typed bracket inputs, saved processor settings.

Tolerances: outputs are float32 mu-law values in [0, 1]. Where two runs do the same arithmetic on the same
tensor shapes they are bit-identical and compared exactly. Where batch or window shapes differ, CPU kernels sum
in another order (~1e-7 relative per operation), and a few UNet steps carry that to ~1e-5: such runs are
compared at 1e-4, the level at which UNet outputs are judged against the original code.
"""

import inspect

import numpy as np
import pytest
import torch
from diffusers.callbacks import PipelineCallback
from diffusers.utils.torch_utils import randn_tensor
from merge_support import tiny_pipeline

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.hdr_domain import inverse_mu_law
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.pipelines import memory
from diffhdr_diffusers.schedulers import SCHEDULERS, original_ddim_scheduler, scheduler_from_name

EXPOSURES = [0.0, 2.0, 4.0]
BATCH_SHAPE_ATOL = 1e-4  # different batch/window shapes: float32 summation order through a few UNet steps


@pytest.fixture
def pipe():
    return tiny_pipeline(steps=3)


def make_bracket(height=45, width=70, seed=0):
    radiance = np.random.default_rng(seed).random((height, width, 3)) * 0.3
    return [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in EXPOSURES]


@pytest.fixture
def bracket():
    return make_bracket()


def run(pipe, images, seed=0, **kwargs):
    return pipe(images, EXPOSURES, generator=torch.Generator().manual_seed(seed), **kwargs)


def reference_sample(pipe, images, seed, steps):
    """diffusers' plain sampling loop on the whole replicate-padded image (one UNet call per step, features of the
    whole image), cropped and clamped: what the pipeline must give when one window covers the image."""
    processor, factor = pipe.image_processor, pipe.unet.downsample_factor
    conditioning = processor.preprocess(images, EXPOSURES).conditioning
    height, width = conditioning.shape[-2:]
    features = pipe.condition_encoder(processor.pad(conditioning, factor))
    generator = torch.Generator().manual_seed(seed)
    scheduler = pipe.scheduler
    latents = processor.pad(randn_tensor((1, 3, height, width), generator=generator), factor)
    latents = latents * scheduler.init_noise_sigma
    scheduler.set_timesteps(steps)
    step_kwargs = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    with torch.no_grad(), memory.channels_last_on_cpu(pipe.unet, pipe.device):  # the pipeline's UNet layout
        for timestep in scheduler.timesteps:
            output = pipe.unet(scheduler.scale_model_input(latents, timestep), timestep, features).sample
            latents = scheduler.step(output, timestep, latents, **step_kwargs).prev_sample
    return latents[..., :height, :width].clamp(0, 1).permute(0, 2, 3, 1).numpy()


def one_window(images) -> int:
    """A patch size whose single window covers the padded image."""
    height, width = np.asarray(images[0]).shape[:2]
    return max(-(-height // 2) * 2, -(-width // 2) * 2)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_matches_its_reference_sample(pipe, bracket, name):
    pipe.scheduler = scheduler_from_name(name, pipe.scheduler.config)
    patch = one_window(bracket)
    out = run(pipe, bracket, seed=3, num_inference_steps=4, patch_size=patch, stride=patch)
    expected = reference_sample(pipe, bracket, seed=3, steps=4)
    # The same operations on the same tensors as the reference loop: equal up to float32 rounding of the
    # coverage division (by exactly 1) and the window copy, i.e. bit-identical in practice.
    np.testing.assert_allclose(out.mu_law, expected, rtol=0, atol=1e-6)
    assert out.mu_law.std() > 0.02  # and not a constant image


@pytest.mark.parametrize("size", [(8, 8), (20, 100), (45, 70), (64, 64), (33, 17)])
def test_any_image_size_gives_the_reference_sample(pipe, size):
    images = make_bracket(*size, seed=1)
    patch = one_window(images)
    out = run(pipe, images, seed=2, num_inference_steps=2, patch_size=patch, stride=patch)
    assert out.hdr.shape == out.mu_law.shape == (1, *size, 3)
    np.testing.assert_allclose(out.mu_law, reference_sample(pipe, images, seed=2, steps=2), rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.hdr, inverse_mu_law(out.mu_law.astype(np.float64)), rtol=1e-4, atol=1e-7)
    tiled = run(pipe, images, seed=2, num_inference_steps=2)  # windows of 32 with stride 16 where they fit
    assert tiled.mu_law.shape == (1, *size, 3) and np.isfinite(tiled.mu_law).all()


def test_ensemble_is_one_batched_run_of_independent_samples(pipe, bracket):
    k = 3
    generators = [torch.Generator().manual_seed(10 + i) for i in range(k)]
    calls = []
    hook = pipe.unet.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    try:
        out = pipe(bracket, EXPOSURES, ensemble_size=k, generator=generators, window_batch_size=4)
    finally:
        hook.remove()
    single = [run(pipe, bracket, seed=10 + i, window_batch_size=4).mu_law[0] for i in range(k)]
    # One batched run: as many UNet calls as one sample needs, each holding all k samples of its windows.
    assert all(size % k == 0 for size in calls) and max(calls) == 4 * k
    stack = np.stack(single)
    assert out.mu_law.shape == out.uncertainty.shape == out.hdr.shape == (1, 45, 70, 3)
    np.testing.assert_allclose(out.mu_law[0], stack.mean(0), rtol=0, atol=BATCH_SHAPE_ATOL)
    np.testing.assert_allclose(out.uncertainty[0], stack.std(0), rtol=0, atol=BATCH_SHAPE_ATOL)
    np.testing.assert_allclose(out.hdr, inverse_mu_law(out.mu_law.astype(np.float64)), rtol=1e-4, atol=1e-7)
    assert out.uncertainty.min() >= 0 and out.uncertainty.max() > 0.01


def test_ensemble_unet_calls_do_not_grow_with_its_size(pipe, bracket):
    def unet_calls(**kwargs):
        calls = []
        hook = pipe.unet.register_forward_hook(lambda *args: calls.append(1))
        try:
            run(pipe, bracket, window_batch_size=4, **kwargs)
        finally:
            hook.remove()
        return len(calls)

    assert unet_calls(ensemble_size=4) == unet_calls()


def test_ensemble_of_a_batch_and_its_checks(pipe, bracket):
    flipped = [b[::-1].copy() for b in bracket]
    out = pipe([bracket, flipped], [EXPOSURES, EXPOSURES], ensemble_size=2, generator=torch.Generator().manual_seed(0),
               output_type="pt")
    assert out.mu_law.shape == out.uncertainty.shape == (2, 3, 45, 70)
    assert run(pipe, bracket).uncertainty is None
    with pytest.raises(InputError, match="one per sample: 4"):
        pipe([bracket, flipped], [EXPOSURES, EXPOSURES], ensemble_size=2, generator=[torch.Generator()] * 2)
    with pytest.raises(InputError, match="ensemble_size"):
        run(pipe, bracket, ensemble_size=0)
    with pytest.raises(InputError, match=r"latents must have shape \(2, 3"):
        pipe(bracket, EXPOSURES, ensemble_size=2, latents=torch.zeros(1, 3, 45, 70))


def test_callback_sees_every_step_and_can_replace_the_latents(pipe, bracket):
    seen = []

    def record(pipeline, step, timestep, tensors):
        seen.append((step, int(timestep), sorted(tensors), tuple(tensors["latents"].shape)))
        return {}

    plain = run(pipe, bracket)
    recorded = run(pipe, bracket, callback_on_step_end=record, callback_on_step_end_tensor_inputs=["latents", "model_output"])
    np.testing.assert_array_equal(recorded.mu_law, plain.mu_law)
    assert [s[0] for s in seen] == [0, 1, 2] and [s[1] for s in seen] == pipe.scheduler.timesteps.tolist()
    assert seen[0][2] == ["latents", "model_output"] and seen[0][3] == (1, 3, 46, 70)  # padded to the UNet's factor

    zeroed = run(pipe, bracket, callback_on_step_end=lambda p, i, t, kw: {"latents": torch.zeros_like(kw["latents"])})
    assert not np.array_equal(zeroed.mu_law, plain.mu_law)
    with pytest.raises(InputError, match="callback_on_step_end_tensor_inputs"):
        run(pipe, bracket, callback_on_step_end=record, callback_on_step_end_tensor_inputs=["noise"])


def test_interrupt_skips_the_remaining_steps(pipe, bracket):
    calls = []
    hook = pipe.unet.register_forward_hook(lambda *args: calls.append(1))

    def stop_after_first(pipeline, step, timestep, tensors):
        pipeline._interrupt = True
        return tensors

    try:
        run(pipe, bracket, window_batch_size=1000, callback_on_step_end=stop_after_first)
    finally:
        hook.remove()
    assert len(calls) == 1 and pipe.interrupt and pipe.num_timesteps == 3
    run(pipe, bracket)
    assert not pipe.interrupt  # every call starts uninterrupted


def test_pipeline_callback_objects_name_their_tensors(pipe, bracket):
    class Record(PipelineCallback):
        tensor_inputs = ["model_output"]

        def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
            self.steps = getattr(self, "steps", 0) + 1
            assert list(callback_kwargs) == ["model_output"]
            return callback_kwargs

    callback = Record()
    run(pipe, bracket, callback_on_step_end=callback)
    assert callback.steps == 3


def test_pil_output_is_the_tonemapped_preview(pipe, bracket):
    from diffhdr_diffusers.io.preview import tonemap_preview

    arrays = run(pipe, bracket)
    previews = run(pipe, bracket, output_type="pil")
    assert isinstance(previews.hdr, list) and len(previews.hdr) == 1
    image = previews.hdr[0]
    assert image.mode == "RGB" and image.size == (70, 45)
    np.testing.assert_array_equal(np.asarray(image), tonemap_preview(arrays.hdr[0]))
    np.testing.assert_array_equal(previews.mu_law, arrays.mu_law)


def test_stacked_brackets_and_batches_are_accepted(pipe, bracket):
    listed = run(pipe, bracket).mu_law
    np.testing.assert_array_equal(run(pipe, np.stack(bracket)).mu_law, listed)
    as_tensor = torch.from_numpy(np.stack(bracket)).permute(0, 3, 1, 2)  # (N, 3, H, W)
    np.testing.assert_allclose(run(pipe, as_tensor).mu_law, listed, rtol=0, atol=1e-6)
    noise = torch.randn((2, 3, 45, 70), generator=torch.Generator().manual_seed(0))
    stacked = pipe(np.stack([np.stack(bracket)] * 2), [EXPOSURES, EXPOSURES], latents=noise).mu_law
    nested = pipe([bracket, bracket], [EXPOSURES, EXPOSURES], latents=noise).mu_law
    np.testing.assert_array_equal(stacked, nested)
    with pytest.raises(InputError, match="one list of exposures per bracket"):
        pipe([bracket, bracket], EXPOSURES)


def test_processor_settings_are_saved_with_the_pipeline(pipe, bracket, tmp_path):
    custom = DiffHDRPipeline(pipe.unet, pipe.condition_encoder, pipe.scheduler, default_num_inference_steps=3,
                             default_patch_size=32, default_stride=16, gamma=2.0, mu=1000.0)
    custom.set_progress_bar_config(disable=True)
    assert custom.image_processor.config.gamma == 2.0 and custom.image_processor.config.mu == 1000.0
    out = run(custom, bracket)
    assert not np.allclose(out.mu_law, run(pipe, bracket).mu_law)  # gamma changes the conditioning
    np.testing.assert_allclose(out.hdr, inverse_mu_law(out.mu_law.astype(np.float64), 1000.0), rtol=1e-4, atol=1e-7)
    custom.save_pretrained(tmp_path)
    loaded = DiffHDRPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert (loaded.config.gamma, loaded.config.mu) == (2.0, 1000.0)
    assert (loaded.image_processor.config.gamma, loaded.image_processor.config.mu) == (2.0, 1000.0)
    np.testing.assert_array_equal(run(loaded, bracket).mu_law, out.mu_law)  # save/load is bit-exact
    default = DiffHDRPipeline.from_pretrained()
    assert (default.image_processor.config.gamma, default.image_processor.config.mu) == (2.2, 5000.0)


def test_aligned_ensemble_adds_the_prior_to_every_sample():
    """Aligned models sample the residual around the flow-merge prior: each ensemble member is offset by it before
    the mean, so an untrained model's ensemble is the prior with no spread."""
    from diffhdr_diffusers.data.synth import synthesize_scene

    scene = synthesize_scene(seed=5, index=0, size=(32, 48), ev_sets=[(-2.0, 0.0, 2.0)])
    images, exposures = scene.images, scene.exposures
    torch.manual_seed(0)
    unet, encoder = build_models("aligned-tiny")
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler("sample"), default_num_inference_steps=2,
                           default_patch_size=32, default_stride=16, alignment={})
    pipe.set_progress_bar_config(disable=True)
    single = pipe(images, exposures, generator=torch.Generator().manual_seed(0))
    ensemble = pipe(images, exposures, ensemble_size=2, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(ensemble.mu_law, single.mu_law, rtol=0, atol=BATCH_SHAPE_ATOL)
    assert ensemble.uncertainty.max() < BATCH_SHAPE_ATOL  # zero-initialised output: every sample is the prior
    torch.nn.init.normal_(pipe.unet.conv_out.weight, std=0.01)  # a model that has learned something
    spread = pipe(images, exposures, ensemble_size=2, generator=torch.Generator().manual_seed(0)).uncertainty
    assert spread.max() > 1e-4


def test_cpu_sampling_runs_channels_last_and_restores_the_layout(pipe, bracket):
    layouts = []

    def record(pipeline, index, timestep, tensors):
        layouts.append(pipeline.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last))
        return tensors

    run(pipe, bracket, num_inference_steps=2, callback_on_step_end=record)
    assert layouts == [True, True]
    assert all(p.is_contiguous() for p in pipe.unet.parameters())  # saved weights stay contiguous


def test_the_fast_preset_is_never_slower_than_the_default():
    """Counted on real runs: the UNet window evaluations of the bundled model (its default is 1 step of small
    windows: the fast preset is that default) and of a 4-step copy (the previous bundled model's default, where
    the paper's shifted grid cost more: 211 window passes against 160 at 1000x1500); then a paper-shaped config
    (the shifted grid: 60 against 3,825)."""
    from diffhdr_diffusers.pipelines.presets import FAST_PRESET, PRESETS, sampling_preset, window_passes

    bundled = DiffHDRPipeline.from_pretrained()
    bundled.set_progress_bar_config(disable=True)
    evaluated = []
    bundled.unet.register_forward_hook(lambda module, args, output: evaluated.append(args[0].shape[0]))
    bracket = make_bracket(96, 144)
    windows = {}
    for steps in (1, 4):
        bundled.register_to_config(default_num_inference_steps=steps)
        for name in PRESETS:
            evaluated.clear()
            run(bundled, bracket, **sampling_preset(name, bundled.config))
            windows[steps, name] = sum(evaluated)
    assert 0 < windows[1, "fast"] == windows[1, "default"], windows
    assert 0 < windows[4, "fast"] <= windows[4, "default"] / 2, windows
    assert window_passes(bundled.config, FAST_PRESET) > window_passes(bundled.config)  # why it is not the shifted grid
    assert sampling_preset("fast", bundled.config) == {"num_inference_steps": 2}

    paper = {"default_num_inference_steps": 25, "default_patch_size": 512, "default_stride": 64,
             "default_processing_resolution": 0}
    assert sampling_preset("fast", paper) == FAST_PRESET and sampling_preset("default", paper) == {}
    assert window_passes(paper, FAST_PRESET) <= window_passes(paper) / 50
    with pytest.raises(InputError, match="fast"):
        sampling_preset("fastest", paper)


def test_a_scheduler_with_another_prediction_type_is_refused(bracket):
    """The bundled model predicts the clean sample. `pipe.scheduler = original_ddim_scheduler()` (epsilon) sampled
    noise without an error (5.3 dB from the model's own output, trial 4), and a scheduler lacking the prediction
    type raised diffusers' raw NotImplementedError."""
    from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler

    pipe = DiffHDRPipeline.from_pretrained()
    assert pipe.scheduler.config.prediction_type == "sample"
    pipe.scheduler = original_ddim_scheduler()
    with pytest.raises(InputError, match=r"prediction_type 'epsilon', but this model predicts 'sample'.*from_config"):
        run(pipe, bracket, num_inference_steps=2)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config, prediction_type="sample")
    with pytest.raises(InputError, match="EulerAncestralDiscreteScheduler cannot sample this model"):
        run(pipe, bracket, num_inference_steps=2)
    pipe.scheduler = DDIMScheduler.from_config(DiffHDRPipeline.from_pretrained().scheduler.config)
    assert np.isfinite(run(pipe, bracket, num_inference_steps=2).hdr).all()
