from .condition_encoder import ConditionEncoder
from .unet import DiffHDRUNet, DiffHDRUNetOutput

__all__ = ["ConditionEncoder", "DiffHDRUNet", "DiffHDRUNetOutput"]
