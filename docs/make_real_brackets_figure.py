"""Render docs/real_brackets.jpg: real handheld brackets merged three ways (reference frame, flow-merge, model).

    python docs/make_real_brackets_figure.py [--model PATH] [--max-side 768] [--data ../shared/data/real_brackets]

The brackets are the project's shared test data (third-party, not redistributed; only this figure is). Each
bracket is first resized so that its longer side is ``--max-side`` pixels (the panels are 480 wide anyway;
0 keeps the full size), then merged three ways. Each row is one bracket; every panel is tonemapped by
``diffhdr_diffusers.io.tonemap_preview`` (its own automatic exposure). Prints the seconds each method took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.methods.classical import reference_merge
from diffhdr_diffusers.io import atomic_path, load_bracket, tonemap_preview
from diffhdr_diffusers.merging import flow_merge

BRACKETS = ("horse", "sculpture_garden", "pingpong")
PANEL_WIDTH = 480


def panel(radiance: np.ndarray, label: str) -> np.ndarray:
    image = tonemap_preview(radiance)
    height = round(image.shape[0] * PANEL_WIDTH / image.shape[1])
    image = cv2.resize(image, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA)
    cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the bundled model)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data/real_brackets"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "real_brackets.jpg"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=768, help="resize each bracket to this longer side first")
    args = parser.parse_args()

    pipe = DiffHDRPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for name in BRACKETS:
        bracket = load_bracket(Path(args.data) / name)
        height, width = bracket.images[0].shape[:2]
        scale = args.max_side / max(height, width) if args.max_side else 1.0
        if scale < 1:
            size = (round(width * scale), round(height * scale))
            bracket.images = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in bracket.images]
        timings, panels = [], []
        for label, merge in (
            ("reference frame", lambda: reference_merge(bracket.images, bracket.exposures)),
            ("flow-merge", lambda: flow_merge(bracket.images, bracket.exposures).radiance),
            ("bundled model", lambda: pipe(bracket.images, bracket.exposures,
                                           generator=torch.Generator().manual_seed(args.seed)).hdr[0]),
        ):
            start = time.perf_counter()
            radiance = merge()
            timings.append(f"{label} {time.perf_counter() - start:.1f} s")
            panels.append(panel(radiance, f"{name}: {label}"))
        print(f"{name} ({bracket.images[0].shape[1]}x{bracket.images[0].shape[0]}): {', '.join(timings)}")
        rows.append(np.concatenate(panels, axis=1))
    figure = np.concatenate(rows, axis=0)
    with atomic_path(Path(args.out), overwrite=True) as temporary:
        cv2.imwrite(str(temporary), np.ascontiguousarray(figure[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
