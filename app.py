"""Hugging Face Spaces entry point: ``python app.py`` serves the diffhdr-diffusers web app.

The same app as ``diffhdr app``; host and port come from Gradio's environment (``GRADIO_SERVER_NAME``,
``GRADIO_SERVER_PORT``), which Spaces sets. Errors print one line; SIGTERM stops it cleanly (the
session folders are removed).
"""

import sys

from diffhdr_diffusers.app import build_demo, launch
from diffhdr_diffusers.cli import run_command

if __name__ == "__main__":
    sys.exit(run_command("app.py", launch))
else:  # ``gradio app.py`` (reload mode) looks for a module-level ``demo``
    demo = build_demo()
