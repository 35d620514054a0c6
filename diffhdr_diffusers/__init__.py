"""diffhdr_diffusers: ghost-free HDR merging of exposure brackets with DiffHDR on Hugging Face diffusers."""

__version__ = "0.1.0"

from .errors import DiffHDRError
from .models import ConditionEncoder, DiffHDRUNet, DiffHDRUNetOutput
from .pipelines import DiffHDRPipeline, DiffHDRPipelineOutput

__all__ = [
    "ConditionEncoder",
    "DiffHDRError",
    "DiffHDRPipeline",
    "DiffHDRPipelineOutput",
    "DiffHDRUNet",
    "DiffHDRUNetOutput",
    "__version__",
]
