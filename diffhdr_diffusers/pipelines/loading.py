"""Saving and loading of [`DiffHDRPipeline`]: diffusers' own loaders behind a thin wrapper.

Saving writes diffusers' layout plus the re-export shims ([`~pipelines.hub_layout`]), so that a saved folder
loads the same way everywhere: with [`DiffHDRPipeline.from_pretrained`] (which runs no code from the folder) and
with diffusers' generic `DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`, locally as from the
Hub. The wrapper maps "no path" to the bundled demo model, refuses unknown keyword arguments and foreign Python
files, and turns load failures into one-line [`~errors.ModelLoadError`]s; saving adds a filled model card and an
optional push that keeps it.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from diffusers.utils import logging as diffusers_logging

from ..errors import InputError, ModelLoadError, OutputError
from . import hub_layout
from .model_card import write_model_card

if TYPE_CHECKING:
    from .pipeline_diffhdr import DiffHDRPipeline

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"

# Options of diffusers' `DiffusionPipeline.from_pretrained` (0.42); any other keyword argument must be a
# component or a setting of the pipeline, or loading fails instead of ignoring it.
LOADING_OPTIONS = frozenset({
    "cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "dtype", "torch_dtype",
    "custom_pipeline", "custom_revision", "provider", "sess_options", "provider_options", "device_map", "max_memory",
    "offload_folder", "offload_state_dict", "low_cpu_mem_usage", "variant", "use_safetensors", "use_onnx",
    "load_connected_pipeline", "quantization_config", "use_flashpack", "disable_mmap",
})
HUB_DOWNLOAD_OPTIONS = ("revision", "token", "cache_dir", "local_files_only", "force_download")
PUSH_OPTIONS = ("token", "private", "commit_message", "create_pr")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class DiffHDRLoadingMixin:
    """The loaders of [`DiffHDRPipeline`] (mixed in before [`DiffusionPipeline`])."""

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True,
                        variant: str | None = None, max_shard_size: int | str | None = None,
                        push_to_hub: bool = False, model_card: dict | None = None, **kwargs):
        r"""
        Save with [`~DiffusionPipeline.save_pretrained`], add the re-export shims
        ([`~pipelines.hub_layout.write_shims`]) so that diffusers' generic loader reads the folder too, write a
        model card, and optionally push.

        Args:
            save_directory (`str` or `os.PathLike`): the folder to write.
            safe_serialization, variant, max_shard_size: as in [`~DiffusionPipeline.save_pretrained`].
            push_to_hub (`bool`, defaults to `False`):
                Also upload the folder with [`~pipelines.hub_layout.push_folder`] to `repo_id` (default: the
                folder's name). Unlike diffusers' own push, this keeps the model card written here.
            model_card (`dict`, *optional*): fields of the model card (``README.md``) written into the folder
                when it has none: ``training``, ``metrics``, ``metrics_note``, ``limitations``, ``license``, ...
                (see [`~pipelines.model_card.render_model_card`]). An existing ``README.md`` is kept.
            kwargs: ``repo_id``, ``token``, ``private``, ``commit_message`` and ``create_pr`` for the push.

        Returns:
            The ``CommitInfo`` of the upload with `push_to_hub`, else `None`.
        """
        repo_id = kwargs.pop("repo_id", None)
        unknown = sorted(set(kwargs) - set(PUSH_OPTIONS))
        if unknown:
            raise InputError(f"save_pretrained got unexpected keyword argument(s) {', '.join(unknown)}; it accepts "
                             f"repo_id, {', '.join(PUSH_OPTIONS)} besides its named arguments.")
        super().save_pretrained(save_directory, safe_serialization=safe_serialization, variant=variant,
                                max_shard_size=max_shard_size)
        hub_layout.write_shims(save_directory)
        if push_to_hub and repo_id is None:
            repo_id = Path(save_directory).name
        write_model_card(save_directory, repo_id=repo_id, **(model_card or {}))
        if push_to_hub:
            return hub_layout.push_folder(save_directory, repo_id, **kwargs)
        return None

    def push_to_hub(self, repo_id: str, commit_message: str | None = None, private: bool | None = None,
                    token: str | None = None, create_pr: bool = False, safe_serialization: bool = True,
                    variant: str | None = None, model_card: dict | None = None):
        r"""
        Upload the pipeline and a filled model card to a Hub repo (created if needed).

        Saves into a temporary folder with [`~DiffHDRPipeline.save_pretrained`] and uploads it with
        [`~pipelines.hub_layout.push_folder`]. Unlike [`~DiffusionPipeline.push_to_hub`], which replaces the saved
        ``README.md`` with a generic card, the card written from `model_card` is uploaded (it replaces the repo's).

        Returns:
            The ``CommitInfo`` of the upload.
        """
        with tempfile.TemporaryDirectory() as folder:
            try:
                return self.save_pretrained(folder, safe_serialization=safe_serialization, variant=variant,
                                            push_to_hub=True, model_card=model_card, repo_id=repo_id, token=token,
                                            private=private, commit_message=commit_message, create_pr=create_pr)
            except OutputError as error:  # its message names the temporary folder, which is gone by now
                cause = error.__cause__ or error
                raise OutputError(f"could not push the pipeline to the Hub repo {repo_id!r}: "
                                  f"{' '.join(str(cause).split())}; log in with `hf auth login` and retry, or "
                                  "save_pretrained(FOLDER, push_to_hub=True) to keep a local copy.") from cause

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None,
                        **kwargs) -> "DiffHDRPipeline":
        r"""
        Load a saved DiffHDR pipeline with diffusers' [`~DiffusionPipeline.from_pretrained`], running no code from
        the folder or repo.

        Every option of diffusers' loader works as there: `dtype` (or the deprecated `torch_dtype`), `variant`,
        `device_map`, `use_safetensors`, `low_cpu_mem_usage`, `revision`, `token`, `cache_dir`, ...; so do
        components (`unet=`, `condition_encoder=`, `scheduler=`) and settings of [`DiffHDRPipeline`]
        (`default_num_inference_steps=`, ...). Any other keyword argument is an error, not ignored.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`, *optional*):
                A pipeline folder or a Hub repo id, as [`~DiffHDRPipeline.save_pretrained`] writes it (with the
                shims) or in diffusers' plain layout (see [`~pipelines.hub_layout`]). `None` loads the demo model bundled with the package.
            trust_remote_code (`bool`, defaults to `False`):
                Accept a folder with Python files other than our re-export shims. They are still never run:
                this loader does not pass `trust_remote_code` on to diffusers.

        Raises:
            [`~errors.ModelLoadError`]: one line saying why the folder, repo or an argument is unusable.
        """
        trust_remote_code = kwargs.pop("trust_remote_code", False)
        settings = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(kwargs) - settings - LOADING_OPTIONS)
        if unknown:
            raise ModelLoadError(
                f"from_pretrained got unexpected keyword argument(s) {', '.join(unknown)}; it accepts the options of "
                f"diffusers' DiffusionPipeline.from_pretrained and the pipeline's {', '.join(sorted(settings))}.")
        if pretrained_model_name_or_path is None:
            folder = DEFAULT_MODEL_DIR
            if not (folder / "model_index.json").is_file():
                raise ModelLoadError(f"the bundled demo model is missing from {folder}; reinstall "
                                     "diffhdr-diffusers or pass a model path.")
        elif Path(pretrained_model_name_or_path).is_dir():
            folder = Path(pretrained_model_name_or_path)
        else:
            folder = cls._download(str(pretrained_model_name_or_path), kwargs)
        if not (folder / "model_index.json").is_file():
            if (folder / "unet").is_dir() and (folder / "optimizer.bin").is_file():
                raise ModelLoadError(f"{folder} is a training checkpoint, not a pipeline folder: a run exports its "
                                     "pipeline into its output folder when it ends. To load a checkpoint, copy that "
                                     "pipeline folder and put the checkpoint's unet_ema/ and condition_encoder_ema/ "
                                     "(or unet/ and condition_encoder/) in it as unet/ and condition_encoder/.")
            raise ModelLoadError(f"{folder} is not a DiffHDR pipeline folder: it has no model_index.json. "
                                 "Pass a folder written by save_pretrained or `diffhdr convert-original`.")
        untrusted = hub_layout.untrusted_code(folder)
        if untrusted and not trust_remote_code:
            raise ModelLoadError(f"{folder} contains Python files that are not diffhdr_diffusers shims: "
                                 f"{', '.join(untrusted)}. Remove them, or pass trust_remote_code=True "
                                 "(--trust-remote-code on the command line); they are never executed by this loader.")
        # Three small components load in a moment: diffusers' "Loading pipeline components" bar would only
        # clutter the command line's output (and its one-line errors).
        progress_bar = diffusers_logging.is_progress_bar_enabled()
        diffusers_logging.disable_progress_bar()
        try:
            with hub_layout.plain_view(folder) as plain:
                pipeline = super().from_pretrained(plain, **kwargs)
        except (OSError, ValueError, KeyError, AttributeError, RuntimeError, TypeError) as error:
            raise ModelLoadError(f"could not load the DiffHDR pipeline in {folder}: {_one_line(error)}") from error
        finally:
            if progress_bar:
                diffusers_logging.enable_progress_bar()
        pipeline.register_to_config(_name_or_path=str(pretrained_model_name_or_path or folder))
        return pipeline

    @staticmethod
    def _download(repo_id: str, kwargs: dict) -> Path:
        """Fetch a Hub repo (the whole snapshot) with the download options in ``kwargs``, which are removed."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

        options = {key: kwargs.pop(key) for key in HUB_DOWNLOAD_OPTIONS if key in kwargs}
        try:
            return Path(snapshot_download(repo_id, **options))
        except (HFValidationError, HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise ModelLoadError(f"{repo_id!r} is neither a local pipeline folder nor a reachable Hub repo: "
                                 f"{_one_line(error)}") from error
