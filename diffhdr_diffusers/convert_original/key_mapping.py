"""Key mapping from the original modules to ours, and the pipeline built from a checkpoint.

The UNet's parameter names follow the original ``DiffusionUNet`` one to one (so its state dict maps
unchanged); the condition network's AHDR module names are renamed by :data:`CONDITION_KEY_MAP`. Every
tensor must be used and every parameter filled, with equal shapes, or the conversion fails naming the keys.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelLoadError
from ..models import ConditionEncoder, DiffHDRUNet
from ..original_release import WEIGHT_CHOICES
from .reading import OriginalCheckpoint, _listing

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
    from ..pipelines import DiffHDRPipeline

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
