#!/usr/bin/env python
"""Sampling cost of DiffHDR: the original tiled sampler against our exact and fast modes, in one run.

Every row runs in a fresh subprocess on the same weights, bracket and initial noise, so that peak RSS is
per row and one row's allocations cannot help or hurt another. Rows:

* ``original``: ``benchmarks/original_sampler.py``, the original algorithm (condition network per window
  per step, batches of 8, Python accumulation). Its condition-network share of the time is reported.
* ``exact``: the pipeline with ``condition_per_window=True`` on the same grid; must match to <= 1e-5.
* fast modes: whole-image conditioning, larger stride, randomly shifted non-overlapping windows,
  few-step solvers (DPM-Solver++, UniPC), ensembles.

Columns: wall and CPU seconds of the sampling call, UNet pixel-evaluations (windows x patch^2 x steps,
counted by a hook on the UNet), peak RSS of the row's process, max |mu-law - original|.

    python benchmarks/bench_sampling.py --configs small paper             # the speed tables
    python benchmarks/bench_sampling.py --sizes                           # linear scaling, peak RSS
    python benchmarks/bench_sampling.py --calibrate                       # window memory constant
    python benchmarks/bench_sampling.py --quality 4 --model PATH          # PSNR-mu of each mode

Quality needs a trained model: ``--model PATH``, else ``diffhdr_diffusers/default_model`` if present.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from original_sampler import ORIGINAL_WINDOW_BATCH  # noqa: E402  (benchmarks/ is not a package)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "diffhdr_diffusers" / "default_model"
# Per config: (patch, stride, steps) for the speed table on a CPU.
CONFIG_DEFAULTS = {"paper": (128, 64, 2), "small": (64, 32, 5), "tiny": (32, 16, 4)}
FULL_SIZE = (1000, 1500)
REFERENCE = dict(patch_size=512, stride=64, steps=25)  # the released results' settings


# ----------------------------------------------------------------------------------------------- rows


def row_specs(patch: int, stride: int, steps: int, few_steps: int) -> list[dict]:
    """The modes compared for one config (see the module docstring)."""
    from diffhdr_diffusers.pipelines.presets import FAST_PRESET

    fast_steps = FAST_PRESET.get("num_inference_steps", steps)
    shifted = dict(stride=patch, shift_windows=True, condition_per_window=False)
    rows = [
        dict(name="original (baseline)", kind="original", steps=steps, stride=stride),
        dict(name="exact: condition_per_window=True", steps=steps, stride=stride, condition_per_window=True,
             window_blend="uniform"),
        dict(name="exact, the original's window batch (8)", steps=steps, stride=stride, condition_per_window=True,
             window_blend="uniform", window_batch_size=ORIGINAL_WINDOW_BATCH),
        dict(name="exact + channels_last (not bit-exact)", steps=steps, stride=stride, condition_per_window=True,
             window_blend="uniform", channels_last=True),
        dict(name="whole-image conditioning", steps=steps, stride=stride, condition_per_window=False,
             window_blend="uniform"),
        dict(name="whole-image conditioning, tapered blending", steps=steps, stride=stride, condition_per_window=False,
             window_blend="taper"),
        dict(name=f"larger stride {(stride + patch) // 2}", steps=steps, stride=(stride + patch) // 2,
             condition_per_window=False),
        dict(name=f"shifted windows, stride {patch}", steps=steps, **shifted),
        dict(name=f"FAST_PRESET (stride {patch}, T={fast_steps}, model's conditioning)", steps=fast_steps,
             stride=patch, shift_windows=True, condition_per_window=FAST_PRESET.get("condition_per_window")),
    ]
    if steps == fast_steps:
        del rows[-2]
    rows += [
        dict(name=f"shifted + DPM-Solver++ T={few_steps}", steps=few_steps, scheduler="dpm++", **shifted),
        dict(name=f"shifted + UniPC T={few_steps}", steps=few_steps, scheduler="unipc", **shifted),
        dict(name=f"ensemble 2 x (shifted + UniPC T={few_steps})", steps=few_steps, scheduler="unipc",
             ensemble=2, **shifted),
    ]
    for row in rows:
        row["patch_size"] = patch
    return rows


def _load_pipeline(model_dir: str, device: str, dtype: str):
    from diffhdr_diffusers import DiffHDRPipeline

    pipe = DiffHDRPipeline.from_pretrained(model_dir, torch_dtype=getattr(torch, dtype)).to(device)
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.eval()
    pipe.condition_encoder.eval()
    return pipe


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_row(job: dict) -> dict:
    """Run one row in this process (called in a fresh subprocess) and return its measurements."""
    from diffhdr_diffusers.schedulers import original_ddim_scheduler, scheduler_from_name

    torch.set_num_threads(job["threads"])
    if job.get("reuse_freed_memory"):
        from diffhdr_diffusers.allocator import reuse_freed_memory

        reuse_freed_memory()
    device = job["device"]
    pipe = _load_pipeline(job["model_dir"], device, job["dtype"])
    row = job["row"]
    data = np.load(job["inputs"])
    images = [data[f"image{i}"] for i in range(3)]
    exposures = data["exposures"].tolist()
    latents = torch.from_numpy(data["latents"])
    evaluations = [0]

    def count(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        evaluations[0] += sample.shape[0] * sample.shape[-2] * sample.shape[-1]

    pipe.unet.register_forward_pre_hook(count, with_kwargs=True)
    if row.get("channels_last") or job.get("channels_last"):
        pipe.unet.to(memory_format=torch.channels_last)
    if job.get("compile"):
        if device == "cpu" and not job.get("compile_cpu"):
            print("note: --compile skipped on CPU (pass --compile-cpu to force)", file=sys.stderr)
        else:
            pipe.unet = torch.compile(pipe.unet)
    rss_loaded = _rss_bytes()
    result = {"name": row["name"]}
    began_wall, began_cpu = time.perf_counter(), time.process_time()
    if row.get("kind") == "original":
        from original_sampler import OriginalTimings, original_sample

        timings = OriginalTimings()
        conditioning = pipe.image_processor.preprocess(images, exposures).conditioning.to(device, pipe.unet.dtype)
        output = original_sample(pipe.unet, pipe.condition_encoder, conditioning, latents.to(device, pipe.unet.dtype),
                                 row["steps"], row["patch_size"], row["stride"], timings)
        output = output.float().permute(0, 2, 3, 1).cpu().numpy()
        result["condition_seconds"] = timings.condition
        result["unet_seconds"] = timings.unet
    else:
        scheduler = original_ddim_scheduler()
        pipe.scheduler = scheduler_from_name(row["scheduler"], scheduler.config) if row.get("scheduler") else scheduler
        outputs = []
        for member in range(row.get("ensemble", 1)):
            generator = torch.Generator().manual_seed(job["seed"] + member)
            noise = latents if member == 0 else None
            outputs.append(pipe(images, exposures, num_inference_steps=row["steps"], patch_size=row["patch_size"],
                                stride=row["stride"], condition_per_window=row["condition_per_window"],
                                shift_windows=row.get("shift_windows", False), window_blend=row.get("window_blend"),
                                generator=generator, latents=noise,
                                window_batch_size=row.get("window_batch_size", job.get("window_batch_size"))).mu_law)
        output = np.mean(outputs, axis=0)
    result["wall_seconds"] = time.perf_counter() - began_wall
    result["cpu_seconds"] = time.process_time() - began_cpu
    result["unet_pixel_evaluations"] = evaluations[0]
    result["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["rss_after_load_bytes"] = rss_loaded
    np.save(job["output"], output.astype(np.float32))
    return result


def spawn(job: dict) -> dict:
    """Run ``job`` in a fresh Python process; returns its result dict."""
    completed = subprocess.run([sys.executable, __file__, "--_job", json.dumps(job)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"row {job['row']['name']!r} failed:\n{completed.stderr[-3000:]}")
    for line in completed.stderr.splitlines():
        if line.startswith("note:"):
            print(line)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- inputs


def make_bracket(size: tuple[int, int], seed: int, synthetic: bool = True):
    """A bracket (images, EV, ground truth or None): synthesised if the synthesiser exists, else procedural."""
    if synthetic:
        try:
            from diffhdr_diffusers.data.synth import synthesize_scene

            scene = synthesize_scene(seed, index=0, size=size)
            return scene.images, list(scene.exposures), scene.radiance, "synthesize_scene"
        except ImportError:
            pass
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    base = 0.05 + 0.45 * (0.5 + 0.5 * np.sin(9 * x[..., None] + 5 * y[..., None] + rng.uniform(0, 6, 3)))
    radiance = (base * (1 + 0.1 * rng.standard_normal((height, width, 3)))).clip(0, 1).astype(np.float32)
    exposures = [0.0, 2.0, 4.0]
    images = [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in exposures]
    return [i.astype(np.float32) for i in images], exposures, radiance, "procedural"


def save_inputs(path: Path, images, exposures, size, seed: int) -> None:
    latents = torch.randn((1, 3, *size), generator=torch.Generator().manual_seed(seed)).numpy()
    np.savez(path, image0=images[0], image1=images[1], image2=images[2], exposures=np.asarray(exposures),
             latents=latents)


def prepare_model(config: str, model: str | None, folder: Path, seed: int) -> tuple[str, str]:
    """A pipeline folder for the rows: the trained model if given, else seeded random weights."""
    if model:
        return model, f"trained model {model}"
    from diffhdr_diffusers import DiffHDRPipeline
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.schedulers import original_ddim_scheduler

    torch.manual_seed(seed)
    unet, encoder = build_models(config)
    target = folder / f"model-{config}"
    DiffHDRPipeline(unet, encoder, original_ddim_scheduler()).save_pretrained(target)
    return str(target), f"random weights (config {config!r}, seed {seed})"


# ------------------------------------------------------------------------------------------ reporting


def environment(threads: int) -> str:
    cpu = platform.processor() or "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"torch {torch.__version__}, {os.cpu_count()} logical CPUs ({cpu}), torch threads {threads}, "
            f"GPU {gpu}, Python {platform.python_version()}, load average {load}")


def _gb(value: int) -> str:
    return f"{value / 2**30:.2f}"


def window_passes(height: int, width: int, patch: int, stride: int, factor: int, shifted: bool, steps: int) -> float:
    """Window passes of the pipeline over ``steps`` steps on a padded image.

    A shifted grid is averaged over its offsets; its last step runs on the pipeline's fixed
    half-overlapping grid (:func:`~diffhdr_diffusers.pipelines.tiling.final_stride`).
    """
    from diffhdr_diffusers.pipelines import WindowGrid, window_starts
    from diffhdr_diffusers.pipelines.tiling import final_stride

    height, width = -(-height // factor) * factor, -(-width // factor) * factor
    if not shifted:
        return float(len(WindowGrid.build(height, width, patch, stride))) * steps
    rows = np.mean([len(window_starts(height, min(patch, height), stride, o)) for o in range(stride)])
    cols = np.mean([len(window_starts(width, min(patch, width), stride, o)) for o in range(stride)])
    final = len(WindowGrid.build(height, width, patch, final_stride(patch, stride)))
    return float(rows * cols) * (steps - 1) + final


def reference_evaluations(height: int, width: int) -> int:
    """UNet pixel-evaluations of the original at p512/r64/T25 (image zero-padded to a multiple of 512)."""
    p, r = REFERENCE["patch_size"], REFERENCE["stride"]
    padded_h, padded_w = -(-height // p) * p, -(-width // p) * p
    windows = ((padded_h - p) // r + 1) * ((padded_w - p) // r + 1)
    return windows * p * p * REFERENCE["steps"]


def print_table(rows: list[dict], baseline: dict) -> None:
    print("| mode | steps | wall s | CPU s | speed-up (wall / CPU) | UNet pixel-evals | evals vs original | "
          "peak RSS GB | max abs diff vs original |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['steps']} | {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} | "
              f"{baseline['wall_seconds'] / r['wall_seconds']:.2f}x / {baseline['cpu_seconds'] / r['cpu_seconds']:.2f}x | "
              f"{r['unet_pixel_evaluations']:.3g} | "
              f"{baseline['unet_pixel_evaluations'] / r['unet_pixel_evaluations']:.1f}x fewer | "
              f"{_gb(r['peak_rss_bytes'])} | {r['max_abs_diff']:.2e} |")


# ------------------------------------------------------------------------------------------- commands


def speed(args, work: Path) -> None:
    for config in args.configs:
        patch, stride, steps = CONFIG_DEFAULTS.get(config, (128, 64, 2))
        patch, stride, steps = args.patch_size or patch, args.stride or stride, args.steps or steps
        model_dir, weights = prepare_model(config, args.model, work, args.seed)
        images, exposures, _, source = make_bracket(args.size, args.seed)
        inputs = work / f"inputs-{config}.npz"
        save_inputs(inputs, images, exposures, args.size, args.seed)
        specs = row_specs(patch, stride, steps, args.few_steps)
        if args.rows:
            specs = [s for i, s in enumerate(specs) if i in args.rows or i == 0]
        print(f"\n### config `{config}`: {args.size[0]}x{args.size[1]}, patch {patch}, stride {stride}, "
              f"T={steps}, {weights}, input from {source}\n")
        results = []
        for index, spec in enumerate(specs):
            job = dict(row=spec, model_dir=model_dir, inputs=str(inputs), output=str(work / f"{config}-{index}.npy"),
                       threads=args.threads, device=args.device, dtype=args.dtype, seed=args.seed,
                       channels_last=args.channels_last, compile=args.compile, compile_cpu=args.compile_cpu,
                       window_batch_size=args.window_batch_size, reuse_freed_memory=args.reuse_freed_memory)
            result = spawn(job)
            result["steps"] = spec["steps"]
            reference = np.load(work / f"{config}-0.npy")
            result["max_abs_diff"] = float(np.abs(np.load(job["output"]) - reference).max())
            results.append(result)
            print(f"  done: {result['name']} in {result['wall_seconds']:.1f} s", file=sys.stderr, flush=True)
        baseline = results[0]
        print_table(results, baseline)
        share = baseline["condition_seconds"] / (baseline["condition_seconds"] + baseline["unet_seconds"])
        print(f"\nCondition network share of the original's model time: {share:.1%} "
              f"({baseline['condition_seconds']:.1f} s of {baseline['condition_seconds'] + baseline['unet_seconds']:.1f} s).")
        windows = baseline["unet_pixel_evaluations"] / (patch * patch * steps)
        per_window = (baseline["condition_seconds"] + baseline["unet_seconds"]) / (windows * steps)
        unet_per_window = baseline["unet_seconds"] / (windows * steps)
        exact = results[1] if len(results) > 1 else baseline
        print(f"Measured per {patch}x{patch} window and step: original {per_window:.3f} s "
              f"(UNet {unet_per_window:.3f} s); exact mode {exact['wall_seconds'] / (windows * steps):.3f} s.")
        cpu_scale = baseline["cpu_seconds"] / baseline["wall_seconds"]
        print(f"Per window and step in CPU seconds (this process's share of a loaded machine): original "
              f"{per_window * cpu_scale:.3f} s, exact mode {exact['cpu_seconds'] / (windows * steps):.3f} s.")
        project(config, patch, per_window * cpu_scale, unet_per_window * cpu_scale, "CPU")
        project(config, patch, per_window, unet_per_window, "wall")


def project(config: str, patch: int, per_window: float, unet_per_window: float, clock: str) -> None:
    """Full-size cost from the measured per-window cost (pixel-linear; attention's quadratic part ignored).

    The exact mode is projected as the original's UNet time alone (the condition network cached): at
    512-pixel windows every batch size costs the same per window on a CPU (`bench_window_batch.py
    --cases paper:512`), so the small-window batch advantage measured here does not carry over.
    """
    from diffhdr_diffusers.model_configs import resolve_model_config
    from diffhdr_diffusers.pipelines.presets import FAST_PRESET

    scale = (REFERENCE["patch_size"] / patch) ** 2
    height, width = FULL_SIZE
    windows = reference_evaluations(height, width) / (REFERENCE["patch_size"] ** 2 * REFERENCE["steps"])
    factor = 2 ** (len(resolve_model_config(config)["unet"]["ch_mult"]) - 1)
    fast_windows = window_passes(height, width, 512, 512, factor, True, FAST_PRESET["num_inference_steps"])
    total = windows * REFERENCE["steps"]
    print(f"Projection ({clock} time) for {height}x{width}, p512/r64/T25 ({int(windows)} windows x 25 steps), same CPU, "
          f"config `{config}`: original {total * per_window * scale / 3600:.2f} h, exact mode "
          f"{total * unet_per_window * scale / 3600:.2f} h; FAST_PRESET ({fast_windows:.0f} window passes) "
          f"{fast_windows * unet_per_window * scale / 60:.1f} min. (Scaled by pixels from {patch}x{patch}; "
          "attention at 512 adds a few percent.)")


def sizes(args, work: Path) -> None:
    from diffhdr_diffusers.pipelines.presets import FAST_PRESET

    config = args.sizes_config
    model_dir, weights = prepare_model(config, args.model if args.model else None, work, args.seed)
    if args.reuse_freed_memory:  # so that the window batch printed below is the one the rows choose
        from diffhdr_diffusers.allocator import reuse_freed_memory

        reuse_freed_memory()
    patch = args.patch_size or 128
    print(f"\n### Scaling: config `{config}` ({weights}), FAST_PRESET grid (patch {patch}, stride {patch}, shifted), "
          f"T={args.sizes_steps}, per-window conditioning, automatic window batch\n")
    print("| size | megapixels | wall s | CPU s | UNet pixel-evals | CPU s per 1e6 pixel-evals | peak RSS GB | "
          "window batch |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.size_list:
        images, exposures, _, _ = make_bracket(size, args.seed, synthetic=False)
        inputs = work / f"sizes-{size[0]}x{size[1]}.npz"
        save_inputs(inputs, images, exposures, size, args.seed)
        spec = dict(name=f"{size[0]}x{size[1]}", steps=args.sizes_steps, patch_size=patch, stride=patch,
                    shift_windows=FAST_PRESET["shift_windows"], condition_per_window=True)
        job = dict(row=spec, model_dir=model_dir, inputs=str(inputs), output=str(work / "sizes.npy"),
                   threads=args.threads, device=args.device, dtype=args.dtype, seed=args.seed,
                   window_batch_size=args.window_batch_size, reuse_freed_memory=args.reuse_freed_memory)
        r = spawn(job)
        batch = args.window_batch_size or _auto_batch(model_dir, size, patch)
        print(f"| {size[0]}x{size[1]} | {size[0] * size[1] / 1e6:.2f} | {r['wall_seconds']:.1f} | "
              f"{r['cpu_seconds']:.1f} | {r['unet_pixel_evaluations']:.3g} | "
              f"{r['cpu_seconds'] / r['unet_pixel_evaluations'] * 1e6:.3f} | {_gb(r['peak_rss_bytes'])} | {batch} |",
              flush=True)


def _auto_batch(model_dir: str, size, patch: int) -> int:
    from diffhdr_diffusers.pipelines import WindowGrid

    pipe = _load_pipeline(model_dir, "cpu", "float32")
    factor = pipe.unet.downsample_factor
    grid = WindowGrid.build(-(-size[0] // factor) * factor, -(-size[1] // factor) * factor, patch, patch)
    from diffhdr_diffusers.allocator import cpu_window_budget
    from diffhdr_diffusers.pipelines import memory

    return memory.default_window_batch_size(pipe.unet, grid, torch.device("cpu"), cpu_window_budget())


def calibrate_job(job: dict) -> dict:
    """Peak RSS growth of one UNet call on ``batch`` windows, per pixel per unit of base width (float32),
    or with ``encoder`` set ("whole" or "banded"), of the condition encoder over a whole image."""
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.pipelines.window_features import ENCODER_BAND_PIXELS, encode_in_bands

    torch.set_num_threads(job["threads"])
    unet, encoder = build_models(job["config"])
    unet.eval()
    if job.get("encoder"):
        conditioning = torch.rand(1, 18, *job["size"])
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with torch.no_grad():
            features = encoder(conditioning) if job["encoder"] == "whole" else encode_in_bands(encoder, conditioning)
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        pixels = job["size"][0] * job["size"][1]
        if job["encoder"] == "banded":
            pixels = min(pixels, ENCODER_BAND_PIXELS)
        transient = growth - features.numel() * features.element_size()
        return {"growth_bytes": growth,
                "transient_per_pixel_feature": transient / (pixels * encoder.config.num_features)}
    p, batch = job["patch"], job["batch"]
    sample = torch.randn(batch, 3, p, p)
    features = torch.randn(batch, encoder.config.num_features, p, p)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with torch.no_grad():
        unet(sample, torch.tensor([500.0]), features)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    per = (peak - before) / (batch * p * p * unet.config.ch)
    return {"config": job["config"], "patch": p, "batch": batch, "growth_bytes": peak - before,
            "bytes_per_pixel_channel": per}


def calibrate(args) -> None:
    from diffhdr_diffusers.pipelines import pipeline_diffhdr

    print("\n### Window memory calibration (peak RSS growth of one UNet call, float32)\n")
    print("| config | patch | windows | growth GB | bytes / (pixel x ch) |")
    print("|---|---|---|---|---|")
    for config, patch, batch in ((c, int(p), int(b)) for c, p, b in (s.split(":") for s in args.calibrate_cases)):
        completed = subprocess.run([sys.executable, __file__, "--_calibrate", json.dumps(
            dict(config=config, patch=patch, batch=batch, threads=args.threads))], capture_output=True, text=True)
        if completed.returncode:
            raise RuntimeError(completed.stderr[-2000:])
        r = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"| {config} | {patch} | {batch} | {_gb(r['growth_bytes'])} | {r['bytes_per_pixel_channel']:.1f} |",
              flush=True)
    print(f"\nPipeline constant `_ACTIVATION_BYTES_PER_PIXEL_CHANNEL` = "
          f"{pipeline_diffhdr._ACTIVATION_BYTES_PER_PIXEL_CHANNEL}.")
    config, size = args.calibrate_encoder.split(":")
    print(f"\nCondition encoder (`{config}`) over one {size} image, float32:\n")
    print("| pass | growth GB | transient bytes / (pixel x feature), of a band for `banded` |")
    print("|---|---|---|")
    for mode in ("whole", "banded"):
        completed = subprocess.run([sys.executable, __file__, "--_calibrate", json.dumps(
            dict(config=config, size=parse_size(size), encoder=mode, threads=args.threads))],
            capture_output=True, text=True)
        if completed.returncode:
            raise RuntimeError(completed.stderr[-2000:])
        r = json.loads(completed.stdout.strip().splitlines()[-1])
        print(f"| {mode} | {_gb(r['growth_bytes'])} | {r['transient_per_pixel_feature']:.1f} |", flush=True)
    print(f"\nPipeline constant `_ENCODER_BYTES_PER_PIXEL_FEATURE` = {pipeline_diffhdr._ENCODER_BYTES_PER_PIXEL_FEATURE}.")


def quality(args, work: Path) -> None:
    model = args.model or (str(DEFAULT_MODEL) if (DEFAULT_MODEL / "model_index.json").is_file() else None)
    print("\n### Quality (PSNR-mu against ground truth)\n")
    if model is None:
        print("n/a (no trained model): pass --model PATH or install diffhdr_diffusers/default_model.")
        return
    try:
        from diffhdr_diffusers.data.synth import synthesize_scene
        from diffhdr_diffusers.metrics import psnr_mu
    except ImportError as error:
        print(f"skipped: {error}")
        return
    from diffhdr_diffusers.schedulers import scheduler_from_name

    torch.set_num_threads(args.threads)
    pipe = _load_pipeline(model, args.device, args.dtype)
    patch = args.patch_size or 128
    stride = args.stride or patch // 4
    steps = args.steps or 25
    specs = [s for s in row_specs(patch, stride, steps, args.few_steps)[1:]
             if not s.get("channels_last") and "window_batch_size" not in s]  # same output as exact
    scenes = [synthesize_scene(args.seed, index=i, size=tuple(args.size)) for i in range(args.quality)]
    height, width = args.size
    factor = pipe.unet.downsample_factor
    scores = {}
    scheduler = pipe.scheduler  # the model's own config (its prediction type included)
    if args.cost_curve:
        from diffhdr_diffusers.pipelines.presets import FAST_PRESET

        specs += [dict(name=f"cost curve: FAST_PRESET grid, T={steps}", steps=steps, stride=patch,
                       shift_windows=FAST_PRESET["shift_windows"], condition_per_window=None)
                  for steps in args.cost_curve]
    for spec in specs:
        pipe.scheduler = scheduler_from_name(spec["scheduler"], scheduler.config) if spec.get("scheduler") else scheduler
        values = []
        for index, scene in enumerate(scenes):
            outs = []
            for member in range(spec.get("ensemble", 1)):
                generator = torch.Generator().manual_seed(args.seed + 1000 * index + member)
                outs.append(pipe(scene.images, scene.exposures, num_inference_steps=spec["steps"], patch_size=patch,
                                 stride=spec["stride"], condition_per_window=spec["condition_per_window"],
                                 shift_windows=spec.get("shift_windows", False), window_blend=spec.get("window_blend"),
                                 generator=generator).hdr[0])
            values.append(psnr_mu(np.mean(outs, axis=0), scene.radiance))
        shifted, members = spec.get("shift_windows", False), spec.get("ensemble", 1)
        passes = window_passes(height, width, patch, spec["stride"], factor, shifted, spec["steps"])
        full = window_passes(*FULL_SIZE, 512, spec["stride"] * 512 // patch, factor, shifted, spec["steps"])
        scores[spec["name"]] = (float(np.mean(values)), passes * patch * patch * members,
                                reference_evaluations(*FULL_SIZE) / (full * 512 * 512 * members))
        print(f"  {spec['name']}: {scores[spec['name']][0]:.2f} dB", file=sys.stderr, flush=True)
    exact = next(iter(scores.values()))[0]
    print(f"Model {model}; {args.quality} synthesised scenes {height}x{width} (seed {args.seed}); patch {patch}.\n")
    print("| mode | steps | PSNR-mu dB | loss vs exact dB | UNet pixel-evals here | 1000x1500 evals ratio vs p512/r64/T25 |")
    print("|---|---|---|---|---|---|")
    for spec in specs:
        value, evals, ratio = scores[spec["name"]]
        print(f"| {spec['name']} | {spec['steps']} | {value:.2f} | {exact - value:+.2f} | {evals:.3g} | {ratio:.1f}x |")


def preset_ratio() -> None:
    """The FAST_PRESET's analytic evaluation ratio against the original settings at 1000x1500."""
    from diffhdr_diffusers.pipelines.presets import FAST_PRESET

    reference = reference_evaluations(*FULL_SIZE)
    print(f"\n### Evaluation ratio at {FULL_SIZE[0]}x{FULL_SIZE[1]} (analytic)\n")
    print(f"Original p512/r64/T25: {reference:.4g} UNet pixel-evaluations (153 windows x 512^2 x 25).\n")
    print("| patch | stride | shifted | steps | window passes | pixel-evals | ratio |")
    print("|---|---|---|---|---|---|---|")
    for steps in sorted({5, 6, FAST_PRESET["num_inference_steps"]}):
        for patch, stride, shifted in ((512, 512, True), (512, 512, False), (512, 256, False)):
            passes = window_passes(*FULL_SIZE, patch, stride, 32, shifted, steps)
            evals = passes * patch * patch
            print(f"| {patch} | {stride} | {shifted} | {steps} | {passes:.1f} | {evals:.3g} | {reference / evals:.1f}x |")


def parse_size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["small", "paper"], help="model configs for the speed table")
    parser.add_argument("--size", type=parse_size, default=(256, 384), help="HxW of the test bracket")
    parser.add_argument("--patch-size", type=int, help="window size (default per config)")
    parser.add_argument("--stride", type=int, help="window stride of the original/exact rows (default per config)")
    parser.add_argument("--steps", type=int, help="T of the original/exact rows; should divide 1000")
    parser.add_argument("--few-steps", type=int, default=5, help="steps of the DPM-Solver++/UniPC rows")
    parser.add_argument("--rows", type=int, nargs="+", help="run only these row indices (0 always runs)")
    parser.add_argument("--model", help="a trained pipeline folder (default: random weights for speed, "
                                        "diffhdr_diffusers/default_model for --quality)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--channels-last", action="store_true", help="channels_last UNet in every pipeline row")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet (skipped on CPU)")
    parser.add_argument("--compile-cpu", action="store_true", help="allow --compile on CPU")
    parser.add_argument("--window-batch-size", type=int, help="override the pipeline's automatic window batch")
    parser.add_argument("--reuse-freed-memory", action="store_true",
                        help="tune glibc's allocator in every row's process, as the diffhdr command does")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", action="store_true", help="linear scaling and peak RSS at several sizes")
    parser.add_argument("--size-list", type=parse_size, nargs="+", default=[(256, 384), (512, 768), (1000, 1500)])
    parser.add_argument("--sizes-steps", type=int, default=2)
    parser.add_argument("--sizes-config", default="small", help="model config of the --sizes rows")
    parser.add_argument("--calibrate", action="store_true", help="measure the window activation memory")
    parser.add_argument("--calibrate-cases", nargs="+", default=["small:128:16", "small:256:4", "paper:128:2"],
                        help="config:patch:windows")
    parser.add_argument("--calibrate-encoder", default="paper:1024x1536", metavar="CONFIG:HxW",
                        help="the condition encoder's memory, one pass against bands (with --calibrate)")
    parser.add_argument("--quality", type=int, default=0, metavar="N", help="PSNR-mu over N synthesised scenes")
    parser.add_argument("--cost-curve", type=lambda text: [int(v) for v in text.split(",")], metavar="T,T,...",
                        help="with --quality: also the FAST_PRESET grid at these step counts (evaluations vs dB)")
    parser.add_argument("--skip-speed", action="store_true", help="only the --sizes/--calibrate/--quality parts")
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    parser.add_argument("--_calibrate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._job:
        print(json.dumps(run_row(json.loads(args._job))))
        return
    if args._calibrate:
        print(json.dumps(calibrate_job(json.loads(args._calibrate))))
        return
    if args.device == "cpu" and args.dtype != "float32":
        print(f"note: --dtype {args.dtype} is for GPUs; skipped on CPU, running float32.")
        args.dtype = "float32"
    print(f"## bench_sampling: {' '.join(sys.argv[1:])}\n\n{environment(args.threads)}")
    with tempfile.TemporaryDirectory(prefix="bench_sampling.") as tmp:
        work = Path(tmp)
        if not args.skip_speed:
            speed(args, work)
        if args.sizes:
            sizes(args, work)
        if args.calibrate:
            calibrate(args)
        preset_ratio()
        if args.quality:
            quality(args, work)
    print(f"\nLoad average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
