#!/usr/bin/env python
"""UNet cost per window against the number of windows per call, on this machine.

The pipeline's automatic window batch (`DiffHDRPipeline.default_window_batch_size`) keeps a CPU batch's
estimated activations near 128 MiB. This script shows why: each (config, patch) runs in a fresh process
that times eval-mode UNet calls at every batch size, once with the default glibc allocator and once after
`diffhdr_diffusers.allocator.reuse_freed_memory()` (what the ``diffhdr`` command does), which keeps large
freed tensors in the heap instead of mapping fresh, page-faulting memory for each one. Ratios are against
the first batch size with the default allocator.

    python benchmarks/bench_window_batch.py                               # paper:128 small:128 small:64
    python benchmarks/bench_window_batch.py --cases paper:256 --batches 1,2,4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(config: str, patch: int, batches: list[int], threads: int, pixels_per_batch: int, tuned: bool) -> dict:
    """CPU milliseconds per window for each batch size (run inside the child process)."""
    import torch

    from diffhdr_diffusers.allocator import cpu_window_budget, reuse_freed_memory

    if tuned:
        reuse_freed_memory()
    from diffhdr_diffusers import DiffHDRPipeline
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.pipelines import WindowGrid, memory
    from diffhdr_diffusers.schedulers import original_ddim_scheduler

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    unet, encoder = build_models(config)
    unet.eval()
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler())
    automatic = memory.default_window_batch_size(pipe.unet, WindowGrid.build(4096, 4096, patch, patch),
                                                 torch.device("cpu"), cpu_window_budget())
    result = {"window_mib": memory.window_bytes(pipe.unet, patch, patch) / 2**20, "automatic": automatic, "ms": {}}
    for batch in batches:
        sample = torch.randn(batch, 3, patch, patch)
        features = torch.randn(batch, encoder.config.num_features, patch, patch)
        calls = max(1, pixels_per_batch // (2 * batch * patch * patch))
        timings = []
        with torch.no_grad():
            unet(sample, torch.tensor(500.0), features)  # warm-up
            for _ in range(2):  # the faster of two rounds
                began = time.process_time()
                for _ in range(calls):
                    unet(sample, torch.tensor(500.0), features)
                timings.append((time.process_time() - began) * 1000 / (calls * batch))
        result["ms"][batch] = min(timings)
    return result


def run_case(case: str, args, tuned: bool) -> dict:
    config, patch = case.split(":")
    job = dict(config=config, patch=int(patch), batches=args.batches, threads=args.threads,
               pixels_per_batch=args.pixels, tuned=tuned)
    completed = subprocess.run([sys.executable, __file__, "--_job", json.dumps(job)], capture_output=True, text=True)
    if completed.returncode:
        raise RuntimeError(completed.stderr[-3000:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["paper:128", "small:128", "small:64"], metavar="CONFIG:PATCH")
    parser.add_argument("--batches", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4, 8, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pixels", type=int, default=16 * 128 * 128, help="window pixels timed per batch size")
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._job:
        print(json.dumps(measure(**json.loads(args._job))))
        return

    print(f"## bench_window_batch: {' '.join(sys.argv[1:])}\n")
    print(f"torch threads {args.threads}, {os.cpu_count()} logical CPUs, load average "
          f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}\n")
    print("| config | patch | windows per call | est. activations MiB | CPU ms / window | vs first | "
          "reuse_freed_memory: CPU ms / window | vs first (default allocator) |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        plain, tuned = run_case(case, args, False), run_case(case, args, True)
        base = plain["ms"][str(args.batches[0])]
        for batch in args.batches:
            ms, fast = plain["ms"][str(batch)], tuned["ms"][str(batch)]
            mark = " (automatic)" if batch == plain["automatic"] else ""
            print(f"| {case.split(':')[0]} | {case.split(':')[1]} | {batch}{mark} | {batch * plain['window_mib']:.0f} | "
                  f"{ms:.1f} | {ms / base:.2f} | {fast:.1f} | {fast / base:.2f} |", flush=True)
        if plain["automatic"] not in args.batches:
            print(f"| {case.split(':')[0]} | {case.split(':')[1]} | automatic: {plain['automatic']} | | | | | |")


if __name__ == "__main__":
    main()
