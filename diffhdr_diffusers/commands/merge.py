"""``diffhdr merge``: merge one bracket into a linear HDR image, or a whole shoot (``--out DIR``).

Every merge goes through :mod:`diffhdr_diffusers.methods` (the camera's response first, then the method); the
method, sampling and camera options are the group shared with ``diffhdr evaluate`` (:mod:`.options`).

Examples::

    diffhdr merge scene/ -o scene.exr --preview scene.png
    diffhdr merge a.jpg b.jpg c.jpg d.jpg e.jpg -o out.exr --method flow-merge --response srgb
    diffhdr merge shoot/ --out merged/ --method flow-merge          # one output set per scene folder
    accelerate launch -m diffhdr_diffusers.commands.merge shoot/ --out merged/   # scenes sharded across processes

Batch mode (``--out``) is resumable and writes ``merged/<scene>.hdr`` and ``merged/<scene>.png``
(see :mod:`diffhdr_diffusers.batch`). Also runnable as ``python -m diffhdr_diffusers.commands.merge``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..camera import describe_camera
from ..errors import InputError, OutputError, word_message
from ..io.formats import JPEG_SUFFIXES, PREVIEW_SUFFIXES, RADIANCE_OUTPUT_SUFFIXES
from .options import BATCH_WORDING, add_method_arguments, exposure_list, method_from_args, method_settings


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge", help="merge a bracket into an HDR image",
        description="Merge a bracket (a scene folder, or 2 to 9 images of one scene) into linear HDR radiance "
                    "aligned to the reference frame (the middle one). The camera's response is applied first "
                    "(--response) and saved with the output.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="a scene folder, or the images of one bracket")
    parser.add_argument("-o", "--output", action="append", metavar="OUT",
                        help="output file, repeatable: linear radiance as .hdr, .exr (records the response used) or "
                             ".dng (linear float DNG for raw editors), or a finished photo as .jpg, .png or .tif "
                             "(tone mapped, with the reference frame's EXIF)")
    parser.add_argument("--out", metavar="DIR",
                        help="batch mode: INPUT is a folder of scene folders, a card folder of frames, or one scene folder; write DIR/<scene>.hdr and DIR/<scene>.png "
                             "for each (resumable: finished scenes are skipped)")
    parser.add_argument("--group-by", default="auto", metavar="auto|time|count:N|folder",
                        help="batch mode: how INPUT's brackets are found: folder (one per scene folder), time (a flat "
                             "card folder's frames grouped by EXIF capture time and their repeating exposure "
                             "pattern), count:N (every N frames in capture order); auto (default): time when INPUT "
                             "holds frames, no sub-folders and no exposure file, else folder (a scene folder is one "
                             "scene)")
    parser.add_argument("--dry-run", action="store_true", help="batch mode: list the brackets found, merge nothing")
    parser.add_argument("--format", default="hdr", metavar="hdr|exr|hdr,exr",
                        help="batch mode: radiance format(s) to write per scene (default hdr)")
    parser.add_argument("--preview", metavar="PNG|JPG", help="also write a tonemapped 8-bit PNG or JPEG preview")
    photo = parser.add_argument_group("finished photo (-o x.jpg|png|tif, --preview)")
    photo.add_argument("--tonemap", default="natural", choices=("natural", "global", "none"),
                       help="tone mapping: natural (local, keeps highlight and shadow detail; default), global "
                            "(one curve), none (clipped sRGB)")
    photo.add_argument("--tonemap-exposure", type=float, default=0.0, metavar="EV",
                       help="brighten (+) or darken (-) the photo by EV stops (default 0)")
    photo.add_argument("--saturation", type=float, default=1.0, help="colour saturation (default 1)")
    photo.add_argument("--detail", type=float, default=1.0, help="local detail strength, natural only (default 1)")
    photo.add_argument("--quality", type=int, default=95, help="JPEG quality 1-100 (default 95)")
    photo.add_argument("--bits", type=int, default=8, choices=(8, 16),
                       help="PNG/TIFF bit depth (default 8; a JPEG is 8-bit whatever this says)")
    parser.add_argument("--half-size", action="store_true",
                        help="RAW frames: decode at half size (4x fewer pixels, much faster)")
    parser.add_argument("--exposures", type=exposure_list, metavar="EV,EV,...",
                        help="exposures in EV stops (default: the folder's exposure file, else EXIF)")
    parser.add_argument("--uncertainty", metavar="EXR",
                        help="with --ensemble K > 1: also write the per-pixel std of the samples in the mu-law "
                             "domain (float32, 3 channels) to this .exr file")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_method_arguments(parser, None, "Default: auto (gamma:2.2 for the paper's model, trained on that camera).")
    parser.set_defaults(func=run)


def _output(path: str, overwrite: bool, suffixes: tuple[str, ...]) -> Path:
    """Fail before any work if ``path`` has the wrong type or cannot be written."""
    from ..io import check_output_path

    if Path(path).suffix.lower() not in suffixes:
        raise OutputError(f"{path}: unsupported output type; use one of {', '.join(suffixes)}.")
    return check_output_path(path, overwrite)


def _bits(path: Path, bits: int) -> int:
    """``--bits`` for a PNG or TIFF photo; a JPEG holds 8 bits, so ``-o x.tif -o x.jpg --bits 16`` writes both."""
    return 8 if path.suffix.lower() in JPEG_SUFFIXES else bits


def _warn(message: str) -> None:
    print(f"diffhdr merge: warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int | None:
    from ..devices import resolve_device
    from ..io import write_preview, write_radiance
    from ..io.exposures import format_exposures
    from ..io.photo import write_photo
    from ..methods.frames import frame_names, read_bracket

    if args.out is not None:
        return _run_batch(args)
    started = time.perf_counter()
    if not args.output:
        raise InputError("give -o OUT.hdr (or .exr) for one bracket, or --out DIR to merge a folder of scene folders.")
    from ..io.photo import PHOTO_SUFFIXES, check_photo_options
    from ..tonemapping import tonemap_settings

    look = tonemap_settings(args.tonemap, args.tonemap_exposure, args.saturation, args.detail)
    outputs = [_output(path, args.overwrite, RADIANCE_OUTPUT_SUFFIXES + PHOTO_SUFFIXES) for path in args.output]
    for path in outputs:
        if path.suffix.lower() in PHOTO_SUFFIXES:
            check_photo_options(path, _bits(path, args.bits), args.quality)
    preview = _output(args.preview, args.overwrite, PREVIEW_SUFFIXES) if args.preview else None
    if args.uncertainty and args.method == "diffhdr" and args.ensemble < 2:
        raise InputError("--uncertainty needs --ensemble K with K >= 2 (the std of one sample is not defined).")
    uncertainty = _output(args.uncertainty, args.overwrite, (".exr",)) if args.uncertainty else None
    extra = [path for path in (preview, uncertainty) if path]
    resolved = [path.resolve() for path in outputs + extra]
    repeated = sorted({str(path) for path in resolved if resolved.count(path) > 1})
    if repeated:
        raise InputError(f"{', '.join(repeated)}: the same output file is given twice; give each output its own name.")
    # The frames are read before the model loads (seconds of imports and weights), so a bad file is reported at once;
    # a bracket the method can't merge still fails before the merge.
    bracket = read_bracket(args.inputs, exposures=args.exposures, half_size=args.half_size)
    device = resolve_device(args.device) if args.method == "diffhdr" else None
    method = method_from_args(args, device)
    method.reference_for(len(bracket.images), args.reference_index)
    colours = f", {bracket.colour_profile} colours converted to sRGB" if bracket.colour_profile else ""
    print(f"Merging {bracket.name} with {method.words}: {len(bracket.images)} exposures at EV "
          f"{format_exposures(bracket.exposures)}, "
          f"{bracket.images[0].shape[1]}x{bracket.images[0].shape[0]} pixels{colours}")
    for note in bracket.notes:
        print(f"Note: {note}")
    merge_started = time.perf_counter()
    result = method.merge_bracket(bracket, reference_index=args.reference_index)
    merge_seconds = time.perf_counter() - merge_started
    print(describe_camera(result.camera.to_dict(), result.reference_index))
    for warning in result.warnings(frame_names(bracket)):
        _warn(warning)
    metadata = result.metadata()
    reference = bracket.paths[result.reference_index] if bracket.paths else None
    for path in outputs:
        if path.suffix.lower() in PHOTO_SUFFIXES:
            written = write_photo(path, result.radiance, look["operator"], look["exposure"], look["saturation"],
                                  look["detail"], bits=_bits(path, args.bits), quality=args.quality, reference=reference,
                                  overwrite=args.overwrite)
        else:
            written = write_radiance(path, result.radiance, overwrite=args.overwrite, metadata=metadata,
                                     exif_source=reference)
        print(f"wrote {written}")
    if preview:
        print(f"wrote {write_preview(preview, result.radiance, overwrite=args.overwrite, operator=look['operator'], exposure=look['exposure'], saturation=look['saturation'], detail=look['detail'], reference=reference)}")
    if uncertainty:
        print(f"wrote {write_radiance(uncertainty, result.uncertainty, overwrite=args.overwrite, metadata=metadata)}")
    print(f"done in {time.perf_counter() - started:.1f} s ({merge_seconds:.1f} s of it merging)")


def _run_batch(args: argparse.Namespace) -> int:
    """Batch mode: merge every scene folder under INPUT into ``--out`` (see :mod:`diffhdr_diffusers.batch`)."""
    from ..batch import run_batch
    from ..devices import resolve_device
    from ..sharding import process_group

    if len(args.inputs) != 1:
        raise InputError(f"--out: give one folder of scene folders, not {len(args.inputs)} inputs.")
    used = [flag for flag, value in (("-o", args.output), ("--preview", args.preview), ("--uncertainty", args.uncertainty),
                                     ("--exposures", args.exposures)) if value]
    if used:
        raise InputError(f"{', '.join(used)}: not used with --out (each scene gets DIR/<scene>.hdr and .png, and its "
                         "exposures from its folder); drop them.")
    if args.dry_run:
        from ..batch import find_scenes

        from ..methods.frames import frame_files

        scenes = find_scenes(Path(args.inputs[0]), args.group_by, exclude=Path(args.out))
        for index, scene in enumerate(scenes, start=1):
            frames = frame_files([str(path) for path in scene.inputs])
            where = f" (folder {scene.inputs[0].name})" if len(scene.inputs) == 1 else ""
            short = "" if len(frames) >= 2 else " (a bracket needs at least 2: it will fail)"
            print(f"{index}. {scene.name}: {len(frames)} frame{'s' * (len(frames) != 1)}{short}{where}: "
                  f"{', '.join(path.name for path in frames)}")
        print(f"{len(scenes)} bracket{'s' * (len(scenes) != 1)}; nothing merged (--dry-run).")
        return 0
    group = process_group()
    device = None
    if args.method == "diffhdr":
        device = resolve_device(args.device if args.device or group.device is None else str(group.device))
    method = method_from_args(args, device, progress=False)
    from ..tonemapping import tonemap_settings

    look = tonemap_settings(args.tonemap, args.tonemap_exposure, args.saturation, args.detail)
    summary = run_batch(args.inputs[0], args.out, method, {**method_settings(args, method), "tonemap": look},
                        formats=args.format.replace(" ", "").split(","), overwrite=args.overwrite, group=group,
                        reference_index=args.reference_index, group_by=args.group_by, look=look)
    if group.rank == 0:
        print(word_message(summary.text(), BATCH_WORDING))
    return 1 if summary.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m diffhdr_diffusers.commands.merge`` (and ``accelerate launch -m``)."""
    from ..cli import main as cli_main

    return cli_main(["merge", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
