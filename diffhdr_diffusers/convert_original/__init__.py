"""Convert the authors' released DiffHDR checkpoint into a :class:`DiffHDRPipeline` folder.

Three steps, one module each: :mod:`.reading` reads the checkpoint without running code from it,
:mod:`.key_mapping` maps its tensors onto our modules and builds the pipeline with the release's sampler
settings, and :mod:`.card` writes the model card. This module writes the folder, atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import ModelLoadError, OutputError
from ..original_release import WEIGHT_CHOICES
from .card import CITATION, model_card
from .key_mapping import CONDITION_KEY_MAP, RELEASE_SETTINGS, build_pipeline, check_weights, fill_module
from .reading import OriginalCheckpoint, file_sha256, load_original_checkpoint

__all__ = [
    "CITATION", "CONDITION_KEY_MAP", "RELEASE_SETTINGS", "OriginalCheckpoint", "build_pipeline", "check_weights",
    "convert_original_checkpoint", "file_sha256", "fill_module", "load_original_checkpoint", "model_card",
]


def _check_output_dir(output_dir: Path, overwrite: bool) -> None:
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} exists and is not a folder; choose a folder path for the pipeline.")
    if output_dir.is_dir() and any(output_dir.iterdir()):
        if not overwrite:
            raise OutputError(f"{output_dir} is not empty; pass --overwrite (overwrite=True) to replace it, "
                              "or choose a new folder.")
        if not (output_dir / "model_index.json").is_file():
            raise OutputError(f"{output_dir} is not empty and is not a pipeline folder (no model_index.json); "
                              "refusing to delete it even with --overwrite. Choose an empty or new folder.")


def _use_default_permissions(folder: Path) -> None:
    """Give the staged folder (0700 from mkdtemp, 0600 safetensors files) the modes of a plain mkdir/open."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_dir(staging: Path, output_dir: Path) -> None:
    """Move ``staging`` to ``output_dir``, replacing what was there only once the new folder is complete."""
    if output_dir.is_dir() and not any(output_dir.iterdir()):
        output_dir.rmdir()
    if output_dir.exists():
        backup = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.old-", dir=output_dir.parent))
        backup.rmdir()
        output_dir.rename(backup)
        staging.rename(output_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        staging.rename(output_dir)


def convert_original_checkpoint(ckpt_path: str | Path, output_dir: str | Path, weights: str = "live",
                                overwrite: bool = False, push_to_hub: str | None = None) -> Path:
    """Convert an original DiffHDR checkpoint into a pipeline folder with a model card.

    Args:
        ckpt_path: the authors' ``Hdr_ddpm3000000.pth.tar`` (or any checkpoint of the original training script).
        output_dir: folder to write; created if missing. A non-empty one needs ``overwrite``.
        weights: ``"live"`` (the weights of the published results) or ``"ema"`` (the EMA shadow of the UNet).
        overwrite: replace an existing pipeline folder.
        push_to_hub: also upload the folder to this Hub repo id.

    Returns:
        The output folder, loadable with ``DiffHDRPipeline.from_pretrained``.
    """
    output_dir = Path(output_dir)
    if weights not in WEIGHT_CHOICES:
        raise ModelLoadError(f"weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}.")
    _check_output_dir(output_dir, overwrite)
    checkpoint = load_original_checkpoint(ckpt_path)
    pipeline = build_pipeline(checkpoint, weights)
    sha256 = file_sha256(checkpoint.path)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.tmp-", dir=output_dir.parent))
    try:
        pipeline.save_pretrained(staging)
        (staging / "README.md").write_text(model_card(checkpoint, weights, sha256, staging, push_to_hub))
        _use_default_permissions(staging)
        _replace_dir(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if push_to_hub:
        from ..pipelines.hub_layout import push_folder

        push_folder(output_dir, push_to_hub, commit_message="Add DiffHDR weights converted with diffhdr convert-original")
    return output_dir
