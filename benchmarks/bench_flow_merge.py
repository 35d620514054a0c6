"""Benchmark flow-merge against the reference frame and the naive merge on synthetic moving brackets.

    python benchmarks/bench_flow_merge.py --scenes 12            # quality table + 12 MP timing
    python benchmarks/bench_flow_merge.py --scenes 12 --no-12mp  # quality only

Scenes are 256x384, EV sets (0,2,4), (0,3,6), (-2,0,2), backgrounds cropped from
/work/shared/data/real_hdr_more when present (else procedural). Scores are the Kalantari protocol in
model units (shortest exposure at EV 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from diffhdr_diffusers.data.synth import DEFAULT_EV_SETS, find_radiance_maps, synthesize_scene
from diffhdr_diffusers.methods.classical import naive_merge, reference_merge
from diffhdr_diffusers.hdr_domain import to_model_units
from diffhdr_diffusers.merging import flow_merge
from diffhdr_diffusers.metrics import compute_metrics

METHODS = {
    "reference-only": lambda images, evs: reference_merge(images, evs),
    "naive-merge": lambda images, evs: naive_merge(images, evs),
    "flow-merge": lambda images, evs: flow_merge(images, evs).radiance,
    "flow-merge, no homography": lambda images, evs: flow_merge(images, evs, homography=False).radiance,
    "flow-merge, no saturation rule": lambda images, evs: flow_merge(images, evs, saturation_rule=False).radiance,
}


def quality(num_scenes: int, seed: int, radiance_dir: Path) -> None:
    maps = [str(path) for path in find_radiance_maps(radiance_dir)] if radiance_dir.is_dir() else []
    print(f"{num_scenes} scenes 256x384, seed {seed}, EV sets {DEFAULT_EV_SETS}, "
          f"{'real maps from ' + str(radiance_dir) if maps else 'procedural backgrounds'}")
    scores = {name: [] for name in METHODS}
    seconds = {name: 0.0 for name in METHODS}
    for index in range(num_scenes):
        scene = synthesize_scene(seed, index, size=(256, 384), ev_sets=DEFAULT_EV_SETS, radiance_maps=maps)
        target = to_model_units(scene.radiance, scene.exposures)
        for name, method in METHODS.items():
            start = time.perf_counter()
            radiance = method(scene.images, scene.exposures)
            seconds[name] += time.perf_counter() - start
            metrics = compute_metrics(to_model_units(radiance, scene.exposures), target, perceptual=False)
            scores[name].append((metrics["psnr_mu"], metrics["psnr_l"]))
    print(f"| method | PSNR-mu | PSNR-l | s/scene |\n|---|---|---|---|")
    for name in METHODS:
        psnr_mu, psnr_l = np.mean(scores[name], axis=0)
        print(f"| {name} | {psnr_mu:.2f} | {psnr_l:.2f} | {seconds[name] / num_scenes:.3f} |")


def large_bracket_timing(seed: int) -> None:
    """Time flow-merge on a synthesised 4000x3000 bracket (an upscaled 750x1000 synthetic scene)."""
    import cv2

    scene = synthesize_scene(seed, 0, size=(750, 1000), ev_sets=[(-2.0, 0.0, 2.0)])
    images = [cv2.resize(image, (4000, 3000), interpolation=cv2.INTER_CUBIC).clip(0, 1) for image in scene.images]
    start = time.perf_counter()
    result = flow_merge(images, scene.exposures)
    elapsed = time.perf_counter() - start
    megapixels = 4000 * 3000 / 1e6
    print(f"12 MP bracket (4000x3000, 3 frames, flow at {result.alignment.settings['flow_size']}): "
          f"{elapsed:.2f} s, {elapsed / megapixels:.3f} s/MP")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--radiance-dir", type=Path, default=Path("/work/shared/data/real_hdr_more"))
    parser.add_argument("--no-12mp", action="store_true", help="skip the 12 MP timing")
    args = parser.parse_args()
    quality(args.scenes, args.seed, args.radiance_dir)
    if not args.no_12mp:
        large_bracket_timing(args.seed)


if __name__ == "__main__":
    main()
