"""``diffhdr synth``: write synthetic Kalantari-layout scenes (brackets with ground truth)."""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections import Counter

import numpy as np

from ..errors import InputError


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HEIGHTxWIDTH (e.g. 256x384)") from None
    return height, width


def _ev_sets(text: str) -> list[tuple[float, ...]]:
    try:
        return [tuple(float(ev) for ev in group.split(",")) for group in text.replace(" ", ";").split(";") if group]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of EV sets (e.g. '0,2,4;0,3,6;-2,0,2')") from None


def _strength(text: str) -> tuple[float, float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH or one value in [0, 1] (e.g. 0,1 or 0.8,1)")
    return (values[0], values[-1])


# Arguments that start with "-" and a digit are values (an EV list such as "-2,0,2;0,2,4"), not options, as
# Python 3.13's argparse already treats them; the synth command has no option that looks like a number.
NEGATIVE_VALUE = re.compile(r"-\.?\d")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="write synthetic exposure brackets with ground truth (Kalantari layout)",
        description=(
            "Synthesise scenes in the Kalantari layout (input_1..3.tif 16-bit, exposure.txt, HDRImg.hdr, "
            "scene.json): real or procedural radiance, 1-5 moving and deforming objects, hand-held camera "
            "motion (rotation, shift, perspective) scaled by a per-scene motion strength, gamma-2.2 camera "
            "with Poisson-Gaussian noise. Load them with diffhdr_diffusers.data.load_kalantari(OUT)."
        ),
    )
    if hasattr(parser, "_negative_number_matcher"):
        parser._negative_number_matcher = NEGATIVE_VALUE  # --ev-sets -2,0,2 works as typed
    parser.add_argument("--out", required=True, help="output folder (scene folders 00000, 00001, ... go inside)")
    parser.add_argument("--scenes", type=int, default=100, help="number of scenes (default 100)")
    parser.add_argument("--size", type=_size, default=(256, 384), help="HEIGHTxWIDTH of every scene (default 256x384)")
    parser.add_argument(
        "--seed", type=int, default=0, help="base seed; scene i depends only on the seed and i (default 0)"
    )
    parser.add_argument(
        "--radiance-dir",
        action="append",
        default=None,
        help="folder of real .hdr/.exr radiance maps to crop backgrounds from; repeat for several folders "
        "(default: procedural only)",
    )
    parser.add_argument(
        "--split",
        choices=("train", "heldout", "all"),
        default="all",
        help="use only the train or the held-out radiance maps (diffhdr_diffusers.data.splits), or all "
        "(default all); heldout defaults --procedural-fraction to 0",
    )
    parser.add_argument(
        "--ev-sets",
        type=_ev_sets,
        action="extend",
        default=None,
        metavar="EVS",
        help="EV sets to draw from, comma-separated short to long, sets separated by ';' or repeated flags; "
        "e.g. --ev-sets '-2,0,2;0,2,4' (default: '0,2,4;0,3,6;-2,0,2')",
    )
    parser.add_argument(
        "--procedural-fraction",
        type=float,
        default=None,
        help="share of procedural backgrounds with --radiance-dir (default 0.5; 0 with --split heldout)",
    )
    parser.add_argument(
        "--motion-strength",
        type=_strength,
        default=(0.0, 1.0),
        metavar="LOW,HIGH",
        help="range of the per-scene motion strength, 0 (small jitter, slow objects) to 1 (hard hand-held "
        "motion); one value fixes it (default 0,1)",
    )
    parser.add_argument("--static", action="store_true", help="no camera motion and no object motion")
    parser.add_argument(
        "--no-noise", action="store_true", help="no sensor noise (clipping and 16-bit quantisation remain)"
    )
    parser.add_argument(
        "--workers", type=int, default=min(os.cpu_count() or 1, 4), help="processes to use (default: CPUs, at most 4)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing scene folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.synth import DEFAULT_EV_SETS, synthesize_scenes

    if args.workers < 1:
        raise InputError(f"--workers {args.workers}: give at least 1.")
    start = time.perf_counter()
    folders = synthesize_scenes(
        args.out,
        args.scenes,
        size=args.size,
        seed=args.seed,
        radiance_dir=args.radiance_dir,
        split=args.split,
        motion_strength=args.motion_strength,
        ev_sets=args.ev_sets or DEFAULT_EV_SETS,
        procedural_fraction=args.procedural_fraction,
        motion=not args.static,
        noise=not args.no_noise,
        num_workers=args.workers,
        overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - start
    params = [json.loads((folder / "scene.json").read_text()) for folder in folders]
    sources = Counter(p["source"]["kind"] for p in params)
    maps = Counter(p["source"]["file"] for p in params if p["source"]["kind"] == "real")
    splits = Counter(p["source"]["split"] for p in params if p["source"]["kind"] == "real")
    strengths = [p["motion_strength"] for p in params]
    ev_sets = Counter(",".join(f"{ev:g}" for ev in p["exposures"]) for p in params)
    saturation = np.mean([[frame["saturated_fraction"] for frame in p["frames"]] for p in params], axis=0)
    stops = [p["dynamic_range_stops"] for p in params]
    height, width = args.size
    print(
        f"wrote {len(folders)} scenes of {height}x{width} to {args.out} in {elapsed:.1f} s ({args.workers} worker(s))"
    )
    print("  backgrounds: " + ", ".join(f"{count} {kind}" for kind, count in sorted(sources.items())))
    if maps:
        print(
            f"  radiance maps: {len(maps)} distinct ("
            + ", ".join(f"{count} {split}" for split, count in sorted(splits.items()))
            + " scenes)"
        )
    if not args.static:
        print(f"  motion strength: {np.median(strengths):.2f} median ({min(strengths):.2f} to {max(strengths):.2f})")
    print("  EV sets: " + ", ".join(f"({evs}) x{count}" for evs, count in sorted(ev_sets.items())))
    print("  mean saturated fraction, short to long: " + ", ".join(f"{value:.1%}" for value in saturation))
    print(f"  ground-truth dynamic range: {np.median(stops):.1f} stops median ({min(stops):.1f} to {max(stops):.1f})")
    print(f"  load with: diffhdr_diffusers.data.load_kalantari({str(args.out)!r})")
