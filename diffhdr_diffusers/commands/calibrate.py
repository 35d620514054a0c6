"""``diffhdr calibrate``: estimate a camera's response from one or more of its brackets, for ``--response FILE.json``.

Examples::

    diffhdr calibrate shoot/scene1 shoot/scene2 -o camera.json     # one bracket per folder
    diffhdr calibrate IMG_1.jpg IMG_2.jpg IMG_3.jpg -o camera.json  # the images of one bracket
    diffhdr merge other_scene/ -o merged.exr --response camera.json

Each bracket's response is estimated by :func:`diffhdr_diffusers.camera.estimate_camera`; the file holds the
first estimate that did not fall back (each fallback is reported with its reason).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from .options import exposure_list


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="estimate a camera's response from its brackets",
        description="Estimate a camera's response from one or more of its brackets (scene folders, or the images of "
                    "one bracket) and save it for --response FILE.json.")
    parser.add_argument("inputs", nargs="+", metavar="FRAMES|FOLDERS", help="scene folders, or the images of one bracket")
    parser.add_argument("-o", "--output", required=True, metavar="CAMERA.json", help="the response file to write")
    parser.add_argument("--exposures", type=exposure_list, metavar="EV,EV,...",
                        help="exposures of one bracket given as images (default: "
                        "the folder's exposure file, else EXIF)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing response file")
    parser.set_defaults(func=run)


def brackets_of(inputs: list[str]) -> list[list[str]]:
    """Folders are one bracket each; image files together are one bracket."""
    paths = [Path(item) for item in inputs]
    folders = [path for path in paths if path.is_dir()]
    if folders and len(folders) != len(paths):
        raise InputError("give either scene folders (one bracket each) or the images of one bracket, not both.")
    return [[str(folder)] for folder in folders] if folders else [list(inputs)]


def run(args: argparse.Namespace) -> None:
    from ..camera import estimate_camera
    from ..io import check_output_path
    from ..io.exposures import format_exposures
    from ..methods.frames import read_bracket

    output = Path(args.output)
    if output.suffix.lower() != ".json":
        raise InputError(f"{output}: a response file is .json; name it e.g. camera.json.")
    check_output_path(output, args.overwrite)
    exposures = args.exposures
    groups = brackets_of(args.inputs)
    if exposures is not None and len(groups) > 1:
        raise InputError("--exposures applies to one bracket given as images; each folder has its own exposures.")
    reasons = []
    for group in groups:
        bracket = read_bracket(group, exposures=exposures)
        estimate = estimate_camera(bracket.images, bracket.exposures)
        for warning in estimate.warnings:
            print(f"diffhdr calibrate: warning: {bracket.name}: {warning}", file=sys.stderr)
        if estimate.fallback:
            reasons.append(f"{bracket.name}: {'; '.join(estimate.warnings) or 'estimation fell back'}")
            continue
        estimate.response.save(output)  # checked above: absent, or --overwrite
        print(f"{bracket.name}: response estimated; exposures EV {format_exposures(estimate.exposures)}")
        print(f"wrote {output}")
        return
    raise InputError(f"no bracket gave a response estimate ({'; '.join(reasons)}); nothing was written. Try brackets "
                     "with more well-exposed overlap, or name a response (srgb, gamma:2.2).")
