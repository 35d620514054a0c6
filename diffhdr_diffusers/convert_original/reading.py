"""Reading an original DiffHDR training checkpoint, safely.

The original training script saves one ``torch.save`` dict (``Hdr_ddpm3000000.pth.tar`` for the release):
``epoch``, ``step``, ``ddpm_state_dict`` and ``cnn_state_dict`` (``module.``-prefixed by DataParallel),
``optimizer`` (Adam), ``ema_helper`` (the UNet's EMA shadow, unprefixed), and ``params``/``config``
(``argparse.Namespace`` objects). It is read with ``weights_only=True``: only ``argparse.Namespace`` is
allow-listed on top of what PyTorch already accepts, so nothing in the file can run code.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler

from ..errors import ModelLoadError
from ..original_release import ORIGINAL_CHECKPOINT_NAME, ORIGINAL_CHECKPOINT_URL
from ..schedulers import original_ddim_scheduler

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


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
