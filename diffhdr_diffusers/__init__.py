"""diffhdr_diffusers: ghost-free HDR merging of exposure brackets with DiffHDR on Hugging Face diffusers."""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public names, imported on first use so that light commands (``diffhdr synth``) skip torch and diffusers.
_EXPORTS = {
    "ConditionEncoder": ".models",
    "DiffHDRUNet": ".models",
    "DiffHDRUNetOutput": ".models",
    "DiffHDRPipeline": ".pipelines",
    "DiffHDRPipelineOutput": ".pipelines",
    "DiffHDRError": ".errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
