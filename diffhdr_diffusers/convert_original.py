"""Convert the authors' released DiffHDR checkpoint into a :class:`DiffHDRPipeline` folder.

The original training script saves one ``torch.save`` dict (``Hdr_ddpm3000000.pth.tar`` for the release):
``epoch``, ``step``, ``ddpm_state_dict`` and ``cnn_state_dict`` (``module.``-prefixed by DataParallel),
``optimizer`` (Adam), ``ema_helper`` (the UNet's EMA shadow, unprefixed), and ``params``/``config``
(``argparse.Namespace`` objects). It is read with ``weights_only=True``: only ``argparse.Namespace`` is
allow-listed on top of what PyTorch already accepts, so nothing in the file can run code.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from .errors import ModelLoadError, OutputError
from .models import ConditionEncoder, DiffHDRUNet
from .original_release import (
    ORIGINAL_CHECKPOINT_NAME,
    ORIGINAL_CHECKPOINT_URL,
    ORIGINAL_REPOSITORY,
    WEIGHT_CHOICES,
)
from .pipelines.model_card import render_model_card
from .schedulers import original_ddim_scheduler

# The sampler settings of the authors' published results (their README: T=25, p=512, r=64), with
# condition features computed per window as their sampler does.
RELEASE_SETTINGS = {
    "default_num_inference_steps": 25,
    "default_patch_size": 512,
    "default_stride": 64,
    "default_condition_per_window": True,
}

# Original AHDR module names -> ConditionEncoder module names.
CONDITION_KEY_MAP = {
    "conv1": "exposure_conv",
    "conv2": "fusion_conv",
    "att11": "attention.0.0",
    "att12": "attention.0.2",
    "att31": "attention.1.0",
    "att32": "attention.1.2",
}

REQUIRED_KEYS = ("ddpm_state_dict", "cnn_state_dict", "config")
_SAFE_GLOBALS = [argparse.Namespace]
_MAX_LISTED_KEYS = 12


@dataclass
class OriginalCheckpoint:
    """The parts of an original DiffHDR checkpoint that a pipeline needs, prefixes already stripped."""

    path: Path
    config: dict
    unet_weights: dict[str, torch.Tensor]
    ema_weights: dict[str, torch.Tensor] | None
    condition_weights: dict[str, torch.Tensor]
    step: int | None = None
    epoch: int | None = None

    def unet_config(self) -> dict:
        """:class:`DiffHDRUNet` arguments from the checkpoint's ``config.model`` and ``config.data``."""
        model, data = _section(self.config, "model", self.path), _section(self.config, "data", self.path)
        scale = _weight(self.unet_weights, "SFT_layer.SFT_scale_conv0.weight", self.path)
        try:
            return {
                "sample_size": int(data["image_size"]),
                "in_channels": int(model["in_channels"]),
                "out_channels": int(model["out_ch"]),
                "ch": int(model["ch"]),
                "ch_mult": tuple(int(m) for m in model["ch_mult"]),
                "num_res_blocks": int(model["num_res_blocks"]),
                "attn_resolutions": tuple(int(r) for r in model["attn_resolutions"]),
                "dropout": float(model["dropout"]),
                "resamp_with_conv": bool(model["resamp_with_conv"]),
                "norm_num_groups": 32,  # hard-coded in the original Normalize()
                # The original SFT layer's widths are constructor constants, not config: read them off the weights.
                "condition_channels": int(scale.shape[1]),
                "dfa_hidden_channels": int(scale.shape[0]),
            }
        except (KeyError, TypeError, ValueError) as error:
            raise ModelLoadError(f"{self.path}: the checkpoint's config.model/config.data lacks or garbles {error}; "
                                 "it is not a DiffHDR checkpoint, or one saved by a modified training script.") from error

    def condition_encoder_config(self) -> dict:
        """:class:`ConditionEncoder` arguments; the original AHDR always fuses 3 exposures around the middle one."""
        exposure_conv = _weight(self.condition_weights, "conv1.weight", self.path)
        return {"num_exposures": 3, "reference_index": 1, "exposure_channels": int(exposure_conv.shape[1]),
                "num_features": int(exposure_conv.shape[0])}

    def scheduler(self) -> DDIMScheduler:
        """The paper's DDIM sampler, on the beta schedule the checkpoint was trained with."""
        diffusion = self.config.get("diffusion")
        scheduler = original_ddim_scheduler()
        if diffusion is None:
            return scheduler
        diffusion = _as_dict(diffusion)
        schedule = diffusion.get("beta_schedule", "linear")
        start, end = float(diffusion.get("beta_start", 1e-4)), float(diffusion.get("beta_end", 0.02))
        steps = int(diffusion.get("num_diffusion_timesteps", 1000))
        if schedule == "linear":
            betas = np.linspace(start, end, steps, dtype=np.float64)
        elif schedule == "quad":
            betas = np.linspace(start**0.5, end**0.5, steps, dtype=np.float64) ** 2
        else:
            raise ModelLoadError(f"{self.path}: beta schedule {schedule!r} is not supported by the converter "
                                 "(only 'linear', the paper's, and 'quad').")
        if (schedule, start, end, steps) == ("linear", 1e-4, 0.02, 1000):
            return scheduler
        return DDIMScheduler.from_config(scheduler.config, num_train_timesteps=steps, beta_schedule=schedule,
                                         beta_start=start, beta_end=end,
                                         trained_betas=betas.astype(np.float32).tolist())


def _as_dict(value) -> dict:
    """A config namespace (or dict) as a nested dict."""
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, dict):
        return {key: _as_dict(item) if isinstance(item, (argparse.Namespace, dict)) else item
                for key, item in value.items()}
    raise TypeError(f"expected a namespace or dict, got {type(value).__name__}")


def _section(config: dict, name: str, path: Path) -> dict:
    section = config.get(name)
    if not isinstance(section, dict):
        raise ModelLoadError(f"{path}: the checkpoint's config has no '{name}' section; it is not a DiffHDR "
                             "checkpoint saved by the original train_diffusion.py.")
    return section


def _weight(weights: dict[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in weights:
        raise ModelLoadError(f"{path}: the checkpoint has no '{key}' tensor, so it is not from the DiffHDR "
                             "architecture (a UNet with an SFT_layer and an AHDR condition network).")
    return weights[key]


def _listing(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    return shown + (f" ... ({len(keys) - _MAX_LISTED_KEYS} more)" if len(keys) > _MAX_LISTED_KEYS else "")


def _strip_prefix(weights, name: str, path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a state dict, without the ``module.`` prefix that DataParallel adds."""
    if not isinstance(weights, dict) or not weights:
        raise ModelLoadError(f"{path}: '{name}' is not a non-empty state dict; the file is not a DiffHDR checkpoint.")
    not_tensors = [key for key, value in weights.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise ModelLoadError(f"{path}: '{name}' holds non-tensor entries: {_listing(map(str, not_tensors))}.")
    prefixed = [key.startswith("module.") for key in weights]
    if all(prefixed):
        return {key[len("module."):]: value for key, value in weights.items()}
    if any(prefixed):
        raise ModelLoadError(f"{path}: '{name}' mixes 'module.'-prefixed and plain keys; the file was edited or "
                             "is not a DiffHDR checkpoint.")
    return dict(weights)


def _torch_load(path: Path):
    """``torch.load`` with ``weights_only=True``; every failure becomes a :class:`ModelLoadError`."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such checkpoint file. Download {ORIGINAL_CHECKPOINT_NAME} from "
                             f"{ORIGINAL_CHECKPOINT_URL} and pass its path.")
    is_zip = zipfile.is_zipfile(path)
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            # mmap keeps the optimizer state (half the file) on disk; legacy (non-zip) files cannot be mapped.
            return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        message = str(error)
        if "Unsupported global" in message or "Weights only load failed" in message:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", message)
            detail = f" (it needs {found.group(1)})" if found else ""
            raise ModelLoadError(
                f"{path}: refusing to unpickle it: it contains Python objects that a DiffHDR checkpoint does not"
                f"{detail}. Only tensors, containers and argparse.Namespace are accepted, because unpickling "
                "anything else can run arbitrary code. Check that this is the authors' checkpoint."
            ) from error
        raise ModelLoadError(f"{path}: not a PyTorch checkpoint ({message[:200]}). Pass the authors' "
                             f"{ORIGINAL_CHECKPOINT_NAME}.") from error
    except Exception as error:
        message = (str(error).splitlines() or [""])[0].split(". This is")[0][:160]
        message = f"{type(error).__name__}: {message}" if message else type(error).__name__
        with open(path, "rb") as handle:
            starts_like_zip = handle.read(2) == b"PK"
        if not is_zip and starts_like_zip:
            reason = "it is truncated (an incomplete download?)"
        elif is_zip or isinstance(error, EOFError) or "central directory" in message:
            reason = "it is truncated or corrupt"
        else:
            reason = "it is not a PyTorch checkpoint"
        raise ModelLoadError(f"{path}: cannot read the checkpoint: {reason} ({message}). Download "
                             f"{ORIGINAL_CHECKPOINT_NAME} again from {ORIGINAL_CHECKPOINT_URL}.") from error


def load_original_checkpoint(path: str | Path) -> OriginalCheckpoint:
    """Read an original DiffHDR training checkpoint safely and check that it has the expected parts."""
    path = Path(path)
    content = _torch_load(path)
    if not isinstance(content, dict):
        raise ModelLoadError(f"{path}: holds a {type(content).__name__}, not a DiffHDR training checkpoint "
                             f"(a dict with {', '.join(REQUIRED_KEYS)}).")
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise ModelLoadError(f"{path}: not a DiffHDR checkpoint: it lacks {', '.join(missing)} (it has "
                             f"{_listing(map(str, content))}). Pass the authors' {ORIGINAL_CHECKPOINT_NAME}.")
    try:
        config = _as_dict(content["config"])
    except TypeError as error:
        raise ModelLoadError(f"{path}: its 'config' is not a namespace ({error}).") from error
    ema = content.get("ema_helper")
    return OriginalCheckpoint(
        path=path,
        config=config,
        unet_weights=_strip_prefix(content["ddpm_state_dict"], "ddpm_state_dict", path),
        ema_weights=_strip_prefix(ema, "ema_helper", path) if ema else None,
        condition_weights=_strip_prefix(content["cnn_state_dict"], "cnn_state_dict", path),
        step=content.get("step"),
        epoch=content.get("epoch"),
    )


def check_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: str, path: Path) -> None:
    """Fail unless ``weights`` fill ``module`` exactly: every source tensor used, every target filled, shapes equal."""
    target = module.state_dict()
    unused, unfilled = set(weights) - set(target), set(target) - set(weights)
    shared = set(weights) & set(target)
    wrong_shape = [f"{key} {tuple(weights[key].shape)} vs {tuple(target[key].shape)}"
                   for key in shared if weights[key].shape != target[key].shape]
    not_float = [key for key in shared if not weights[key].is_floating_point()]
    problems = []
    if unused:
        problems.append(f"unmapped source tensors: {_listing(unused)}")
    if unfilled:
        problems.append(f"target tensors with no source: {_listing(unfilled)}")
    if wrong_shape:
        problems.append(f"shape mismatches (checkpoint vs config): {_listing(wrong_shape)}")
    if not_float:
        problems.append(f"non-float tensors: {_listing(not_float)}")
    if problems:
        raise ModelLoadError(f"{path}: '{source}' does not match the {type(module).__name__} built from the "
                             "checkpoint's own config, so it is from a different architecture; "
                             + "; ".join(problems) + ".")


def fill_module(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: str, path: Path) -> None:
    """Copy ``weights`` into ``module`` after :func:`check_weights`."""
    check_weights(module, weights, source, path)
    module.load_state_dict(weights, strict=True)


def build_pipeline(checkpoint: OriginalCheckpoint, weights: str = "live"):
    """A :class:`DiffHDRPipeline` holding the checkpoint's weights and the release's sampler settings."""
    from .pipelines import DiffHDRPipeline

    if weights not in WEIGHT_CHOICES:
        raise ModelLoadError(f"weights must be one of {', '.join(WEIGHT_CHOICES)}, got {weights!r}.")
    unet = DiffHDRUNet(**checkpoint.unet_config())
    condition_encoder = ConditionEncoder(**checkpoint.condition_encoder_config())
    if weights == "ema":
        if checkpoint.ema_weights is None:
            raise ModelLoadError(f"{checkpoint.path}: has no 'ema_helper' weights; convert with --weights live.")
        # The live weights must fit too: they tell that the EMA shadow belongs to this architecture.
        check_weights(unet, checkpoint.unet_weights, "ddpm_state_dict", checkpoint.path)
        fill_module(unet, checkpoint.ema_weights, "ema_helper", checkpoint.path)
    else:
        fill_module(unet, checkpoint.unet_weights, "ddpm_state_dict", checkpoint.path)
    renamed = {}
    for key, value in checkpoint.condition_weights.items():
        module, _, parameter = key.rpartition(".")
        renamed[f"{CONDITION_KEY_MAP.get(module, module)}.{parameter}"] = value
    fill_module(condition_encoder, renamed, "cnn_state_dict", checkpoint.path)
    return DiffHDRPipeline(unet=unet.eval(), condition_encoder=condition_encoder.eval(),
                           scheduler=checkpoint.scheduler(), **RELEASE_SETTINGS)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


CITATION = """```
@article{yan2023towards,
  title={Towards high-quality HDR deghosting with conditional diffusion models},
  author={Yan, Qingsen and Hu, Tao and Sun, Yuan and Tang, Hao and Zhu, Yu and Dong, Wei and Van Gool, Luc and Zhang, Yanning},
  journal={IEEE Transactions on Circuits and Systems for Video Technology},
  year={2023}
}
```"""


def model_card(checkpoint: OriginalCheckpoint, weights: str, sha256: str, folder: Path,
               repo_id: str | None = None) -> str:
    """A Hugging Face model card (README.md) for a converted checkpoint saved in ``folder``."""
    used = ("the weights the authors' evaluation used" if weights == "live"
            else "the EMA shadow; the authors' evaluation used the live weights")
    description = (
        "The weights of DiffHDR (\"Towards High-quality HDR Deghosting with Conditional Diffusion Models\", Yan et "
        f"al., IEEE TCSVT 2023, [arXiv:2311.00932](https://arxiv.org/abs/2311.00932)) released by the authors at "
        f"{ORIGINAL_REPOSITORY}, converted to a `DiffHDRPipeline` of the `diffhdr_diffusers` library (`pip install "
        "diffhdr-diffusers`) by `diffhdr convert-original`. The model merges a bracket of three LDR exposures "
        "(short, medium, long) into one linear HDR image, aligned to the medium exposure. It was trained on the "
        "Kalantari (SIG17) dataset.")
    sampler = (
        "The pipeline's defaults reproduce the sampler of the paper's published results: DDIM with eta 0 over 25 "
        "steps, overlapping 512x512 windows with stride 64 whose noise estimates are averaged, and condition "
        "features computed per window (`default_condition_per_window=True`). The output is clamped to [0, 1] in "
        "the mu-law domain (mu = 5000) and returned both as mu-law values and as linear radiance.")
    license_text = ("The original repository states no license; these weights carry whatever terms the authors set. "
                    "Cite the paper when you use them:\n\n" + CITATION)
    return render_model_card(
        repo_id, folder=folder, title="DiffHDR (authors' weights, converted to diffusers)", description=description,
        license="other", license_name="unspecified", license_link=ORIGINAL_REPOSITORY,
        training={"checkpoint": f"`{checkpoint.path.name}`", "sha256": f"`{sha256}`",
                  "training step": f"{checkpoint.step} (epoch {checkpoint.epoch})",
                  "UNet weights": f"`{weights}` ({used})"},
        training_title="Source", sections={"Sampler": sampler, "License": license_text},
        tags=["hdr-deghosting", "multi-exposure-fusion", "diffusion", "diffhdr-diffusers"])


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
        from .pipelines.hub_layout import push_folder

        push_folder(output_dir, push_to_hub, commit_message="Add DiffHDR weights converted with diffhdr convert-original")
    return output_dir
