"""``diffhdr merge``: merge one bracket into a linear HDR image, or a whole shoot (``--out DIR``).

Examples::

    diffhdr merge scene/ -o scene.hdr --preview scene.png
    diffhdr merge shoot/ --out merged/ --method flow-merge          # one output set per scene folder
    accelerate launch -m diffhdr_diffusers.commands.merge shoot/ --out merged/   # scenes sharded across processes

Batch mode (``--out``) is resumable and writes ``merged/<scene>.hdr`` and ``merged/<scene>.png``
(see :mod:`diffhdr_diffusers.batch`). Also runnable as ``python -m diffhdr_diffusers.commands.merge``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..devices import resolve_device
from ..errors import InputError, OutputError
from ..evaluation.baselines import BASELINES
from ..io.formats import RADIANCE_SUFFIXES



def _exposure_list(text: str) -> list[float]:
    try:
        return [float(value) for value in text.replace(" ", "").split(",") if value]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated EV values like 0,2,4; got {text!r}") from error


def _bounded_int(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _bounded_int(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _bounded_int(text, 0, "a non-negative integer")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge", help="merge a bracket into an HDR image",
        description="Merge a bracket (a Kalantari-style scene folder or three images, short to long) into linear "
                    "HDR radiance aligned to the middle exposure.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="a scene folder, or the images short to long")
    parser.add_argument("-o", "--output", action="append", metavar="OUT",
                        help="output .hdr or .exr file; repeat to write both")
    parser.add_argument("--out", metavar="DIR",
                        help="batch mode: INPUT is a folder of scene folders; write DIR/<scene>.hdr and DIR/<scene>.png "
                             "for each (resumable: finished scenes are skipped)")
    parser.add_argument("--format", default="hdr", metavar="hdr|exr|hdr,exr",
                        help="batch mode: radiance format(s) to write per scene (default hdr)")
    parser.add_argument("--preview", metavar="PNG", help="also write a tonemapped 8-bit PNG preview")
    parser.add_argument("--method", default="diffhdr", choices=("diffhdr", *sorted(BASELINES)),
                        help="diffhdr (default: the model) or a classical merge, e.g. flow-merge (no model needed)")
    parser.add_argument("--model", metavar="PATH_OR_REPO", help="pipeline folder or Hub repo (default: bundled demo)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="accept a model folder whose .py files are not our shims (they are never executed)")
    parser.add_argument("--exposures", type=_exposure_list, metavar="EV,EV,EV",
                        help="exposures in EV stops (default: exposure.txt in the folder, else EXIF)")
    parser.add_argument("--steps", type=_positive_int, help="denoising steps (default: the model's)")
    parser.add_argument("--scheduler", help="ddim (default), ddpm, dpm++, unipc, deis, euler, heun")
    parser.add_argument("--processing-resolution", type=_non_negative_int, metavar="PX",
                        help="longest side the model runs at; the result is brought back to the input size guided by "
                             "the full-size photos (0: the input's size; default: the model's)")
    parser.add_argument("--patch-size", type=_positive_int, help="window size in pixels (default: the model's)")
    parser.add_argument("--stride", type=_positive_int, help="window stride in pixels (default: the model's)")
    parser.add_argument("--condition-per-window", action=argparse.BooleanOptionalAction, default=None,
                        help="compute condition features per window (the original's numerics)")
    parser.add_argument("--window-blend", metavar="MODE",
                        help="how overlapping windows are averaged: uniform or taper (default: the model's)")
    parser.add_argument("--window-batch-size", type=_positive_int, metavar="N",
                        help="windows per UNet call (default: chosen from the window size and free memory)")
    parser.add_argument("--fast", action="store_true", help="the fast preset (see README: Performance)")
    parser.add_argument("--ensemble", type=_positive_int, default=1, metavar="K",
                        help="average K samples (seeds SEED..SEED+K-1, one batched run) in the mu-law domain "
                             "(default 1)")
    parser.add_argument("--uncertainty", metavar="EXR",
                        help="with --ensemble K > 1: also write the per-pixel std of the samples in the mu-law "
                             "domain (float32, 3 channels) to this .exr file")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=run)


def _output(path: str, overwrite: bool, suffixes: tuple[str, ...]) -> Path:
    """Fail before any work if ``path`` has the wrong type or cannot be written."""
    from ..io import check_output_path

    if Path(path).suffix.lower() not in suffixes:
        raise OutputError(f"{path}: unsupported output type; use one of {', '.join(suffixes)}.")
    return check_output_path(path, overwrite)


def run(args: argparse.Namespace) -> int | None:
    from ..io import load_bracket, write_preview, write_radiance

    if args.out is not None:
        return _run_batch(args)
    if not args.output:
        raise InputError("give -o OUT.hdr (or .exr) for one bracket, or --out DIR to merge a folder of scene folders.")
    outputs = [_output(path, args.overwrite, RADIANCE_SUFFIXES) for path in args.output]
    preview = _output(args.preview, args.overwrite, (".png",)) if args.preview else None
    if args.method != "diffhdr" and (args.ensemble != 1 or args.uncertainty):
        raise InputError("--ensemble and --uncertainty apply to the DiffHDR model only; drop them with --method "
                         f"{args.method}.")
    if args.uncertainty and args.ensemble < 2:
        raise InputError("--uncertainty needs --ensemble K with K >= 2 (the std of one sample is not defined).")
    uncertainty = _output(args.uncertainty, args.overwrite, (".exr",)) if args.uncertainty else None
    extra = [path for path in (preview, uncertainty) if path]
    resolved = [path.resolve() for path in outputs + extra]
    repeated = sorted({str(path) for path in resolved if resolved.count(path) > 1})
    if repeated:
        raise InputError(f"{', '.join(repeated)}: the same output file is given twice; give each output its own name.")
    device = resolve_device(args.device)
    bracket = load_bracket(args.inputs, exposures=args.exposures)
    print(f"Merging {bracket.name}: {len(bracket.images)} exposures at EV {', '.join(f'{e:g}' for e in bracket.exposures)}, "
          f"{bracket.images[0].shape[1]}x{bracket.images[0].shape[0]} pixels")
    radiance, spread, failures = _merge_bracket(args, bracket, device)
    if failures:
        names = ", ".join(bracket.paths[i].name if bracket.paths else f"exposure {i + 1}" for i in failures)
        print(f"diffhdr merge: warning: could not align {names} to the reference; the merge uses the reference "
              "frame there (are these frames of one scene?).", file=sys.stderr)
    for path in outputs:
        print(f"wrote {write_radiance(path, radiance, overwrite=args.overwrite)}")
    if preview:
        print(f"wrote {write_preview(preview, radiance, overwrite=args.overwrite)}")
    if uncertainty:
        print(f"wrote {write_radiance(uncertainty, spread, overwrite=args.overwrite)}")


def _merge_bracket(args: argparse.Namespace, bracket, device: str, pipe=None):
    """``(radiance, spread, failed exposure indices)`` of the merge ``--method`` asks for (``pipe``: a loaded model)."""
    if args.method == "diffhdr":
        return _merge_with_model(args, bracket, device, pipe)
    if args.method == "flow-merge":
        from ..merging import flow_merge_radiance

        merged = flow_merge_radiance(bracket.images, bracket.exposures, details=True)  # bounded memory
        return merged.radiance, None, [i for i, failed in enumerate(merged.failed) if failed]
    return BASELINES[args.method](bracket.images, bracket.exposures), None, []


def _load_pipeline(args: argparse.Namespace, device: str):
    from ..pipelines import DiffHDRPipeline

    return DiffHDRPipeline.from_pretrained(args.model, trust_remote_code=args.trust_remote_code).to(device)


def _merge_with_model(args: argparse.Namespace, bracket, device: str, pipe=None):
    """Radiance of the DiffHDR model's merge (the mean of ``--ensemble`` samples in the mu-law domain), their
    per-pixel std there (None for one sample) and the exposures whose alignment failed (aligned models)."""
    import torch

    from ..allocator import cpu_window_budget
    from ..pipelines.presets import FAST_PRESET
    from ..schedulers import scheduler_from_name

    if pipe is None:
        pipe = _load_pipeline(args, device)
    options = dict(FAST_PRESET) if args.fast else {}
    if args.scheduler:
        pipe.scheduler = scheduler_from_name(args.scheduler, pipe.scheduler.config)
    for key, value in (("num_inference_steps", args.steps), ("patch_size", args.patch_size),
                       ("stride", args.stride), ("condition_per_window", args.condition_per_window),
                       ("window_blend", args.window_blend), ("window_batch_size", args.window_batch_size),
                       ("processing_resolution", args.processing_resolution)):
        if value is not None:
            options[key] = value
    if torch.device(device).type == "cpu":  # the diffhdr command tunes the allocator: larger CPU batches pay off
        options["window_memory_budget"] = cpu_window_budget()

    generators = [torch.Generator().manual_seed(args.seed + k) for k in range(args.ensemble)]
    result = pipe(bracket.images, bracket.exposures, ensemble_size=args.ensemble,
                  generator=generators if args.ensemble > 1 else generators[0], **options)
    spread = None if result.uncertainty is None else result.uncertainty[0]
    return result.hdr[0], spread, (result.alignment_failures or [[]])[0]


def _run_batch(args: argparse.Namespace) -> int:
    """Batch mode: merge every scene folder under INPUT into ``--out`` (see :mod:`diffhdr_diffusers.batch`)."""
    from ..batch import run_batch
    from ..evaluation import process_group

    if len(args.inputs) != 1:
        raise InputError(f"--out: give one folder of scene folders, not {len(args.inputs)} inputs.")
    used = [flag for flag, value in (("-o", args.output), ("--preview", args.preview), ("--uncertainty", args.uncertainty),
                                     ("--exposures", args.exposures)) if value]
    if used:
        raise InputError(f"{', '.join(used)}: not used with --out (each scene gets DIR/<scene>.hdr and .png, and its "
                         "exposures from its folder); drop them.")
    if args.method != "diffhdr" and args.ensemble != 1:
        raise InputError(f"--ensemble applies to the DiffHDR model only; drop it with --method {args.method}.")
    group = process_group()
    device = resolve_device(args.device if args.device or group.device is None else str(group.device))
    pipe = None
    if args.method == "diffhdr":
        pipe = _load_pipeline(args, device)
        pipe.set_progress_bar_config(disable=True)

    def merge(bracket):
        radiance, _, failures = _merge_bracket(args, bracket, device, pipe)
        return radiance, failures

    summary = run_batch(args.inputs[0], args.out, merge, vars(args), formats=args.format.replace(" ", "").split(","),
                        overwrite=args.overwrite, group=group)
    if group.rank == 0:
        print(summary.text())
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m diffhdr_diffusers.commands.merge`` (and ``accelerate launch -m``)."""
    from ..cli import main as cli_main

    return cli_main(["merge", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
