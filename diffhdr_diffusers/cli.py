"""The ``diffhdr`` command line: ``diffhdr <command> ...``.

Each command lives in ``diffhdr_diffusers/commands/<name>.py`` and defines ``add_parser(subparsers)``,
which registers its arguments and sets ``func`` (a callable taking the parsed namespace). Errors of
type :class:`~diffhdr_diffusers.errors.DiffHDRError` are printed as one line, with a non-zero exit and
no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from .errors import DiffHDRError

COMMANDS = ("merge", "synth", "evaluate", "convert_original")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffhdr", description="Ghost-free HDR merging with DiffHDR.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_parser(subparsers)
    return parser


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so atomic writers clean their temporary files up. The previous
    # handler comes back afterwards, so calling main() from Python leaves the process as it was.
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        args.func(args)
    except DiffHDRError as error:
        print(f"diffhdr {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"diffhdr {args.command}: interrupted; no partial output was left.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
    return 0


def console_main() -> int:
    """Entry point of the installed ``diffhdr`` command: :func:`main` in a process whose allocator keeps
    freed memory for reuse (:func:`~diffhdr_diffusers.allocator.reuse_freed_memory`; faster CPU sampling)."""
    from .allocator import reuse_freed_memory

    reuse_freed_memory()
    return main()


if __name__ == "__main__":
    sys.exit(console_main())
