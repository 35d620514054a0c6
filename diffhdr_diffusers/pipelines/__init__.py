from .image_processor import DiffHDRImageProcessor
from .pipeline_diffhdr import DiffHDRPipeline, DiffHDRPipelineOutput
from .tiling import WindowGrid, window_starts

__all__ = ["DiffHDRImageProcessor", "DiffHDRPipeline", "DiffHDRPipelineOutput", "WindowGrid", "window_starts"]
