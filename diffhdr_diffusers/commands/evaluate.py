"""``diffhdr evaluate``: score a model, a baseline or existing outputs on a Kalantari-layout folder.

Examples::

    diffhdr evaluate data/Test --method naive-merge --out results/naive
    diffhdr evaluate data/Test --model user/diffhdr-kalantari --steps 25 --ensemble 4 --out results/diffhdr
    diffhdr evaluate data/Test --predictions other_method/ --out results/other
    diffhdr evaluate realistic_set/ --method flow-merge --response true --out results/flow   # scene.json's response

Scores are computed on the radiance as stored (``--units model`` rescales to model units first), and the
camera response defaults to gamma:2.2 (Kalantari's camera), so the numbers match peers' scripts.
    accelerate launch -m diffhdr_diffusers.commands.evaluate data/Test --model ckpt/ --out results/ddp

Also runnable as ``python -m diffhdr_diffusers.commands.evaluate``.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import OneLineParser, run_command
from .options import SCENE_RESPONSE, add_method_arguments, check_model_only, method_from_args


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", help="Kalantari-layout folder of scene folders (or one scene).")
    parser.add_argument("--predictions", metavar="DIR",
                        help="score existing outputs DIR/<scene>.hdr or .exr instead of merging.")
    parser.add_argument("--out", required=True, metavar="RESULTS_DIR", help="folder for outputs and tables.")
    parser.add_argument("--units", choices=("stored", "model"), default="stored",
                        help="score the radiance as stored (default, as peers' scripts do), or in model units (both "
                             "rescaled so that the shortest exposure is at EV 0).")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N scenes.")
    parser.add_argument("--peak-luminance", type=float, default=1000.0, metavar="CD_M2",
                        help="display peak for PU21/ColorVideoVDP in cd/m^2 (default 1000).")
    parser.add_argument("--reference-percentile", type=float, default=99.9, metavar="P",
                        help="the ground truth's P-th percentile luminance is shown at the peak (default 99.9); "
                        "0 means radiance 1.0 is shown at the peak.")
    parser.add_argument("--cvvdp", action="store_true", help="also compute ColorVideoVDP (needs `pip install cvvdp`).")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in RESULTS_DIR.")
    parser.add_argument("--shard-timeout", type=float, default=3600.0, metavar="S",
                        help="without a launcher: seconds rank 0 waits for other processes' results (default 3600).")
    add_method_arguments(parser, "gamma:2.2",
                         f"Default here: gamma:2.2, the camera of Kalantari-style data, so scores match peers'; "
                         f"{SCENE_RESPONSE} uses the response each scene's scene.json records.")


def run(args: argparse.Namespace) -> None:
    """Build the predictor the arguments ask for and evaluate it."""
    from ..devices import resolve_device
    from ..errors import InputError
    from ..evaluation import MethodPredictor, PredictionsPredictor, run_evaluation
    from ..metrics import DisplayAssumptions
    from ..sharding import process_group

    display = DisplayAssumptions(args.peak_luminance, args.reference_percentile or None)
    group = process_group()
    if args.predictions:
        if args.method != "diffhdr":
            raise InputError("--predictions scores written outputs; drop --method, or drop --predictions.")
        check_model_only(args, instead="--predictions")
        predictor = PredictionsPredictor(args.predictions)
    else:
        device = None
        if args.method == "diffhdr":
            device = resolve_device(args.device if args.device or group.device is None else str(group.device))
        method = method_from_args(args, device, progress=False)
        predictor = MethodPredictor(method, "scene" if args.response == SCENE_RESPONSE else args.response,
                                    args.reference_index)
    run_evaluation(args.data_dir, args.out, predictor, display=display, limit=args.limit, overwrite=args.overwrite,
                   cvvdp=args.cvvdp, group=group, shard_timeout=args.shard_timeout, units=args.units)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``diffhdr evaluate``."""
    parser = subparsers.add_parser("evaluate", help="score a model or baseline with the Kalantari protocol.",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m diffhdr_diffusers.commands.evaluate`` (and ``accelerate launch -m``)."""
    parser = OneLineParser(prog="diffhdr evaluate", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command("diffhdr evaluate", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
