#!/usr/bin/env python
"""Training data loading: milliseconds per aligned training crop from the prior cache, against the whole-file read.

"ours" is :class:`~diffhdr_diffusers.data.TrainingTransform` as ``SeededCropDataset`` calls it (a new transform
per sample): the crop reads its window of the memory-mapped cache file, ground truth included. "whole file"
is the reference in the same run: the same transform reading the way it did before main b7a672f, the cache
file loaded whole and the row's ground truth decoded for every crop. Both draw the same crops (checked).

    python benchmarks/bench_data_loading.py --scenes 24 --samples 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training"))

from diffhdr_diffusers.data import TrainingTransform, decode_scene, synthesize_scenes  # noqa: E402


EV_SETS = [(0.0, 3.0), (-2.0, 0.0, 2.0), (-4.0, -2.0, 0.0, 2.0, 4.0), (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)]


class WholeFileTransform(TrainingTransform):
    """The reference: every crop loads its scene's cache file whole and decodes the row's ground truth."""

    def scene_prior(self, decoded):
        with np.load(self._cache_path(decoded["scene"])) as stored:
            return stored["conditioning"], stored["prior"], stored["exposures"].tolist(), float(stored["units_scale"])

    def _decode(self, row):
        return decode_scene(row, frames=False)


def per_sample_ms(transform_class, rows, cache: Path, samples: int) -> tuple[float, list]:
    def draw(seed: int, row: dict):
        transform = transform_class(crop_size=64, seed=seed, alignment={}, prior_cache_dir=cache, exposure_planes=True,
                                    response="auto", correction_gate=(0.9, 1.0))
        return transform({key: [value] for key, value in row.items()})

    start = time.perf_counter()
    drawn = [draw(k, rows[k % len(rows)]) for k in range(samples)]
    return (time.perf_counter() - start) / samples * 1e3, drawn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many passes, alternating")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import train_diffhdr
    from fill_prior_cache import fill_prior_cache

    with tempfile.TemporaryDirectory() as folder:
        data, cache = Path(folder) / "data", Path(folder) / "cache"
        synthesize_scenes(data / "Training", args.scenes, seed=3, camera_mix="realistic", ev_sets=EV_SETS)
        fill_prior_cache(data, cache, workers=2, log=lambda line: None)
        scenes = train_diffhdr.load_scenes(str(data), "train", num_exposures=None)
        rows = [scenes[index] for index in range(len(scenes))]
        for transform_class in (TrainingTransform, WholeFileTransform):  # warm the page cache
            per_sample_ms(transform_class, rows, cache, len(rows))
        best = {"ours": float("inf"), "whole file": float("inf")}
        for _ in range(args.repeats):
            ours, drawn = per_sample_ms(TrainingTransform, rows, cache, args.samples)
            whole, reference = per_sample_ms(WholeFileTransform, rows, cache, args.samples)
            best["ours"], best["whole file"] = min(best["ours"], ours), min(best["whole file"], whole)
        same = all(torch.equal(a[key][0], b[key][0]) for a, b in zip(drawn, reference) for key in ("conditioning", "target"))
    print(f"{args.scenes} realistic 256x384 scenes (2, 3, 5 and 7 frames), 64-pixel crops, one thread; best of {args.repeats} "
          f"x {args.samples} samples; crops identical: {same}\n")
    print("| read | ms per sample | samples/s | vs whole file |\n|---|---|---|---|")
    for name, ms in best.items():
        print(f"| {name} | {ms:.2f} | {1e3 / ms:.0f} | {best['whole file'] / ms:.2f}x |")


if __name__ == "__main__":
    main()
