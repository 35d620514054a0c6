import json

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from merge_support import tiny_pipeline

from diffhdr_diffusers import DiffHDRPipeline, allocator
from diffhdr_diffusers.errors import InputError, SamplingError
from diffhdr_diffusers.schedulers import original_ddim_scheduler

EXPOSURES = [0.0, 2.0, 4.0]


@pytest.fixture
def pipe():
    return tiny_pipeline(steps=3)


@pytest.fixture
def bracket():
    rng = np.random.default_rng(0)
    radiance = rng.random((45, 70, 3)) * 0.3
    return [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in EXPOSURES]


def run(pipe, bracket, seed=0, **kwargs):
    return pipe(bracket, EXPOSURES, generator=torch.Generator().manual_seed(seed), **kwargs)


def test_output_is_linear_radiance_of_input_size(pipe, bracket):
    out = run(pipe, bracket)
    assert out.hdr.shape == out.mu_law.shape == (1, 45, 70, 3)
    assert out.hdr.dtype == np.float32
    assert 0 <= out.mu_law.min() and out.mu_law.max() <= 1
    np.testing.assert_allclose(out.hdr, (5001.0 ** out.mu_law.astype(np.float64) - 1) / 5000, rtol=1e-4, atol=1e-7)


def test_deterministic_for_a_generator_and_latents_fix_the_noise(pipe, bracket):
    a, b, c = run(pipe, bracket, 1), run(pipe, bracket, 1), run(pipe, bracket, 2)
    np.testing.assert_array_equal(a.hdr, b.hdr)
    assert not np.array_equal(a.hdr, c.hdr)
    latents = torch.Generator().manual_seed(1)
    noise = torch.randn((1, 3, 45, 70), generator=latents)
    np.testing.assert_array_equal(pipe(bracket, EXPOSURES, latents=noise).hdr, a.hdr)


def test_accepts_uint8_uint16_tensor_and_file_inputs(pipe, bracket, tmp_path):
    from diffhdr_diffusers.io import write_ldr

    as_float = run(pipe, bracket).hdr
    as_uint16 = run(pipe, [np.round(b * 65535).astype(np.uint16) for b in bracket]).hdr
    as_tensor = run(pipe, [torch.from_numpy(b).permute(2, 0, 1) for b in bracket]).hdr
    paths = [write_ldr(tmp_path / f"{i}.tif", b, bits=16) for i, b in enumerate(bracket)]
    as_files = run(pipe, [str(p) for p in paths]).hdr
    np.testing.assert_allclose(as_tensor, as_float, atol=1e-6)
    np.testing.assert_allclose(as_uint16, as_float, atol=2e-3)
    np.testing.assert_array_equal(as_files, as_uint16)
    as_uint8 = run(pipe, [np.round(b * 255).astype(np.uint8) for b in bracket]).hdr
    assert np.isfinite(as_uint8).all()


def test_batch_of_brackets_equals_single_calls(pipe, bracket):
    flipped = [b[::-1].copy() for b in bracket]
    noise = torch.randn((2, 3, 45, 70), generator=torch.Generator().manual_seed(0))
    batched = pipe([bracket, flipped], [EXPOSURES, EXPOSURES], latents=noise).mu_law
    single = pipe(flipped, EXPOSURES, latents=noise[1:]).mu_law
    # Batch shapes change the order in which CPU kernels sum (float32, ~1e-7 relative per operation); three UNet
    # steps carry that to ~1e-5 (1.1e-5 seen), so this is judged at the UNet-output level of 1e-4.
    np.testing.assert_allclose(batched[1:], single, rtol=0, atol=1e-4)


@pytest.mark.slow  # ~9 s on 2 busy cores
def test_condition_encoder_calls(pipe, bracket):
    """Whole-image features once per call; per-window edge bands once per window grid (4 strips of the <= 16
    windows here, one encoder call each): once per call on a fixed grid, once per step when the grid shifts."""
    calls = []
    handle = pipe.condition_encoder.register_forward_hook(lambda *args: calls.append(1))
    expected = {(False, False): lambda steps: 1, (True, False): lambda steps: 1 + 4,
                (False, True): lambda steps: 1, (True, True): lambda steps: 1 + 4 * steps}
    try:
        for (per_window, shift), count in expected.items():
            for steps in (2, 6):
                calls.clear()
                run(pipe, bracket, num_inference_steps=steps, condition_per_window=per_window, shift_windows=shift,
                    stride=32 if shift else None)
                assert len(calls) == count(steps), (per_window, shift, steps)
    finally:
        handle.remove()


def test_window_batch_size_does_not_change_the_result(pipe, bracket):
    a = run(pipe, bracket, window_batch_size=1).mu_law
    b = run(pipe, bracket, window_batch_size=64).mu_law
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_default_window_batch_fits_an_explicit_budget(pipe, monkeypatch):
    from diffhdr_diffusers.pipelines import WindowGrid, memory

    grid = WindowGrid.build(2048, 2048, 64, 16)
    per_window = memory.window_bytes(pipe.unet, 64, 64)
    cpu = torch.device("cpu")
    batch = memory.default_window_batch_size(pipe.unet, grid, cpu)
    assert batch * per_window <= memory.CPU_WINDOW_BUDGET < (batch + 1) * per_window  # CPU: 128 MiB of activations
    batch = memory.default_window_batch_size(pipe.unet, grid, cpu, 1 << 30)
    assert batch * per_window <= 1 << 30 < (batch + 1) * per_window
    assert memory.default_window_batch_size(pipe.unet, WindowGrid.build(64, 64, 32, 16), cpu) == 9  # at most the grid

    free = 24 << 30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 80 << 30))
    batch = memory.default_window_batch_size(pipe.unet, grid, torch.device("cuda"))
    assert batch * per_window <= free // 2 < (batch + 1) * per_window  # GPU: half the free memory


def test_window_batch_follows_the_call_not_the_allocator(pipe, bracket, monkeypatch):
    from diffhdr_diffusers.pipelines import memory

    def windows_per_call(**kwargs):
        sizes = []
        hook = pipe.unet.register_forward_hook(lambda module, args, output: sizes.append(args[0].shape[0]))
        try:
            run(pipe, bracket, num_inference_steps=1, **kwargs)
        finally:
            hook.remove()
        return max(sizes)

    per_window = memory.window_bytes(pipe.unet, 32, 32)
    default = windows_per_call()
    monkeypatch.setattr(allocator, "_reusing", True)  # as after reuse_freed_memory(): no effect on the pipeline
    assert windows_per_call() == default
    assert windows_per_call(window_memory_budget=2 * per_window) == 2
    with pytest.raises(InputError, match="window_memory_budget"):
        run(pipe, bracket, window_memory_budget=0)


def test_memory_is_checked_on_the_device_that_runs_the_windows(pipe, bracket, monkeypatch):
    """Models placed on one device but run on another (offloading) are checked against the execution device."""
    import psutil
    from types import SimpleNamespace

    from diffhdr_diffusers.errors import ResourceError

    monkeypatch.setattr(DiffHDRPipeline, "device", property(lambda self: torch.device("meta")))
    monkeypatch.setattr(DiffHDRPipeline, "_execution_device", property(lambda self: torch.device("cpu")))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=1 << 20))
    with pytest.raises(ResourceError, match="free"):
        run(pipe, bracket)


@pytest.mark.slow  # ~9 s on 2 busy cores
def test_a_list_of_generators_works_with_shifted_windows(pipe, bracket):
    single = run(pipe, bracket, stride=32, shift_windows=True).mu_law
    listed = pipe(bracket, EXPOSURES, stride=32, shift_windows=True, generator=[torch.Generator().manual_seed(0)]).mu_law
    np.testing.assert_array_equal(listed, single)
    generators = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    batch = pipe([bracket, bracket], [EXPOSURES, EXPOSURES], stride=32, shift_windows=True, generator=generators)
    assert batch.mu_law.shape == (2, 45, 70, 3) and not np.array_equal(batch.mu_law[0], batch.mu_law[1])


@pytest.mark.parametrize("condition_per_window", [False, True])
def test_one_shifted_step_is_the_fixed_final_grid(pipe, bracket, condition_per_window):
    from diffhdr_diffusers.pipelines.tiling import final_stride

    # One step is the last step alone: the fixed half-overlapping grid, so exactly the unshifted run on that grid.
    shifted = run(pipe, bracket, stride=32, shift_windows=True, condition_per_window=condition_per_window,
                  num_inference_steps=1).mu_law
    fixed = run(pipe, bracket, stride=final_stride(32, 32), condition_per_window=condition_per_window,
                num_inference_steps=1).mu_law
    np.testing.assert_allclose(shifted, fixed, atol=1e-5)  # window batches may differ: float rounding only
    # With more steps the grid moves, and each conditioning mode follows it.
    moving = run(pipe, bracket, stride=32, shift_windows=True, condition_per_window=condition_per_window).mu_law
    assert np.isfinite(moving).all() and not np.allclose(moving, fixed)


def test_shifted_windows_run_with_either_conditioning(pipe, bracket, monkeypatch):
    whole = run(pipe, bracket, stride=32, shift_windows=True, condition_per_window=False).mu_law
    per_window = run(pipe, bracket, stride=32, shift_windows=True, condition_per_window=True).mu_law
    assert np.isfinite(whole).all() and np.isfinite(per_window).all() and not np.allclose(whole, per_window)
    # Per-window features come from edge strips recomputed for each shifted grid; with an unbounded receptive
    # radius the encoder runs on every whole window crop instead (the original's numerics): the same samples.
    from diffhdr_diffusers.pipelines.window_features import WindowFeatures

    edge_features = WindowFeatures._edge_features

    def whole_windows(self):
        self.radius = 10**6  # wider than any window: every "strip" is the window itself
        return edge_features(self)

    monkeypatch.setattr(WindowFeatures, "_edge_features", whole_windows)
    exact = run(pipe, bracket, stride=32, shift_windows=True, condition_per_window=True).mu_law
    np.testing.assert_allclose(per_window, exact, atol=1e-4)  # other conv shapes: float32 summation order
    assert np.abs(exact - whole).max() > 1e-3


def test_shifted_windows_end_on_a_half_overlapping_grid(pipe, bracket):
    # The last step's predictions are the output of x0/v models: no seam of a non-overlapping grid may survive.
    from diffhdr_diffusers.pipelines import WindowGrid

    windows_per_call = []
    hook = pipe.unet.register_forward_hook(lambda module, args, output: windows_per_call.append(args[0].shape[0]))
    try:
        run(pipe, bracket, stride=32, shift_windows=True, window_batch_size=1000, num_inference_steps=4)
    finally:
        hook.remove()
    factor = pipe.unet.downsample_factor
    padded = [-(-size // factor) * factor for size in (45, 70)]
    assert len(windows_per_call) == 4
    assert windows_per_call[-1] == len(WindowGrid.build(*padded, 32, 16))


def test_default_scheduler_matches_the_original_ddim_schedule():
    scheduler = original_ddim_scheduler()
    expected = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()
    assert torch.equal(scheduler.betas, expected)
    scheduler.set_timesteps(25)
    assert scheduler.timesteps.tolist() == list(range(0, 1000, 40))[::-1]
    assert scheduler.final_alpha_cumprod == 1.0


def test_bad_arguments_raise_input_errors(pipe, bracket):
    for kwargs, match in (({"patch_size": 21}, "multiple"), ({"stride": 0}, "stride"),
                          ({"num_inference_steps": 0}, "num_inference_steps"), ({"output_type": "exr"}, "output_type")):
        with pytest.raises(InputError, match=match):
            run(pipe, bracket, **kwargs)
    with pytest.raises(InputError, match="3 images"):
        pipe(bracket[:2], EXPOSURES[:2])
    with pytest.raises(InputError, match="differ in size"):
        pipe([bracket[0], bracket[1][:40], bracket[2]], EXPOSURES)


def test_non_finite_sampling_fails_with_the_step(pipe, bracket):
    with torch.no_grad():
        pipe.unet.conv_out.bias.fill_(float("nan"))
    with pytest.raises(SamplingError, match="step 1/3"):
        run(pipe, bracket)


def test_save_and_load_with_both_loaders(pipe, bracket, tmp_path):
    from diffhdr_diffusers.pipelines import hub_layout

    pipe.save_pretrained(tmp_path)  # with the shims, which the generic loader needs
    assert json.loads((tmp_path / "model_index.json").read_text())["_class_name"] == ["pipeline_diffhdr",
                                                                                       "DiffHDRPipeline"]
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert not hub_layout.untrusted_code(tmp_path)
    expected = run(pipe, bracket).mu_law
    ours = DiffHDRPipeline.from_pretrained(tmp_path)
    generic = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True)
    for loaded in (ours, generic):
        assert type(loaded) is DiffHDRPipeline
        assert loaded.config.default_patch_size == 32
        for a, b in zip(pipe.unet.state_dict().values(), loaded.unet.state_dict().values()):
            assert torch.equal(a, b)
        loaded.set_progress_bar_config(disable=True)
        np.testing.assert_allclose(run(loaded, bracket).mu_law, expected, atol=1e-5)


def test_loader_refuses_non_pipeline_folders(tmp_path):
    from diffhdr_diffusers.errors import ModelLoadError

    # Foreign code in a pipeline folder: tests/test_foreign_code.py.
    with pytest.raises(ModelLoadError, match="model_index.json"):
        DiffHDRPipeline.from_pretrained(tmp_path)


def test_tapered_blending_keeps_constant_images_and_differs_from_uniform(pipe, bracket):
    from diffhdr_diffusers.pipelines.tiling import window_weight

    weight = window_weight(32, 32, "taper")
    assert weight.min() > 0 and weight.max() == 1 and torch.equal(weight, weight.T)
    # Half-overlapping tents sum to a constant away from the image border.
    row = torch.zeros(96)
    for start in range(0, 65, 16):
        row[start:start + 32] += weight[0] / weight[0].max()
    assert torch.allclose(row[32:64], row[32].expand(32))
    uniform = run(pipe, bracket, window_blend="uniform").mu_law
    taper = run(pipe, bracket, window_blend="taper").mu_law
    assert np.isfinite(taper).all() and not np.allclose(uniform, taper)
    with pytest.raises(InputError, match="window_blend"):
        run(pipe, bracket, window_blend="gaussian")


def test_bfloat16_weights_sample_close_to_float32():
    """The dtype plumbing a GPU run in reduced precision relies on, checked with bfloat16 on the CPU."""
    rng = np.random.default_rng(0)
    radiance = rng.random((48, 64, 3)) * 0.3
    images = [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in EXPOSURES]
    outputs = []
    for dtype in (torch.float32, torch.bfloat16):
        pipe = DiffHDRPipeline.from_pretrained(dtype=dtype)  # the bundled demo model
        pipe.set_progress_bar_config(disable=True)
        assert pipe.unet.dtype == dtype
        outputs.append(pipe(images, EXPOSURES, generator=torch.Generator().manual_seed(0)))
    full, reduced = outputs
    assert reduced.hdr.dtype == reduced.mu_law.dtype == np.float32 and np.isfinite(reduced.hdr).all()
    difference = np.abs(full.mu_law - reduced.mu_law)
    assert 0 < difference.mean() < 0.01 and difference.max() < 0.1  # rounding, not a different result
