"""The ``diffhdr`` command line: ``diffhdr <command> ...``.

Each command lives in ``diffhdr_diffusers/commands/<name>.py`` and defines ``add_parser(subparsers)``,
which registers its arguments and sets ``func`` (a callable taking the parsed namespace). Errors of
type :class:`~diffhdr_diffusers.errors.DiffHDRError` are printed as one line, with a non-zero exit and
no traceback (:func:`run_command`, which every entry point of the library uses).

Environment:
    ``DIFFHDR_REUSE_FREED_MEMORY``: ``1`` (the default of the ``diffhdr`` command) keeps freed memory in the
    C heap, which makes CPU sampling faster (:mod:`~diffhdr_diffusers.allocator`); ``0`` leaves the process's
    allocator as it is.
"""

from __future__ import annotations

import argparse
import importlib
import re
import signal
import sys
import warnings
from collections.abc import Callable

from .errors import DiffHDRError, word_message

COMMANDS = ("merge", "calibrate", "synth", "evaluate", "convert_original", "app")


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, as the library's are: the problem, then where the options
    are explained (argparse's usage text before it ran to twenty lines)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help.\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="diffhdr", description="Ghost-free HDR merging with DiffHDR.",
        epilog="environment: DIFFHDR_REUSE_FREED_MEMORY=0 leaves the C allocator untuned (default 1: freed memory "
               "is kept for reuse, which makes CPU sampling faster).")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_parser(subparsers)
    return parser


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_command(prog: str, command: Callable[[], int | None]) -> int:
    """Run ``command()`` the way every entry point of the library does; returns the process exit code.

    A :class:`~diffhdr_diffusers.errors.DiffHDRError` is printed as ``"<prog>: error: <message>"`` with its
    ``exit_code`` and no traceback, its remedies in the CLI's words (``--exposures``, ``--overwrite``, ...). A Python
    warning raised on the way is printed as one line, ``"<prog>: warning: <message>"``, without its source line. Ctrl-C and SIGTERM unwind as ``KeyboardInterrupt`` (so atomic writers
    remove their temporary files) and exit with 130. The previous SIGTERM handler comes back afterwards, so
    calling this from Python leaves the process as it was. ``command`` may return an exit code; `None` is 0.
    Used by ``diffhdr``, ``python -m diffhdr_diffusers.commands.evaluate`` and ``training/train_diffhdr.py``.
    """
    previous_handler = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = lambda message, *_, **__: print(f"{prog}: warning: {message}", file=sys.stderr)
            return command() or 0
    except DiffHDRError as error:
        from .commands.options import CLI_WORDING

        print(f"{prog}: error: {word_message(str(error), CLI_WORDING)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no partial output was left.", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


def attach_negative_values(argv: list[str]) -> list[str]:
    """Join ``--option -2,0,2`` into ``--option=-2,0,2``: argparse reads a value that starts with a minus sign and
    is not a single number as an option. No option of ours starts with a digit, so such a token is a value."""
    joined: list[str] = []
    for token in argv:
        if re.match(r"-[\d.]", token) and joined and joined[-1].startswith("--") and "=" not in joined[-1]:
            joined[-1] = f"{joined[-1]}={token}"
        else:
            joined.append(token)
    return joined


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(attach_negative_values(sys.argv[1:] if argv is None else list(argv)))
    return run_command(f"diffhdr {args.command}", lambda: args.func(args))


def _tune_allocator() -> None:
    from .allocator import configure_from_environment

    configure_from_environment()


def console_main() -> int:
    """Entry point of the installed ``diffhdr`` command: :func:`main` in a process whose allocator keeps
    freed memory for reuse (faster CPU sampling; :mod:`~diffhdr_diffusers.allocator`), unless the
    environment variable ``DIFFHDR_REUSE_FREED_MEMORY`` is ``0``."""
    return run_command("diffhdr", _tune_allocator) or main()


if __name__ == "__main__":
    sys.exit(console_main())
