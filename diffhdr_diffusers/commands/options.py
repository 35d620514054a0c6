"""The one argument group for the merge method, its sampling and the camera, shared by ``diffhdr merge`` (and its
batch mode) and ``diffhdr evaluate``; and how the CLI words the library's remedies."""

from __future__ import annotations

import argparse

from ..errors import (ALLOW_OVERWRITE, GIVE_EXPOSURES, MERGE_AS_SHOOT, SMALLER_CROP, TRUST_FOREIGN_CODE, USE_FLOW_MERGE,
                      InputError)

MODEL = "diffhdr"  # methods.MODEL (not imported here: parsing the command line stays free of heavy imports)
CLASSICAL = ("debevec", "flow-merge", "naive-merge", "reference")  # methods.CLASSICAL; a test checks they agree
SCENE_RESPONSE = "true"

#: The CLI's words for the library's remedies (:func:`~diffhdr_diffusers.errors.word_message`).
CLI_WORDING = {
    GIVE_EXPOSURES: "pass them with --exposures EV,EV,... (one per frame, short to long)",
    ALLOW_OVERWRITE: "pass --overwrite to replace it",
    USE_FLOW_MERGE: "merge it with --method flow-merge (no model needed)",
    MERGE_AS_SHOOT: "merge them all with --out DIR (one output per scene folder), or name one scene folder",
    TRUST_FOREIGN_CODE: "pass --trust-remote-code",
    SMALLER_CROP: "pass a --resolution (the training crop) no larger than the smallest scene",
}

#: Their words in a shoot's summary (``--out``), where --exposures is not taken: each scene's exposures come from its
#: folder, and a card's bracket gets a folder of its own for them.
BATCH_EXPOSURES = ("put the bracket's frames in a folder of their own with an exposure.txt (one EV per line, short to long), "
                   "and merge the folder of such folders")
BATCH_WORDING = {**CLI_WORDING, ", or put an exposure.txt next to the images": "", GIVE_EXPOSURES: BATCH_EXPOSURES}

# (flag, attribute, the value that means "not given") of the options that only a model takes.
MODEL_ONLY = (("--model", "model", None), ("--steps", "steps", None), ("--scheduler", "scheduler", None),
              ("--processing-resolution", "processing_resolution", None), ("--patch-size", "patch_size", None),
              ("--stride", "stride", None), ("--condition-per-window", "condition_per_window", None),
              ("--window-blend", "window_blend", None), ("--window-batch-size", "window_batch_size", None),
              ("--fast", "fast", False), ("--ensemble", "ensemble", 1), ("--trust-remote-code", "trust_remote_code", False))


def exposure_list(text: str) -> list[float]:
    """``--exposures`` values: comma-separated EVs (``-2,0,2``)."""
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


def positive_int(text: str) -> int:
    return _bounded_int(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _bounded_int(text, 0, "a non-negative integer")


def add_method_arguments(parser: argparse.ArgumentParser, response_default: str | None, response_note: str,
                         method_default: str | None = MODEL) -> None:
    """Add the shared group: the method, a model's sampling options, the device and the camera."""
    group = parser.add_argument_group("method, sampling and camera")
    group.add_argument("--method", default=method_default, choices=(MODEL, *CLASSICAL),
                       help="diffhdr (default: the model) or a classical merge: flow-merge (no model needed, 2 to 9 "
                            "frames), reference, naive-merge, debevec")
    group.add_argument("--model", metavar="PATH_OR_REPO", help="pipeline folder or Hub repo (default: bundled model)")
    group.add_argument("--trust-remote-code", action="store_true",
                       help="accept a model folder whose .py files are not our shims (they are never executed)")
    group.add_argument("--steps", type=positive_int, help="denoising steps (default: the model's)")
    group.add_argument("--scheduler", help="ddim (default), ddpm, dpm++, unipc, deis, euler, heun")
    group.add_argument("--processing-resolution", type=non_negative_int, metavar="PX",
                       help="longest side the model runs at; the result is brought back to the input size guided by "
                            "the full-size photos (0: the input's size; default: the model's)")
    group.add_argument("--patch-size", type=positive_int, help="window size in pixels (default: the model's)")
    group.add_argument("--stride", type=positive_int, help="window stride in pixels (default: the model's)")
    group.add_argument("--condition-per-window", action=argparse.BooleanOptionalAction, default=None,
                       help="compute condition features per window (the original's numerics)")
    group.add_argument("--window-blend", metavar="MODE",
                       help="how overlapping windows are averaged: uniform or taper (default: the model's)")
    group.add_argument("--window-batch-size", type=positive_int, metavar="N",
                       help="windows per UNet call (default: chosen from the window size and free memory)")
    group.add_argument("--fast", action="store_true",
                       help="the fast preset: at most half the default's UNet window passes (the paper's model: 5 steps "
                            "on shifted windows; a small model of a few steps: half its steps; a one-step model such as "
                            "the bundled one: its default, nothing is cheaper)")
    group.add_argument("--ensemble", type=positive_int, default=1, metavar="K",
                       help="average K samples (seeds SEED..SEED+K-1, one batched run) in the mu-law domain (default 1)")
    group.add_argument("--seed", type=int, default=0, help="random seed of the first sample (default 0)")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    group.add_argument("--response", default=response_default, metavar="auto|srgb|linear|gamma:G|FILE.json",
                       help="the camera's response: auto estimates it from the bracket; srgb, linear (RAW), gamma:G, "
                            f"or a file from `diffhdr calibrate`. {response_note}")
    group.add_argument("--reference-index", type=non_negative_int, metavar="I",
                       help="the frame the merge is aligned to, counted from 0 short to long (default: the middle "
                            "frame, index N//2: for an even N the longer of the two middle frames)")


def check_model_only(args: argparse.Namespace, instead: str | None = None) -> None:
    """A classical method (or ``instead``, e.g. ``--predictions``) given a model's options: one error naming them."""
    if args.method == MODEL and instead is None:
        return
    used = [flag for flag, name, unset in MODEL_ONLY if getattr(args, name, unset) != unset]
    if getattr(args, "uncertainty", None):
        used.append("--uncertainty")
    if used:
        verb, pronoun = ("applies", "it") if len(used) == 1 else ("apply", "them")
        raise InputError(f"{', '.join(used)}: {verb} to the DiffHDR model only; drop {pronoun} with "
                         f"{instead or '--method ' + args.method}.")


def sampling_options(args: argparse.Namespace) -> dict:
    """The ``load_method`` sampling keywords the arguments give."""
    return {"num_inference_steps": args.steps, "scheduler": args.scheduler,
            "processing_resolution": args.processing_resolution, "patch_size": args.patch_size,
            "stride": args.stride, "condition_per_window": args.condition_per_window,
            "window_blend": args.window_blend, "window_batch_size": args.window_batch_size, "fast": args.fast,
            "ensemble": args.ensemble, "seed": args.seed}


def response_option(args: argparse.Namespace):
    """``--response`` checked at once (a bad file fails before any work); ``None`` for the method's default."""
    from ..camera import parse_response

    if args.response in (None, SCENE_RESPONSE):
        return None
    try:
        parse_response(args.response)
    except InputError as error:
        raise InputError(f"--response: {error}") from None
    return args.response


def method_from_args(args: argparse.Namespace, device: str | None = None, progress: bool = True):
    """The :class:`~diffhdr_diffusers.methods.Method` the arguments ask for."""
    from ..methods import load_method

    check_model_only(args)
    response = response_option(args)
    if args.method != MODEL:
        return load_method(args.method, response=response)
    return load_method(args.model, device=device, response=response, trust_remote_code=args.trust_remote_code,
                       progress=progress, **sampling_options(args))


def method_settings(args: argparse.Namespace, method) -> dict:
    """What decides a merge's result: the method's settings, the response asked for and the reference."""
    return {**method.settings, "response": args.response or method.response,
            "reference_index": args.reference_index}
