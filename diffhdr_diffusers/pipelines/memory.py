"""Memory heuristics of [`~DiffHDRPipeline`]: how many windows one UNet call takes, and whether a merge fits.

The window batch is chosen from an explicit memory budget (the ``window_memory_budget`` argument of the
pipeline call), by a fixed rule when none is given: half the free memory of a CUDA device, and
:data:`CPU_WINDOW_BUDGET` on a CPU. Nothing process-wide changes it; a caller that tuned the C allocator
(:func:`~diffhdr_diffusers.allocator.reuse_freed_memory`, as the ``diffhdr`` command does) passes
:func:`~diffhdr_diffusers.allocator.cpu_window_budget` to get larger, faster CPU batches.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from ..errors import ResourceError
from .tiling import WindowGrid
from .window_features import ENCODER_BAND_PIXELS

# Activation bytes per window pixel per unit of base width, float32 eval-mode forward passes: peak RSS growth
# measured 58.5 (small config, 16 windows of 128^2) and 47.5 (paper, 2 windows of 128^2) by
# `benchmarks/bench_sampling.py --calibrate`, where attention is negligible.
ACTIVATION_BYTES_PER_PIXEL_CHANNEL = 60
# Transient bytes of the condition encoder per pixel per feature channel (float32): 44 for one pass over
# 1024x1536, 51 for one band of 2**18 pixels (`paper` encoder, `bench_sampling.py --calibrate`).
ENCODER_BYTES_PER_PIXEL_FEATURE = 52
# The CPU budget under glibc's default allocator, which maps every tensor over 32 MB afresh, so that larger
# batches run slower per window (by 21-27% for the `paper` config's 128-pixel windows in batches of 4-16
# against 1-2, `benchmarks/bench_window_batch.py`).
CPU_WINDOW_BUDGET = 128 << 20


def human_bytes(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def _itemsize(module: torch.nn.Module) -> int:
    return torch.finfo(module.dtype).bits // 8


def window_bytes(unet, patch_height: int, patch_width: int) -> int:
    """Rough peak activation memory of one window's pass through ``unet`` (a [`DiffHDRUNet`]), in bytes.

    Convolution activations grow with the window's pixels; self-attention adds its score matrix
    (scores and softmax, materialised on CPU), which grows with the square of its token count.
    """
    itemsize = _itemsize(unet)
    config = unet.config
    pixels = patch_height * patch_width
    convolution = ACTIVATION_BYTES_PER_PIXEL_CHANNEL * config.ch * pixels * itemsize // 4
    levels = [level for level in range(len(config.ch_mult)) if config.sample_size >> level in config.attn_resolutions]
    tokens = pixels >> (2 * min(levels, default=len(config.ch_mult) - 1))
    return convolution + 2 * tokens * tokens * itemsize


def default_memory_budget(device: torch.device) -> int:
    """The window-activation budget used when a call gives none: half the free memory of a CUDA device,
    :data:`CPU_WINDOW_BUDGET` elsewhere."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 2
    return CPU_WINDOW_BUDGET


def default_window_batch_size(unet, grid: WindowGrid, device: torch.device, memory_budget: int | None = None) -> int:
    """How many windows of ``grid`` to run at once on ``device`` so that activations stay within
    ``memory_budget`` bytes (:func:`default_memory_budget` when `None`); at least 1, at most the grid."""
    if memory_budget is None:
        memory_budget = default_memory_budget(device)
    return max(1, min(len(grid), memory_budget // window_bytes(unet, grid.patch_height, grid.patch_width)))


def check_memory(unet, condition_encoder, device: torch.device, batch: int, channels: int, height: int, width: int,
                 window_batch: int, grid: WindowGrid, per_window: bool) -> None:
    """Raise [`ResourceError`] if merging on a CPU ``device`` would need more memory than the host has free.

    ``height`` and ``width`` are the padded image size, ``channels`` those of the conditioning input. Counts
    the whole-image planes, the per-window condition bands (``per_window``) and the larger of the window
    batch's activations and the condition encoder's transient. Other devices are not checked; on a CUDA
    device the default window batch already follows the free device memory.
    """
    if device.type != "cpu":
        return
    itemsize = _itemsize(unet)
    features = condition_encoder.config.num_features
    image_planes = channels + 3 * 4 + features + 1  # conditioning, latents/noise/sum/next, features, coverage
    needed = batch * height * width * image_planes * itemsize
    if per_window:
        band = 4 * condition_encoder.receptive_radius * (grid.patch_height + grid.patch_width) // 2
        needed += batch * len(grid) * features * band * itemsize
    # The encoder runs in bands (encode_in_bands) before any window, so the larger transient counts.
    encoder_band = min(height * width, ENCODER_BAND_PIXELS) * ENCODER_BYTES_PER_PIXEL_FEATURE * features
    needed += batch * max(window_batch * window_bytes(unet, grid.patch_height, grid.patch_width),
                          encoder_band * itemsize // 4)
    import psutil

    available = psutil.virtual_memory().available
    if needed > available:
        raise ResourceError(
            f"merging a {height}x{width} bracket needs about {human_bytes(needed)} but only "
            f"{human_bytes(available)} is free; use a smaller window_batch_size or patch_size, or split the image."
        )


@contextmanager
def channels_last_on_cpu(module: torch.nn.Module, device: torch.device):
    """Run ``module`` with channels-last weights on a CPU, restoring its layout afterwards (elsewhere: unchanged).

    oneDNN's channels-last convolutions made a batch of 16 windows of the bundled UNet 1.35x faster on this
    project's CPU (values equal to 1e-7) and a whole 384x288 merge 1.2-1.3x (mu-law equal to 1e-5 after 4
    steps); see README: Performance. Saved weights stay contiguous.
    """
    if device.type != "cpu":
        yield
        return
    module.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        module.to(memory_format=torch.contiguous_format)
