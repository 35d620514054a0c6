"""Throughput of whole-bracket merges: seconds per megapixel and peak RSS, flow-merge against the model.

    python benchmarks/bench_throughput.py                               # 12 MP (4000x3000), flow-merge and the model
    python benchmarks/bench_throughput.py --sizes 6000x4000 --skip-model  # 24 MP, flow-merge only
    python benchmarks/bench_throughput.py --sizes 4000x3000 --model-sizes 384x256
    python benchmarks/bench_throughput.py --compare-with /path/to/old/checkout --skip-model  # before/after
    python benchmarks/bench_throughput.py --sizes 1500x1000 --skip-model --paper           # the paper's config

Every case runs in a fresh subprocess, so its peak RSS is its own (``ru_maxrss`` of that process: the
synthesised bracket, the merge and its temporaries; the "inputs" column is the peak before the merge
started). The bracket is a ``synthesize_scene`` scene (3 exposures, EV -2, 0, 2, moving camera and
objects) rendered at 750x1000 and upscaled to each size, so every size shows the same content.

Methods:

* ``flow-merge``: what ``diffhdr merge --method flow-merge`` runs (``flow_merge_radiance``: bands, bounded memory);
* ``flow-merge (full result)``: ``flow_merge`` in Python, which also returns the full-size alignment
  (every warped frame, flow and confidence), so it needs more memory; only with ``--full-result``;
* ``model``: the bundled DiffHDR pipeline at its defaults (its ``default_processing_resolution`` included),
  as ``diffhdr merge`` runs it (allocator tuned, CPU window budget), seed 0; ``--skip-model`` leaves it out,
  ``--model-sizes`` runs it at other sizes, ``--processing-resolutions 0,768`` adds rows ``model @0`` (native)
  and ``model @768``. ``--device cuda --dtype float16`` runs it on a GPU.
* ``paper`` and ``paper --fast`` (with ``--paper``): the paper's config (75 M parameters; random weights, as
  speed does not depend on them) at its defaults (exact mode: 25 steps of 512-pixel windows, stride 64) and
  with the fast preset (``--paper-processing-resolutions 0,512`` adds ``paper @512`` rows). On a CPU
  ``--paper-steps K`` runs only the first K steps (default 1) and the table extrapolates to all steps
  (seconds x steps / K, an upper bound: the once-per-call encoder work is counted every step).

The table is Markdown; the ``model / flow-merge`` column is the ratio of seconds on the same size in
this run. ``--json PATH`` also writes every measurement.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SIZE = (750, 1000)  # (height, width) the scene is synthesised at before upscaling


def _size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (height, width)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 4000x3000, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"{text}: sizes start at 16x16")
    return height, width


def _sizes(text: str) -> list[tuple[int, int]]:
    return [_size(part) for part in text.split(",") if part.strip()]


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _bracket(height: int, width: int, seed: int):
    import cv2
    import numpy as np

    from diffhdr_diffusers.data.synth import synthesize_scene

    scene = synthesize_scene(seed, 0, size=SOURCE_SIZE, ev_sets=[(-2.0, 0.0, 2.0)])
    images = []
    for image in scene.images:
        frame = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)
        images.append(np.clip(frame, 0.0, 1.0, out=frame))
    return images, list(scene.exposures)


def worker(method: str, height: int, width: int, seed: int, device: str, dtype: str, paper_steps: int = 1) -> dict:
    """Run one case in this process; returns its measurements."""
    images, exposures = _bracket(height, width, seed)
    inputs_mib = _peak_rss_mib()
    row = {"method": method, "height": height, "width": width, "megapixels": height * width / 1e6}
    if method in ("flow-merge", "flow-merge (full result)"):
        from diffhdr_diffusers import merging

        start = time.perf_counter()
        banded = "details" in inspect.signature(merging.flow_merge_radiance).parameters
        if method == "flow-merge" and banded:
            merged = merging.flow_merge_radiance(images, exposures, details=True)
            radiance, settings = merged.radiance, merged.settings
        else:  # the full result (or older code, whose command line ran flow_merge)
            result = merging.flow_merge(images, exposures)
            radiance, settings = result.radiance, result.alignment.settings
        seconds = time.perf_counter() - start
        row["flow_size"] = settings["flow_size"]
        row["code"] = str(Path(merging.__file__).resolve().parents[1])
    elif method.startswith(("model", "paper")):
        import torch

        from diffhdr_diffusers.allocator import configure_from_environment, cpu_window_budget
        from diffhdr_diffusers.pipelines import DiffHDRPipeline

        configure_from_environment()  # as the diffhdr command does
        options = {}
        if method.startswith("paper"):
            from diffhdr_diffusers.model_configs import build_models
            from diffhdr_diffusers.pipelines.presets import FAST_PRESET
            from diffhdr_diffusers.schedulers import original_ddim_scheduler

            torch.manual_seed(0)
            pipe = DiffHDRPipeline(*build_models("paper"), original_ddim_scheduler())
            options = dict(FAST_PRESET) if "--fast" in method else {}
            steps = options.get("num_inference_steps", pipe.config.default_num_inference_steps)
            if torch.device(device).type == "cpu":  # the first steps only; extrapolated in the table
                row["steps_run"] = min(paper_steps, steps)
                options["callback_on_step_end"] = _stop_after(row["steps_run"])
        else:
            pipe = DiffHDRPipeline.from_pretrained(None)
            steps = pipe.config.default_num_inference_steps
        if "@" in method:
            options["processing_resolution"] = int(method.split("@")[1])
        pipe = pipe.to(device, getattr(torch, dtype)) if dtype != "float32" else pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        if torch.device(device).type == "cpu":
            options["window_memory_budget"] = cpu_window_budget()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = pipe(images, exposures, generator=torch.Generator().manual_seed(0), **options)
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
            row["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
        seconds = time.perf_counter() - start
        if "steps_run" in row:
            row["seconds_run"] = seconds
            seconds *= steps / row["steps_run"]
        radiance = result.hdr[0]
        row.update(device=device, dtype=dtype, steps=int(steps),
                   processing_resolution=options.get("processing_resolution",
                                                     pipe.config.default_processing_resolution))
    else:
        raise SystemExit(f"unknown method {method!r}")
    import numpy as np

    row.update(seconds=seconds, seconds_per_mp=seconds / row["megapixels"], inputs_rss_mib=inputs_mib,
               peak_rss_mib=_peak_rss_mib(), finite=bool(np.isfinite(np.asarray(radiance)).all()))
    return row


def _stop_after(steps: int):
    """A ``callback_on_step_end`` that interrupts the call after ``steps`` steps."""
    def callback(pipe, index, timestep, tensors):
        if index + 1 >= steps:
            pipe._interrupt = True
        return tensors
    return callback


def _run_case(method: str, size: tuple[int, int], args, pythonpath: str | None = None) -> dict:
    height, width = size
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", method, f"{width}x{height}",
               "--seed", str(args.seed), "--device", args.device, "--dtype", args.dtype,
               "--paper-steps", str(args.paper_steps)]
    env = dict(os.environ)
    paths = [pythonpath] if pythonpath else []
    env["PYTHONPATH"] = os.pathsep.join(paths + [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"method": method, "height": height, "width": width, "megapixels": height * width / 1e6,
                "error": " | ".join(tail) or f"exit {done.returncode}"}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if pythonpath:
        row["method"] = f"{method} [{pythonpath}]"
    return row


def _cell(row: dict | None) -> list[str]:
    if row is None:
        return ["-", "-", "-"]
    if "error" in row:
        return ["failed", "-", row["error"][:60]]
    seconds = f"{row['seconds']:.2f}"
    if "steps_run" in row:
        seconds = f"{seconds} (est.: {row['seconds_run']:.1f} s for {row['steps_run']} of {row['steps']} steps)"
    return [seconds, f"{row['seconds_per_mp']:.3f}", f"{row['peak_rss_mib']:.0f}"]


def table(rows: list[dict], sizes: list[tuple[int, int]]) -> str:
    """The Markdown table: per size, each method's seconds, s/MP and peak RSS, and the model/flow-merge ratio."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    header = ["size", "MP"]
    for method in methods:
        header += [f"{method} s", f"{method} s/MP", f"{method} peak RSS MiB"]
    ratios = [method for method in methods if method != "flow-merge" and not method.startswith("flow-merge ")]
    if "flow-merge" in methods:
        header += [f"{method} / flow-merge" for method in ratios]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for height, width in sizes:
        found = {row["method"]: row for row in rows if (row["height"], row["width"]) == (height, width)}
        if not found:
            continue
        cells = [f"{width}x{height}", f"{height * width / 1e6:.2f}"]
        for method in methods:
            cells += _cell(found.get(method))
        if "flow-merge" in methods:
            flow = found.get("flow-merge")
            for method in ratios:
                other = found.get(method)
                ok = other and flow and "error" not in other and "error" not in flow
                cells.append(f"{other['seconds'] / flow['seconds']:.1f}x" if ok else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_sizes, default=[(3000, 4000)], metavar="WxH,...",
                        help="bracket sizes, width x height (default 4000x3000, 12 MP)")
    parser.add_argument("--model-sizes", type=_sizes, metavar="WxH,...",
                        help="sizes the model runs at (default: --sizes)")
    parser.add_argument("--skip-model", action="store_true", help="leave out the bundled model")
    parser.add_argument("--processing-resolutions", metavar="PX,...",
                        type=lambda text: [int(v) for v in text.split(",") if v.strip()], default=[],
                        help="also run the model at these processing resolutions (0: native)")
    parser.add_argument("--paper", action="store_true", help="also run the paper's config, exact and --fast")
    parser.add_argument("--paper-processing-resolutions", metavar="PX,...", default=[0],
                        type=lambda text: [int(v) for v in text.split(",") if v.strip()],
                        help="processing resolutions of the paper's rows (default 0: the input's size)")
    parser.add_argument("--paper-steps", type=int, default=1, metavar="K",
                        help="on a CPU, steps of the paper's config actually run (default 1; extrapolated)")
    parser.add_argument("--full-result", action="store_true", help="also time flow_merge with its full-size alignment")
    parser.add_argument("--compare-with", metavar="DIR",
                        help="also run flow-merge from another checkout (a folder holding diffhdr_diffusers/), "
                             "e.g. the code before a change, and print the speed-up")
    parser.add_argument("--device", default="cpu", help="device of the model (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="dtype of the model (default float32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per case (default 7200)")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement as JSON")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "WxH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        method, size = args.worker
        height, width = _size(size)
        print(json.dumps(worker(method, height, width, args.seed, args.device, args.dtype, args.paper_steps)))
        return 0

    cases = [("flow-merge", size, None) for size in args.sizes]
    if args.compare_with:
        cases += [("flow-merge", size, str(Path(args.compare_with).resolve())) for size in args.sizes]
    if args.full_result:
        cases += [("flow-merge (full result)", size, None) for size in args.sizes]
    model_sizes = args.model_sizes or args.sizes
    if not args.skip_model:
        cases += [(method, size, None) for size in model_sizes
                  for method in ["model"] + [f"model @{px}" for px in args.processing_resolutions]]
        for size in model_sizes:  # the ratio needs flow-merge at the model's sizes too
            if size not in args.sizes:
                cases.insert(0, ("flow-merge", size, None))
    if args.paper:
        cases += [(f"{method} @{px}" if px else method, size, None) for size in args.sizes
                  for px in args.paper_processing_resolutions for method in ("paper", "paper --fast")]
    rows = []
    for method, size, pythonpath in cases:
        label = f"{method}{' [' + pythonpath + ']' if pythonpath else ''} at {size[1]}x{size[0]}"
        print(f"running {label} ...", file=sys.stderr, flush=True)
        row = _run_case(method, size, args, pythonpath)
        rows.append(row)
        print(f"  {json.dumps(row)}", file=sys.stderr, flush=True)
    sizes = list(dict.fromkeys([size for _, size, _ in cases]))
    print(table(rows, sorted(sizes, key=lambda s: s[0] * s[1])))
    if args.compare_with:
        for height, width in sizes:
            new = next((r for r in rows if r["method"] == "flow-merge" and (r["height"], r["width"]) == (height, width)), None)
            old = next((r for r in rows if r["method"].startswith("flow-merge [") and (r["height"], r["width"]) == (height, width)), None)
            if new and old and "error" not in new and "error" not in old:
                print(f"\nflow-merge at {width}x{height}: {old['seconds']:.2f} s -> {new['seconds']:.2f} s "
                      f"({old['seconds'] / new['seconds']:.2f}x faster), peak RSS {old['peak_rss_mib']:.0f} -> "
                      f"{new['peak_rss_mib']:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
