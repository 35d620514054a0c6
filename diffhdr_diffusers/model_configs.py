"""Named model configurations: the paper's, a small one that trains on a CPU, and aligned variants.

An ``aligned-*`` config conditions on the aligned bracket plus the flow-merge prior and its confidence
(:mod:`diffhdr_diffusers.prior`) and samples the residual around the prior; its ``pipeline`` section
holds the pipeline settings that make it so (``alignment``), which a saved pipeline carries.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError
from .prior import prior_channels

MODEL_CONFIGS: dict[str, dict[str, dict]] = {
    # The original configs/hdr.yml: about 75 M UNet parameters, 0.56 M in the condition encoder.
    "paper": {
        "unet": dict(sample_size=128, ch=128, ch_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=1, attn_resolutions=(16,),
                     dropout=0.0, condition_channels=64),
        "condition_encoder": dict(num_exposures=3, reference_index=1, exposure_channels=6, num_features=64),
    },
    # About 1.7 M parameters (7 MB of float32 safetensors); 64-pixel training crops.
    "small": {
        "unet": dict(sample_size=64, ch=32, ch_mult=(1, 2, 2, 2), num_res_blocks=1, attn_resolutions=(16,),
                     dropout=0.0, condition_channels=32),
        "condition_encoder": dict(num_exposures=3, reference_index=1, exposure_channels=6, num_features=32),
    },
    # For tests only: builds and runs in milliseconds.
    "tiny": {
        "unet": dict(sample_size=32, ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(16,),
                     dropout=0.0, condition_channels=16),
        "condition_encoder": dict(num_exposures=3, reference_index=1, exposure_channels=6, num_features=16),
    },
}
# Aligned variants: the same networks, the condition encoder also reading the prior and its confidence.
for _name in ("small", "tiny"):
    MODEL_CONFIGS[f"aligned-{_name}"] = {
        "unet": MODEL_CONFIGS[_name]["unet"],
        "condition_encoder": {**MODEL_CONFIGS[_name]["condition_encoder"], "prior_channels": prior_channels(3)},
        "pipeline": {"alignment": {}},
    }
# Aligned variants for any bracket of 2 to 9 frames, one set of weights: every frame through the shared conv with its
# confidence and EV, a shared gate, mean and max over the non-reference frames (ConditionEncoder.frame_pooling).
NFRAME_ENCODER = dict(num_exposures=9, reference_index=None, exposure_channels=6, prior_channels=3,
                      frame_pooling="mean_max")
for _name in ("small", "tiny"):
    MODEL_CONFIGS[f"aligned-nframe-{_name}"] = {
        "unet": MODEL_CONFIGS[_name]["unet"],
        "condition_encoder": {**NFRAME_ENCODER, "num_features": MODEL_CONFIGS[_name]["condition_encoder"]["num_features"]},
        "pipeline": {"alignment": {}},
    }
# A wider one for the capacity pilot (training/README.md): twice aligned-nframe-small's UNet width.
MODEL_CONFIGS["aligned-nframe-medium"] = {
    "unet": {**MODEL_CONFIGS["small"]["unet"], "ch": 64, "condition_channels": 48},
    "condition_encoder": {**NFRAME_ENCODER, "num_features": 48},
    "pipeline": {"alignment": {}},
}


def resolve_model_config(name_or_path: str) -> dict[str, dict]:
    """A named config, or a JSON file with ``unet`` and optional ``condition_encoder`` and ``pipeline`` sections."""
    if name_or_path in MODEL_CONFIGS:
        return MODEL_CONFIGS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(f"model config {name_or_path!r} is neither one of {', '.join(MODEL_CONFIGS)} nor a file.")
    try:
        config = json.loads(path.read_text())
        return {"unet": dict(config["unet"]), "condition_encoder": dict(config.get("condition_encoder", {})),
                "pipeline": dict(config.get("pipeline", {}))}
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a model config ({error}); it needs a 'unet' object and optionally "
                         "'condition_encoder'.") from error


def build_models(name_or_path: str):
    """Fresh, randomly initialised ``(unet, condition_encoder)`` for a config.

    A model with a prior (``prior_channels > 0``) starts with a zero output convolution: before training
    it predicts a zero residual, so its merge is exactly the flow-merge prior, and training starts there.
    """
    from .models import ConditionEncoder, DiffHDRUNet

    config = resolve_model_config(name_or_path)
    unet, condition_encoder = DiffHDRUNet(**config["unet"]), ConditionEncoder(**config["condition_encoder"])
    if condition_encoder.config.prior_channels:
        for parameter in unet.conv_out.parameters():
            parameter.data.zero_()
    return unet, condition_encoder


def pipeline_settings(name_or_path: str) -> dict:
    """The pipeline settings a config implies (``alignment`` for aligned variants); ``{}`` for the paper's."""
    return dict(resolve_model_config(name_or_path).get("pipeline", {}))
