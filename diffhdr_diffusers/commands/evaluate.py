"""``diffhdr evaluate``: score a model, a baseline or existing outputs on a Kalantari-layout folder.

Examples::

    diffhdr evaluate data/Test --method naive-merge --out results/naive
    diffhdr evaluate data/Test --model user/diffhdr-kalantari --steps 25 --ensemble 4 --out results/diffhdr
    diffhdr evaluate data/Test --predictions other_method/ --out results/other
    accelerate launch -m diffhdr_diffusers.commands.evaluate data/Test --model ckpt/ --out results/ddp

Also runnable as ``python -m diffhdr_diffusers.commands.evaluate``.
"""

from __future__ import annotations

import argparse
import sys

from ..evaluation.baselines import BASELINES
from ..cli import run_command


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", help="Kalantari-layout folder of scene folders (or one scene).")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", metavar="PATH_OR_REPO", help="DiffHDR pipeline folder or Hub repo id "
                        "(default: the bundled model when neither --method nor --predictions is given).")
    source.add_argument("--method", choices=sorted(BASELINES), help="run a classical baseline instead of a model.")
    source.add_argument("--predictions", metavar="DIR", help="score existing outputs DIR/<scene>.hdr or .exr.")
    parser.add_argument("--out", required=True, metavar="RESULTS_DIR", help="folder for outputs and tables.")
    parser.add_argument("--steps", type=int, help="denoising steps (default: the model's, 25 for the paper).")
    parser.add_argument("--patch-size", type=int, help="window size in pixels (default: the model's).")
    parser.add_argument("--stride", type=int, help="window stride in pixels (default: the model's).")
    parser.add_argument("--processing-resolution", type=int, metavar="PX",
                        help="longest side the model runs at, 0 for the input's size (default: the model's).")
    parser.add_argument("--scheduler", help="diffusers scheduler by name, e.g. ddim, dpm++, unipc, euler.")
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="average K samples and write a per-pixel uncertainty map (default 1).")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sample (sample k uses seed + k).")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N scenes.")
    parser.add_argument("--peak-luminance", type=float, default=1000.0, metavar="CD_M2",
                        help="display peak for PU21/ColorVideoVDP in cd/m^2 (default 1000).")
    parser.add_argument("--reference-percentile", type=float, default=99.9, metavar="P",
                        help="the ground truth's P-th percentile luminance is shown at the peak (default 99.9); "
                        "0 means radiance 1.0 is shown at the peak.")
    parser.add_argument("--cvvdp", action="store_true", help="also compute ColorVideoVDP (needs `pip install cvvdp`).")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in RESULTS_DIR.")
    parser.add_argument("--shard-timeout", type=float, default=3600.0, metavar="S",
                        help="seconds rank 0 waits for other processes' results (default 3600).")


def _model_only(args: argparse.Namespace) -> None:
    from ..errors import InputError

    used = [flag for flag, value in (("--steps", args.steps), ("--patch-size", args.patch_size),
                                     ("--stride", args.stride), ("--scheduler", args.scheduler),
                                     ("--processing-resolution", args.processing_resolution)) if value is not None]
    if args.ensemble != 1:
        used.append("--ensemble")
    if used:
        raise InputError(f"{', '.join(used)} only apply to a DiffHDR model; drop them with --method/--predictions.")


def run(args: argparse.Namespace) -> None:
    """Build the predictor the arguments ask for and evaluate it."""
    from ..evaluation import (
        BaselinePredictor,
        PredictionsPredictor,
        load_pipeline_predictor,
        process_group,
        run_evaluation,
    )
    from ..metrics import DisplayAssumptions

    display = DisplayAssumptions(args.peak_luminance, args.reference_percentile or None)
    group = process_group()
    if args.method:
        _model_only(args)
        predictor = BaselinePredictor(args.method)
    elif args.predictions:
        _model_only(args)
        predictor = PredictionsPredictor(args.predictions)
    else:
        predictor = load_pipeline_predictor(args.model, args.scheduler, device=group.device,
                                            num_inference_steps=args.steps, patch_size=args.patch_size,
                                            stride=args.stride, ensemble=args.ensemble, seed=args.seed,
                                            processing_resolution=args.processing_resolution)
    run_evaluation(args.data_dir, args.out, predictor, display=display, limit=args.limit, overwrite=args.overwrite,
                   cvvdp=args.cvvdp, group=group, shard_timeout=args.shard_timeout)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``diffhdr evaluate``."""
    parser = subparsers.add_parser("evaluate", help="score a model or baseline with the Kalantari protocol.",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m diffhdr_diffusers.commands.evaluate`` (and ``accelerate launch -m``)."""
    parser = argparse.ArgumentParser(prog="diffhdr evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run_command("diffhdr evaluate", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
