"""Render a tone mapping figure: reference frame | Mertens exposure fusion of the frames | ours, for one bracket.

    python docs/make_tonemap_figure.py BRACKET_DIR RADIANCE [--out docs/tonemap_<name>.jpg]
        [--operator natural] [--exposure 0] [--saturation 1] [--detail 1] [--panel-width 640]

``BRACKET_DIR`` is a scene folder (frames plus exposures, as ``diffhdr merge`` reads it) and
``RADIANCE`` the merged radiance of that bracket (``.hdr``/``.exr``, e.g. ``diffhdr merge BRACKET_DIR
-o merged.exr``). The three panels, left to right:

1. the reference (middle) frame as the camera wrote it;
2. OpenCV's Mertens exposure fusion (``cv2.createMergeMertens``) of the frames as they are: the look
   people compare with, which ghosts where things moved;
3. ``diffhdr_diffusers.tonemapping.tonemap`` of the radiance (``--operator``, default natural), which
   cannot ghost more than the radiance does.

Under each label, the share of pixels within 2 % of black or white. The figure shows whatever radiance
it is given, so only commit one made from a radiance you trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from diffhdr_diffusers.io import load_bracket, read_radiance
from diffhdr_diffusers.io.photo import write_tonemapped
from diffhdr_diffusers.tonemapping import OPERATORS, to_bits, tonemap, tonemap_settings


def mertens(frames: list[np.ndarray]) -> np.ndarray:
    """OpenCV's Mertens fusion of camera-encoded float RGB frames (8-bit in, as OpenCV expects), RGB in [0, 1]."""
    fused = cv2.createMergeMertens().process([np.ascontiguousarray(to_bits(frame)[..., ::-1]) for frame in frames])
    return np.clip(fused[..., ::-1], 0.0, 1.0)


def panel(image: np.ndarray, label: str, width: int) -> np.ndarray:
    """A labelled panel ``width`` pixels wide of an sRGB float image, as float in [0, 1]."""
    clipped = np.all(image <= 0.02, axis=-1).mean() + np.all(image >= 0.98, axis=-1).mean()
    height = round(image.shape[0] * width / image.shape[1])
    shown = to_bits(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    for line, text in enumerate((label, f"{100 * clipped:.1f} % near black/white")):
        (text_width, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
        top = 6 + 24 * line
        shown[top:top + text_height + 10, 4:text_width + 14] //= 3  # a dark box keeps the label legible
        cv2.putText(shown, text, (9, top + text_height + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return shown.astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bracket", type=Path, help="scene folder of the bracket's frames")
    parser.add_argument("radiance", type=Path, help="the merged radiance of that bracket (.hdr or .exr)")
    parser.add_argument("--out", type=Path, help="output .jpg/.png (default docs/tonemap_<bracket>.jpg)")
    parser.add_argument("--operator", default="natural", choices=list(OPERATORS))
    parser.add_argument("--exposure", type=float, default=0.0)
    parser.add_argument("--saturation", type=float, default=1.0)
    parser.add_argument("--detail", type=float, default=1.0)
    parser.add_argument("--panel-width", type=int, default=640)
    args = parser.parse_args()

    bracket = load_bracket(args.bracket)
    radiance = read_radiance(args.radiance)
    reference = bracket.images[len(bracket.images) // 2]
    if radiance.shape != reference.shape:
        raise SystemExit(f"{args.radiance}: size {radiance.shape[1]}x{radiance.shape[0]} is not the bracket's "
                         f"{reference.shape[1]}x{reference.shape[0]}; give the radiance merged from {args.bracket}.")
    settings = tonemap_settings(args.operator, args.exposure, args.saturation, args.detail)
    panels = [
        panel(reference, "reference frame", args.panel_width),
        panel(mertens(bracket.images), "Mertens fusion of the frames", args.panel_width),
        panel(tonemap(radiance, **settings), f"ours: {args.operator} of the radiance", args.panel_width),
    ]
    out = args.out or Path(__file__).resolve().parent / f"tonemap_{bracket.name}.jpg"
    write_tonemapped(out, np.concatenate(panels, axis=1), settings, quality=90,
                     reference=bracket.paths[len(bracket.paths) // 2], overwrite=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
