"""Condition-encoder features of every window of a grid: what the UNet's DFA layer is conditioned on.

The features of the whole image are computed once per call (in bands of rows, to bound the encoder's
memory), whatever the number of steps or grids. Whole-image mode crops them: no seams. Per-window mode
reproduces the original numerics, where the condition network ran on each window's crop with zero
padding at the window edge. Because that network is a short chain of 3x3 convs, per-window features
differ from whole-image features only in a band ``receptive_radius`` pixels wide along each window edge.
Those bands are computed from thin strips (2 x radius wide) once per window grid: once per call on a
fixed grid, and once per step when the grid shifts (``shift_windows``), where a step's strips cost about
``8 * radius / patch_size`` of one encoder pass over its windows.
"""

from __future__ import annotations

import torch

from ..models import ConditionEncoder
from .tiling import WindowGrid


ENCODER_BAND_PIXELS = 1 << 18


def encode_in_bands(encoder: ConditionEncoder, conditioning: torch.Tensor,
                    band_pixels: int = ENCODER_BAND_PIXELS) -> torch.Tensor:
    """Whole-image features computed in bands of rows, each with ``receptive_radius`` rows of context.

    Equal to ``encoder(conditioning)`` (the context rows supply what each band's convs see; zero padding
    stays at the image border), with the peak memory of one band of about ``band_pixels`` pixels
    instead of the whole image: for the `paper` encoder at 1024x1536, 1.2 GB of peak growth instead of 4.5 GB.
    """
    batch, _, height, width = conditioning.shape
    rows, radius = max(band_pixels // width, 1), encoder.receptive_radius
    if rows >= height:
        return encoder(conditioning)
    features = conditioning.new_empty(batch, encoder.config.num_features, height, width)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        context_top = max(top - radius, 0)
        band = encoder(conditioning[..., context_top : min(bottom + radius, height), :])
        features[..., top:bottom, :] = band[..., top - context_top : bottom - context_top, :]
    return features


class WindowFeatures:
    """Condition-encoder features of the windows of a (B, C, H, W) conditioning tensor on a window grid."""

    def __init__(self, encoder: ConditionEncoder, conditioning: torch.Tensor, grid: WindowGrid, per_window: bool,
                 batch_size: int = 16):
        self.encoder, self.conditioning, self.batch_size = encoder, conditioning, batch_size
        self.batch = conditioning.shape[0]
        self.features = encode_in_bands(encoder, conditioning)
        self.radius = encoder.receptive_radius
        self.per_window = per_window
        self.grid, self.edges = None, None
        self.set_grid(grid)

    def set_grid(self, grid: WindowGrid) -> None:
        """Switch to another grid (a shifted one); per-window mode computes only its edge bands, and nothing
        when the grid is the current one."""
        if grid == self.grid:
            return
        self.grid = grid
        self.edges = self._edge_features() if self.per_window else None

    def _edge_features(self) -> list[dict[str, torch.Tensor]]:
        r, grid, batch_size = self.radius, self.grid, self.batch_size
        if min(grid.patch_height, grid.patch_width) <= 4 * r:
            strips = {"full": lambda w: w}
        else:
            strips = {
                "top": lambda w: w[..., : 2 * r, :],
                "bottom": lambda w: w[..., -2 * r :, :],
                "left": lambda w: w[..., :, : 2 * r],
                "right": lambda w: w[..., :, -2 * r :],
            }
        keep = {
            "full": lambda f: f,
            "top": lambda f: f[..., :r, :],
            "bottom": lambda f: f[..., -r:, :],
            "left": lambda f: f[..., :, :r],
            "right": lambda f: f[..., :, -r:],
        }
        edges: list[dict[str, torch.Tensor]] = [{} for _ in range(len(grid))]
        for start in range(0, len(grid), batch_size):
            indices = range(start, min(start + batch_size, len(grid)))
            windows = grid.crop(self.conditioning, indices)
            for name, strip in strips.items():
                computed = keep[name](self.encoder(strip(windows)))
                for index, chunk in zip(indices, computed.split(self.batch)):
                    edges[index][name] = chunk
        return edges

    def crop(self, indices: range | list[int]) -> torch.Tensor:
        """Condition features of windows ``indices``, batched as :meth:`WindowGrid.crop` batches."""
        features = self.grid.crop(self.features, indices)
        if self.edges is None:
            return features
        r = self.radius
        regions = {
            "full": (..., slice(None), slice(None)),
            "top": (..., slice(0, r), slice(None)),
            "bottom": (..., slice(-r, None), slice(None)),
            "left": (..., slice(None), slice(0, r)),
            "right": (..., slice(None), slice(-r, None)),
        }
        for position, index in enumerate(indices):
            chunk = features[position * self.batch : (position + 1) * self.batch]
            for name, values in self.edges[index].items():
                chunk[regions[name]] = values
        return features
