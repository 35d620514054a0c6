"""``diffhdr convert-original``: turn the authors' released checkpoint into a pipeline folder."""

from __future__ import annotations

import argparse

from ..original_release import (
    ORIGINAL_CHECKPOINT_NAME,
    ORIGINAL_CHECKPOINT_URL,
    WEIGHT_CHOICES,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert-original", help="convert the authors' DiffHDR checkpoint into a pipeline folder",
        description=f"Convert an original DiffHDR training checkpoint (the authors' {ORIGINAL_CHECKPOINT_NAME}, "
                    f"from {ORIGINAL_CHECKPOINT_URL}) into a DiffHDRPipeline folder with a model card. The file "
                    "is read without executing code from it. The pipeline's defaults reproduce the paper's sampler "
                    "(25 DDIM steps, patch 512, stride 64, per-window conditioning).")
    parser.add_argument("checkpoint", metavar="CKPT", help=f"the original checkpoint, e.g. {ORIGINAL_CHECKPOINT_NAME}")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", help="pipeline folder to write")
    parser.add_argument("--weights", choices=WEIGHT_CHOICES, default="live",
                        help="UNet weights: 'live' (default; what the authors' evaluation used) or 'ema' "
                             "(the EMA shadow)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing pipeline folder")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload the folder to this Hub model repo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..convert_original import convert_original_checkpoint

    output = convert_original_checkpoint(args.checkpoint, args.output_dir, weights=args.weights,
                                         overwrite=args.overwrite, push_to_hub=args.push_to_hub)
    print(f"wrote {output} ({args.weights} weights)"
          + (f"; pushed to https://huggingface.co/{args.push_to_hub}" if args.push_to_hub else ""))
