"""The folder layout that both ``DiffHDRPipeline.from_pretrained`` and the generic
``DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`` load, locally and from the Hub.

diffusers resolves string class names only inside ``diffusers``. So a saved folder also carries tiny
re-export modules ("shims") that import our installed classes, and ``model_index.json`` names them.
Our own loader checks the shims byte for byte and never executes code from the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

SHIMS: dict[str, tuple[str, str, str]] = {
    # component: (file inside the folder, module name, class name)
    "_class_name": ("pipeline_diffhdr.py", "pipeline_diffhdr", "DiffHDRPipeline"),
    "unet": ("unet/modeling_diffhdr_unet.py", "modeling_diffhdr_unet", "DiffHDRUNet"),
    "condition_encoder": (
        "condition_encoder/modeling_diffhdr_condition_encoder.py",
        "modeling_diffhdr_condition_encoder",
        "ConditionEncoder",
    ),
}


def shim_source(class_name: str) -> str:
    return (
        '"""Re-export of an installed diffhdr_diffusers class (pip install diffhdr-diffusers)."""\n'
        f"from diffhdr_diffusers import {class_name}  # noqa: F401\n"
    )


def write_shims(folder: str | Path) -> None:
    """Write the shim modules and point ``model_index.json`` at them."""
    folder = Path(folder)
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    for key, (relative, module, class_name) in SHIMS.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(shim_source(class_name))
        index[key] = [module, class_name]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def untrusted_code(folder: str | Path) -> list[str]:
    """Python files in ``folder`` that are not byte-identical to our shims."""
    folder = Path(folder)
    expected = {relative: shim_source(class_name) for relative, _, class_name in SHIMS.values()}
    untrusted = []
    for path in sorted(folder.rglob("*.py")):
        relative = path.relative_to(folder).as_posix()
        if expected.get(relative) != path.read_text(errors="replace"):
            untrusted.append(relative)
    return untrusted
