"""Where a method's error lies: mu-law squared error split by the reference frame's exposure.

Usage::

    python benchmarks/error_by_region.py data/heldout/Test results/flow-merge results/model

Each results folder is a ``diffhdr evaluate --out`` folder (it holds ``hdr/<scene>.hdr``). Pixels are
split by the reference (middle) frame's brightest channel into *saturated* (at or above the alignment's
``WHITE_LEVEL``), *dark* (at or below ``BLACK_LEVEL``) and the rest; the table gives each region's share of the pixels and its part of the pooled mean squared
mu-law error (radiance clipped to [0, 1] first), so the parts add up to the total.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from diffhdr_diffusers.alignment.exposure import BLACK_LEVEL, WHITE_LEVEL, brightest
from diffhdr_diffusers.evaluation import discover_scenes
from diffhdr_diffusers.hdr_domain import mu_law
from diffhdr_diffusers.io import read_ldr, read_radiance, scan_scene

REGIONS = ("saturated", "dark", "rest")


def region_masks(reference: np.ndarray) -> list[np.ndarray]:
    level = brightest(reference)
    saturated, dark = level >= WHITE_LEVEL, level <= BLACK_LEVEL
    return [saturated, dark, ~saturated & ~dark]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    scenes = [scan_scene(folder) for folder in discover_scenes(args.data_dir)]
    pixels = np.zeros(len(REGIONS))
    errors = {results: np.zeros(len(REGIONS)) for results in args.results}
    for scene in scenes:
        target = mu_law(np.clip(read_radiance(scene.ground_truth), 0, 1))
        masks = region_masks(read_ldr(scene.images[len(scene.images) // 2]))
        pixels += [mask.sum() for mask in masks]
        for results, total in errors.items():
            prediction = mu_law(np.clip(read_radiance(results / "hdr" / f"{scene.folder.name}.hdr"), 0, 1))
            error = ((prediction - target) ** 2).mean(axis=-1)
            total += [error[mask].sum() for mask in masks]
    print(f"{len(scenes)} scenes; pooled mean squared mu-law error (x 1e-5) by region of the reference frame\n")
    print("| results | " + " | ".join(f"{name} ({share:.1%} of pixels)" for name, share in zip(REGIONS, pixels / pixels.sum()))
          + " | total |")
    print("|---" * (len(REGIONS) + 2) + "|")
    for results, total in errors.items():
        parts = total / pixels.sum() * 1e5
        print(f"| {results} | " + " | ".join(f"{part:.2f}" for part in parts) + f" | {parts.sum():.2f} |")


if __name__ == "__main__":
    main()
