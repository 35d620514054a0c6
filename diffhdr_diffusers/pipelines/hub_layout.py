"""The two folder layouts of a saved DiffHDR pipeline, and the one way a pipeline folder goes to the Hub.

**Plain layout** (what diffusers' own [`~diffusers.DiffusionPipeline.save_pretrained`] writes):
``model_index.json`` names our installed classes by module path,
``"unet": ["diffhdr_diffusers.models.unet", "DiffHDRUNet"]``. ``DiffHDRPipeline.from_pretrained`` loads it with
diffusers' own loader, and no code from the folder runs. diffusers' generic ``DiffusionPipeline.from_pretrained``
cannot: it resolves a plain ``_class_name`` only inside ``diffusers``.

**Shim layout** (what ``DiffHDRPipeline.save_pretrained`` writes, so also what :func:`push_folder` uploads): the
plain layout plus three re-export modules ("shims") that only import our installed classes, and a
``model_index.json`` that names them, e.g. ``"unet": ["modeling_diffhdr_unet", "DiffHDRUNet"]``. With them the
generic ``DiffusionPipeline.from_pretrained(folder_or_repo, trust_remote_code=True)`` works, locally as from the
Hub (which also refuses components from another library unless ``<component>/<module>.py`` exists there).
``DiffHDRPipeline.from_pretrained`` reads this layout too, without running the shims: :func:`plain_view` maps it
back to the plain layout after :func:`untrusted_code` has checked that the Python files are exactly our shims.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError

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


def _installed_modules() -> dict[str, list[str]]:
    """``model_index.json`` entries of the plain layout: the installed classes by module path."""
    from ..models import ConditionEncoder, DiffHDRUNet
    from .pipeline_diffhdr import DiffHDRPipeline

    return {"unet": [DiffHDRUNet.__module__, "DiffHDRUNet"],
            "condition_encoder": [ConditionEncoder.__module__, "ConditionEncoder"],
            "_class_name": DiffHDRPipeline.__name__}


def write_shims(folder: str | Path) -> None:
    """Turn a saved pipeline folder into the shim layout: write the shims and point ``model_index.json`` at them
    (again on a folder already in it: the same files)."""
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


@contextmanager
def plain_view(folder: str | Path) -> Iterator[Path]:
    """``folder`` itself if it is in the plain layout; for the shim layout, a temporary folder that links to its
    component folders next to a ``model_index.json`` naming the installed modules, so that diffusers' loader
    imports nothing from the folder (it would otherwise need ``trust_remote_code`` to run the shims)."""
    folder = Path(folder)
    index = json.loads((folder / "model_index.json").read_text())
    if not isinstance(index.get("_class_name"), list):
        yield folder
        return
    plain = _installed_modules()
    for key, (_, module, class_name) in SHIMS.items():
        if index.get(key) == [module, class_name]:
            index[key] = plain[key]
    with tempfile.TemporaryDirectory(prefix="diffhdr-view-") as view:
        view = Path(view)
        for entry in folder.iterdir():
            if entry.name != "model_index.json" and entry.suffix != ".py":
                try:
                    (view / entry.name).symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
                except OSError:  # no symlinks (e.g. Windows without developer mode): copy instead
                    (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, view / entry.name)
        (view / "model_index.json").write_text(json.dumps(index))
        yield view


def ensure_repo(repo_id: str, *, token: str | None = None, private: bool | None = None) -> str:
    """Create the Hub model repo ``repo_id`` unless it exists; its full id. Training calls it before it starts, so
    that a missing login fails in a moment, not after the run. Raises :class:`OutputError` when the Hub cannot be
    reached or the repo cannot be created."""
    from huggingface_hub import create_repo
    from huggingface_hub.errors import HTTPError

    try:
        return create_repo(repo_id, exist_ok=True, private=private, token=token).repo_id
    except (HTTPError, OSError, ValueError) as error:
        raise OutputError(f"cannot create or reach the Hub repo {repo_id!r}: {' '.join(str(error).split())}; log in "
                          "with `hf auth login` and retry.") from error


def push_folder(folder: str | os.PathLike, repo_id: str, *, token: str | None = None, private: bool | None = None,
                commit_message: str | None = None, create_pr: bool = False,
                ignore_patterns: Sequence[str] | None = None):
    """Upload a saved pipeline folder to a Hub model repo (created if needed), in the shim layout.

    The one upload path of the library: [`~DiffHDRPipeline.save_pretrained`] with ``push_to_hub=True``,
    [`~DiffHDRPipeline.push_to_hub`], ``diffhdr convert-original --push-to-hub`` and the training script's
    ``--push_to_hub`` all end here. The folder is uploaded as it is, its ``README.md`` (the model card written on
    save) included; the shims are written into it first (:func:`write_shims`), so the local folder and the repo
    hold the same files. Files matching ``ignore_patterns`` (e.g. ``["checkpoint-*", "logs/*"]``) stay local.

    Returns:
        The ``CommitInfo`` of the upload (its ``commit_url``, ``oid`` and, with ``create_pr``, ``pr_url``).

    Raises:
        OutputError: the repo cannot be created or written (no network, no login, no permission).
    """
    from huggingface_hub import upload_folder
    from huggingface_hub.errors import HTTPError  # the HTTP client's base error (connection failures too)

    write_shims(folder)
    repo_id = ensure_repo(repo_id, token=token, private=private)
    try:
        return upload_folder(repo_id=repo_id, folder_path=folder, token=token, create_pr=create_pr,
                             commit_message=commit_message or "Upload DiffHDRPipeline",
                             ignore_patterns=list(ignore_patterns) if ignore_patterns else None)
    except (HTTPError, OSError, ValueError) as error:
        raise OutputError(f"could not push {folder} to the Hub repo {repo_id!r}: {error}. The local folder is "
                          "complete; log in with `hf auth login` and retry, or upload it yourself.") from error
