"""``diffhdr synth``: write synthetic Kalantari-layout scenes (brackets with ground truth)."""

from __future__ import annotations

import argparse
import dataclasses
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


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


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
            "Synthesise scenes in the Kalantari layout (input_1..N frames, exposure.txt, HDRImg.hdr, "
            "scene.json): real or procedural radiance, 1-5 moving and deforming objects, hand-held camera "
            "motion (rotation, shift, perspective) scaled by a per-scene motion strength, Poisson-Gaussian "
            "noise. The default camera is Kalantari's: gamma 2.2, 16-bit TIFF, 3 frames. --camera realistic "
            "draws a camera per scene: a tone curve (gamma2.2, srgb, filmic, log_shoulder), 16-bit TIFF, 8-bit "
            "PNG or JPEG (quality 85-95, with EXIF), true exposures and white balance a few percent off the "
            "nominal ones, motion blur in frames longer than the reference; 2 to 9 frames per --ev-sets. "
            "scene.json records the camera. Load 3-frame sets with diffhdr_diffusers.data.load_kalantari(OUT)."
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
        "2 to 9 EVs each, e.g. --ev-sets '-2,0,2;-4,-2,0,2,4' (default: '0,2,4;0,3,6;-2,0,2'); the ground truth "
        "is frame N//2 (from 0): the middle one, or for an even N the longer of the two middle frames",
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
    parser.add_argument(
        "--camera",
        choices=("kalantari", "realistic"),
        default="kalantari",
        help="camera mix: kalantari (gamma 2.2, 16-bit TIFF, exact EVs; the default) or realistic (every curve, "
        "TIFF/PNG/JPEG, 3%% exposure and white-balance errors, motion blur up to 0.5 frame steps); the flags "
        "below override parts of it",
    )
    parser.add_argument("--curves", type=_names, default=None, metavar="NAMES",
                        help="tone curves to draw from, comma-separated: gamma2.2, srgb, filmic, log_shoulder")
    parser.add_argument("--formats", type=_names, default=None, metavar="NAMES",
                        help="file formats to draw from, comma-separated: tif (16-bit), png (8-bit), "
                        "jpg (8-bit, quality 85-95, EXIF), dng (linear RGGB mosaic; needs even --size)")
    parser.add_argument("--exposure-error", type=float, default=None, metavar="FRACTION",
                        help="largest relative error of a frame's true exposure against its nominal EV (e.g. 0.03)")
    parser.add_argument("--white-balance-error", type=float, default=None, metavar="FRACTION",
                        help="largest relative error of a frame's channel gains against the reference's (e.g. 0.03)")
    parser.add_argument("--motion-blur", type=float, default=None, metavar="STEPS",
                        help="largest blur of the longest frame, in frame steps of motion (e.g. 0.5; 0: sharp)")
    parser.add_argument("--balanced", action="store_true",
                        help="cycle curves, EV sets and formats by scene index so every combination appears "
                        "equally often (curves x EV sets x formats scenes hold each once)")
    parser.add_argument("--static", action="store_true", help="no camera motion and no object motion")
    parser.add_argument(
        "--no-noise", action="store_true", help="no sensor noise (clipping and quantisation remain)"
    )
    parser.add_argument(
        "--workers", type=int, default=min(os.cpu_count() or 1, 4), help="processes to use (default: CPUs, at most 4)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing scene folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..data.camera import CAMERA_MIXES
    from ..data.synth import DEFAULT_EV_SETS, synthesize_scenes

    if args.workers < 1:
        raise InputError(f"--workers {args.workers}: give at least 1.")
    overrides = {"curves": args.curves, "formats": args.formats, "exposure_error": args.exposure_error,
                 "white_balance_error": args.white_balance_error, "motion_blur": args.motion_blur}
    camera_mix = dataclasses.replace(CAMERA_MIXES[args.camera],
                                     **{key: value for key, value in overrides.items() if value is not None})
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
        camera_mix=camera_mix,
        balanced=args.balanced,
    )
    elapsed = time.perf_counter() - start
    params = [json.loads((folder / "scene.json").read_text()) for folder in folders]
    sources = Counter(p["source"]["kind"] for p in params)
    maps = Counter(p["source"]["file"] for p in params if p["source"]["kind"] == "real")
    splits = Counter(p["source"]["split"] for p in params if p["source"]["kind"] == "real")
    strengths = [p["motion_strength"] for p in params]
    ev_sets = Counter(",".join(f"{ev:g}" for ev in p["exposures"]) for p in params)
    cameras = Counter(f"{p['camera']['curve']} {p['camera']['format']}" for p in params)
    frame_counts = Counter(p["num_frames"] for p in params)
    short, long = (np.mean([p["frames"][end]["saturated_fraction"] for p in params]) for end in (0, -1))
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
    print("  cameras: " + ", ".join(f"{name} x{count}" for name, count in sorted(cameras.items())))
    print("  frames per bracket: " + ", ".join(f"{n} x{count}" for n, count in sorted(frame_counts.items())))
    print(f"  mean saturated fraction: {short:.1%} in the shortest frame, {long:.1%} in the longest")
    print(f"  ground-truth dynamic range: {np.median(stops):.1f} stops median ({min(stops):.1f} to {max(stops):.1f})")
    if set(frame_counts) == {3} and not any(p["camera"]["format"] == "dng" for p in params):
        print(f"  load with: diffhdr_diffusers.data.load_kalantari({str(args.out)!r})")
