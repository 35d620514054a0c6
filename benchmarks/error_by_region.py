"""Where a method's error lies: mu-law squared error split by the reference frame's exposure and by motion.

Usage::

    python benchmarks/error_by_region.py data/heldout/Test results/flow-merge results/model
    python benchmarks/error_by_region.py data/heldout/Test results/flow-merge --split-moving

Each results folder is a ``diffhdr evaluate --out`` folder (it holds ``hdr/<scene>.hdr``). Pixels are split
into *moving* (covered by a moving object in any frame, for synthetic scenes whose ``scene.json`` describes
their objects: a disc of the object's radius, plus 10 %, around its centre at every frame's step), then by the
reference frame's brightest channel into *saturated* (at or above the alignment's ``WHITE_LEVEL``), *dark* (at
or below ``BLACK_LEVEL``) and the rest. The table gives each region's share of the pixels and its part of the
pooled mean squared mu-law error, in model units (the shortest exposure at EV 0, as ``diffhdr evaluate
--units model``; Kalantari's own units) with radiance clipped to [0, 1], so the parts add up to the total.
``--split-moving`` splits the moving pixels by the reference's exposure too (moving saturated, dark, rest).

A second table gives the room each region leaves: the mean per-scene PSNR-mu of the clipped radiance (within a
few hundredths of ``diffhdr evaluate --units model``'s) as it is, and as it would be were that region exact (a
scene with no error left counts at 100 dB). A model can at most close the gaps of the regions it may change; one
gated to the clipped reference (``--correction_gate``), the saturated ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from diffhdr_diffusers.alignment.exposure import BLACK_LEVEL, WHITE_LEVEL, brightest
from diffhdr_diffusers.evaluation import discover_scenes
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units
from diffhdr_diffusers.io import read_ldr, read_radiance, scan_scene
from diffhdr_diffusers.io.scene import scene_exposures

REGIONS = ("moving", "saturated", "dark", "rest")


def moving_mask(folder: Path, shape: tuple[int, int]) -> np.ndarray:
    """Pixels a moving object covers in any frame, from ``scene.json`` (all False without one)."""
    mask = np.zeros(shape, bool)
    path = folder / "scene.json"
    if not path.is_file():
        return mask
    params = json.loads(path.read_text())
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    steps = np.arange(params["num_frames"]) - params["reference_index"]
    for item in params.get("objects", []):
        velocity, acceleration = (np.asarray(item.get(key, (0.0, 0.0))) for key in ("velocity", "acceleration"))
        if not velocity.any() and not acceleration.any() and not item.get("elastic_px_per_step"):
            continue
        for step in steps:
            cx, cy = np.asarray(item["center"]) + step * velocity + 0.5 * step * step * acceleration
            radius = item["radius"] * 1.1 * max(1.0 + step * item.get("zoom", 0.0), 0.2)
            mask |= (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2
    return mask


SPLIT_REGIONS = ("moving saturated", "moving dark", "moving rest", "saturated", "dark", "rest")


def region_masks(reference: np.ndarray, moving: np.ndarray, split_moving: bool = False) -> list[np.ndarray]:
    level = brightest(reference)
    bright, black = level >= WHITE_LEVEL, level <= BLACK_LEVEL
    static = [bright & ~moving, black & ~moving, ~moving & ~bright & ~black]
    if split_moving:
        return [bright & moving, black & moving, moving & ~bright & ~black, *static]
    return [moving, *static]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--split-moving", action="store_true", help="split moving pixels by the reference's exposure")
    args = parser.parse_args()
    regions = SPLIT_REGIONS if args.split_moving else REGIONS
    scenes = [scan_scene(folder) for folder in discover_scenes(args.data_dir)]
    pixels = np.zeros(len(regions))
    errors = {results: np.zeros(len(regions)) for results in args.results}
    # per scene: its pixel count, and per results folder its squared error summed per region
    scene_pixels, scene_errors = [], {results: [] for results in args.results}
    for scene in scenes:
        images, exposures, _ = scene_exposures(scene)
        target = mu_law(np.clip(to_model_units(read_radiance(scene.ground_truth), exposures), 0, 1))
        masks = region_masks(read_ldr(images[len(images) // 2]), moving_mask(scene.folder, target.shape[:2]),
                             args.split_moving)
        pixels += [mask.sum() for mask in masks]
        scene_pixels.append(target.shape[0] * target.shape[1])
        for results, total in errors.items():
            radiance = read_radiance(results / "hdr" / f"{scene.folder.name}.hdr")
            prediction = mu_law(np.clip(to_model_units(radiance, exposures), 0, 1))
            error = ((prediction - target) ** 2).mean(axis=-1)
            parts = [error[mask].sum() for mask in masks]
            total += parts
            scene_errors[results].append(parts)
    print(f"{len(scenes)} scenes; pooled mean squared mu-law error (x 1e-5) by region of the reference frame\n")
    print("| results | " + " | ".join(f"{name} ({share:.1%} of pixels)" for name, share in zip(regions, pixels / pixels.sum()))
          + " | total |")
    print("|---" * (len(regions) + 2) + "|")
    for results, total in errors.items():
        parts = total / pixels.sum() * 1e5
        print(f"| {results} | " + " | ".join(f"{part:.2f}" for part in parts) + f" | {parts.sum():.2f} |")
    print("\nMean PSNR-mu (dB) as it is, and were one region exact\n")
    print("| results | as it is | " + " | ".join(f"{name} exact" for name in regions) + " |")
    print("|---" * (len(regions) + 2) + "|")
    for results, rows in scene_errors.items():
        as_is, exact = headroom(np.asarray(rows), np.asarray(scene_pixels))
        print(f"| {results} | {as_is:.2f} | " + " | ".join(f"{value:.2f}" for value in exact) + " |")


def headroom(errors: np.ndarray, pixels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean per-scene PSNR-mu from (scenes, regions) summed squared errors, as it is and with each region's error
    removed in turn (an exact scene counts at the 100 dB cap)."""
    def mean_psnr(sums: np.ndarray) -> float:
        mse = sums / pixels
        return float(np.mean(np.where(mse > 0, -10 * np.log10(np.maximum(mse, 1e-10)), 100.0)))

    total = errors.sum(axis=1)
    return mean_psnr(total), np.array([mean_psnr(total - errors[:, region]) for region in range(errors.shape[1])])


if __name__ == "__main__":
    main()
