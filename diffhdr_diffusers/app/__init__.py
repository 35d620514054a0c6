"""A Gradio web app for trying the merge: upload a bracket, merge it, look at it at several exposures.

``diffhdr app`` (or ``python app.py`` at the repository root, as Hugging Face Spaces runs it) serves it.
Gradio is an optional extra (``pip install -e ".[app]"``); nothing here imports it until the app is built.

- :mod:`~diffhdr_diffusers.app.session`: reading uploads, merging, writing downloads (no Gradio).
- :mod:`~diffhdr_diffusers.app.tonemap`: tonemapping at an exposure offset, display conversions.
- :mod:`~diffhdr_diffusers.app.ui`: the Blocks page and its event handlers.
"""

from __future__ import annotations

from ..errors import MissingDependencyError

INSTALL_HINT = 'pip install -e ".[app]" (or pip install "gradio>=6,<7")'


def _ui():
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"the web app needs Gradio, which is not installed; {INSTALL_HINT}.") from None
    from . import ui

    return ui


def build_demo(model: str | None = None):
    """The app's ``gradio.Blocks`` (not yet serving); ``model`` preselects a model folder or Hub id."""
    return _ui().build_demo(model)


def launch(host: str | None = None, port: int | None = None, model: str | None = None, **kwargs):
    """Build and serve the app; see :func:`diffhdr_diffusers.app.ui.launch`. Returns ``(demo, url)``."""
    return _ui().launch(host=host, port=port, model=model, **kwargs)


__all__ = ["build_demo", "launch"]
