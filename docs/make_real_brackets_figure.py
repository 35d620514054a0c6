"""Render docs/real_brackets.jpg: real handheld brackets merged with the camera response estimated (auto).

    python docs/make_real_brackets_figure.py [--model PATH] [--max-side 768] [--data ../shared/data/real_brackets]

The brackets are the project's shared test data (third-party, not redistributed; only this figure is). Each
bracket is first resized so that its longer side is ``--max-side`` pixels (0 keeps the full size; 8-bit frames
are rounded back to 8-bit codes, as an exported smaller file would be), then merged
through :mod:`diffhdr_diffusers.methods` (``merge_bracket``, ``response="auto"``). Each row is one bracket:

1. the reference frame as the camera wrote it;
2. flow-merge, tone mapped (``natural``);
3. the bundled model, tone mapped (``natural``);
4. flow-merge's radiance shown 3 stops darker through a plain sRGB curve (no tone mapping): what lies above
   the reference's clip level, such as a window view, is recovered radiance, not a tone-mapping effect.

With ``--crops PATH`` it also renders 1:1 crops where the model and flow-merge differ most: each bracket is
merged again at its full size, and the ``--crop-size`` square with the largest mean absolute difference of
their mu-law radiance (model units) is shown as the reference frame, flow-merge and the model (the whole image
tone mapped by ``natural``, then cropped) and the difference (|mu-law difference| x 10, white = 0.1).

Prints each method's seconds and how many frames it did not use.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from diffhdr_diffusers.camera import _is_8bit as is_8bit
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units
from diffhdr_diffusers.io import atomic_path, load_bracket
from diffhdr_diffusers.methods import load_method, load_pipeline
from diffhdr_diffusers.tonemapping import to_bits, tonemap

BRACKETS = ("horse", "sculpture_garden", "pingpong")
PANEL_WIDTH = 400


def panel(image: np.ndarray, label: str) -> np.ndarray:
    image = to_bits(image)
    height = round(image.shape[0] * PANEL_WIDTH / image.shape[1])
    image = cv2.resize(image, (PANEL_WIDTH, height), interpolation=cv2.INTER_AREA)
    (width, height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    image[:height + 14, :width + 14] //= 3  # a dark band under the label
    cv2.putText(image, label, (7, height + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def write_jpeg(path: str, figure: np.ndarray) -> None:
    with atomic_path(Path(path), overwrite=True) as temporary:
        cv2.imwrite(str(temporary), np.ascontiguousarray(figure[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {path}")


def crop_row(name: str, bracket, merged: dict, size: int) -> np.ndarray:
    """The ``size`` square where the model's mu-law radiance differs most from flow-merge's, at 1:1."""
    exposures = merged["flow-merge"].camera.exposures
    compressed = {label: mu_law(np.clip(to_model_units(result.radiance, exposures), 0, 1)) for label, result in merged.items()}
    difference = np.abs(compressed["model"] - compressed["flow-merge"]).mean(axis=-1)
    height, width = difference.shape
    size = min(size, height, width)
    mean = cv2.boxFilter(difference, -1, (size, size), normalize=True, borderType=cv2.BORDER_CONSTANT)
    half = size // 2
    inner = mean[half:height - size + half + 1, half:width - size + half + 1]
    top, left = np.unravel_index(np.argmax(inner), inner.shape)
    window = (slice(top, top + size), slice(left, left + size))
    reference = bracket.images[merged["flow-merge"].reference_index]
    shown = [(reference, "reference"), (tonemap(merged["flow-merge"].radiance), "flow-merge"),
             (tonemap(merged["model"].radiance), "model"),
             (np.repeat(np.clip(difference * 10, 0, 1)[..., None], 3, axis=-1), "|difference| x 10")]
    panels = []
    for image, label in shown:
        crop = to_bits(image[window]).copy()
        cv2.putText(crop, label, (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(crop)
    print(f"{name}: largest difference at x={left}, y={top} ({size} px): mean |mu-law difference| "
          f"{inner[top, left]:.4f} (whole image {difference.mean():.4f})")
    return np.concatenate(panels, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="pipeline folder (default: the bundled model)")
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / "../shared/data/real_brackets"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "real_brackets.jpg"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=768, help="resize each bracket to this longer side first")
    parser.add_argument("--crops", default=None, help="also write the 1:1 crops where model and flow-merge differ most")
    parser.add_argument("--crop-size", type=int, default=256)
    args = parser.parse_args()

    flow = load_method("flow-merge", response="auto")
    model = load_method(load_pipeline(args.model, progress=False), response="auto", seed=args.seed)
    rows, crops = [], []
    for name in BRACKETS:
        bracket = load_bracket(Path(args.data) / name)
        if args.crops:
            full = {label: method.merge_bracket(bracket) for label, method in (("flow-merge", flow), ("model", model))}
            crops.append(crop_row(name, bracket, full, args.crop_size))
        height, width = bracket.images[0].shape[:2]
        scale = args.max_side / max(height, width) if args.max_side else 1.0
        if scale < 1:
            size = (round(width * scale), round(height * scale))
            eight_bit = all(is_8bit(image) for image in bracket.images)
            bracket.images = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in bracket.images]
            if eight_bit:  # back to 8-bit codes, as a resized 8-bit export has (a camera's crushed toe stays visible)
                bracket.images = [(np.round(image * 255) / 255).astype(np.float32) for image in bracket.images]
        merged = {label: method.merge_bracket(bracket) for label, method in (("flow-merge", flow), ("model", model))}
        reference = bracket.images[merged["flow-merge"].reference_index]
        darker = merged["flow-merge"].radiance * 2.0 ** (merged["flow-merge"].camera.exposures[1] - 3)
        panels = [panel(reference, f"{name}: reference frame"),
                  panel(tonemap(merged["flow-merge"].radiance), "flow-merge (auto response)"),
                  panel(tonemap(merged["model"].radiance), "bundled model (auto response)"),
                  panel(tonemap(darker, "none"), "flow-merge radiance, 3 stops darker")]
        print(f"{name} ({bracket.images[0].shape[1]}x{bracket.images[0].shape[0]}): "
              + ", ".join(f"{label} {result.seconds:.1f} s, {len(result.rejected)} frames not used"
                          for label, result in merged.items()))
        rows.append(np.concatenate(panels, axis=1))
    write_jpeg(args.out, np.concatenate(rows, axis=0))
    if crops:
        write_jpeg(args.crops, np.concatenate(crops, axis=0))


if __name__ == "__main__":
    main()
