"""Training and evaluation data: the Kalantari (SIG17) dataset through HF ``datasets``, crops and
augmentation for training, and a synthesiser of realistic exposure brackets with ground truth."""

from .crops import CROP_FEATURES, prepare_crops
from .decode import decode_ldr, decode_radiance
from .kalantari import FEATURES, check_brightness_order, load_kalantari
from .scenes import SceneFiles, find_scenes
from .synth import (
    DEFAULT_EV_SETS,
    SyntheticScene,
    synthesize_scene,
    synthesize_scenes,
    write_scene,
)
from .transforms import EvaluationTransform, TrainingTransform, decode_scene

__all__ = [
    "CROP_FEATURES",
    "DEFAULT_EV_SETS",
    "FEATURES",
    "EvaluationTransform",
    "SceneFiles",
    "SyntheticScene",
    "TrainingTransform",
    "check_brightness_order",
    "decode_ldr",
    "decode_radiance",
    "decode_scene",
    "find_scenes",
    "load_kalantari",
    "prepare_crops",
    "synthesize_scene",
    "synthesize_scenes",
    "write_scene",
]
