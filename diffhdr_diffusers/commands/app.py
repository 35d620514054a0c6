"""``diffhdr app``: serve the Gradio web app (upload a bracket, merge it, view and download the result)."""

from __future__ import annotations

import argparse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port), got {text!r}")
    return value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "app", help="serve the web app (Gradio) on localhost",
        description="Serve the web app: upload two or more exposures (or pick an example), merge them with the "
                    "bundled model, flow-merge or a model folder / Hub id, view the result at any exposure, compare "
                    "it with the reference frame and download .hdr/.exr. Needs the app extra: "
                    'pip install -e ".[app]".')
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 serves the whole network)")
    parser.add_argument("--port", type=_port, default=7860, help="port (default 7860; 0 picks a free one)")
    parser.add_argument("--model", metavar="PATH_OR_REPO",
                        help="preselect this model folder or Hub repo as the custom model")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from ..app import launch

    port = args.port
    if port == 0:
        import socket

        with socket.socket() as probe:
            probe.bind((args.host, 0))
            port = probe.getsockname()[1]
    print(f"diffhdr app: serving on http://{args.host}:{port} (Ctrl-C stops it)", flush=True)
    launch(host=args.host, port=port, model=args.model, quiet=True)
