"""Training and evaluation data: the Kalantari (SIG17) dataset through HF ``datasets``, crops and
augmentation for training, the seeded training stream, and a synthesiser of realistic exposure
brackets with ground truth. Scene folders are scanned by :func:`diffhdr_diffusers.io.scan_scene`."""

from .crops import CROP_FEATURES, SeededCropDataset, collate_samples, prepare_crops
from .decode import decode_ldr, decode_radiance
from .kalantari import FEATURES, check_brightness_order, load_kalantari
from .sampling import StreamBatchSampler, crop_seed, derive_seed
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
    "SeededCropDataset",
    "StreamBatchSampler",
    "SyntheticScene",
    "TrainingTransform",
    "check_brightness_order",
    "collate_samples",
    "crop_seed",
    "decode_ldr",
    "decode_radiance",
    "decode_scene",
    "derive_seed",
    "find_scenes",
    "load_kalantari",
    "prepare_crops",
    "synthesize_scene",
    "synthesize_scenes",
    "write_scene",
]
