"""Overlapping-window tiling for patch-wise noise estimation.

A window grid covers every pixel of an image of any size: windows start every ``stride`` pixels, and
one more window is added flush with the right/bottom border when ``(size - patch_size)`` is not a
multiple of ``stride``. Where it is, the grid equals the original DiffHDR grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def window_starts(size: int, patch_size: int, stride: int, offset: int = 0) -> list[int]:
    """Start offsets along one axis so that windows of ``patch_size`` cover ``[0, size)``.

    ``offset`` shifts the regular grid (used for randomly shifted tiling); the first window always
    starts at 0 and the last ends at ``size``.
    """
    if patch_size >= size:
        return [0]
    last = size - patch_size
    starts = list(range(offset % stride, last + 1, stride)) if stride < size else []
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    if starts[-1] != last:
        starts.append(last)
    return starts


@dataclass(frozen=True)
class WindowGrid:
    """The windows of one tiling of an (height, width) image, and how often each pixel is covered."""

    height: int
    width: int
    patch_height: int
    patch_width: int
    origins: tuple[tuple[int, int], ...]

    @classmethod
    def build(cls, height: int, width: int, patch_size: int, stride: int, offset: tuple[int, int] = (0, 0)) -> WindowGrid:
        patch_height, patch_width = min(patch_size, height), min(patch_size, width)
        rows = window_starts(height, patch_height, stride, offset[0])
        cols = window_starts(width, patch_width, stride, offset[1])
        return cls(height, width, patch_height, patch_width, tuple((y, x) for y in rows for x in cols))

    def __len__(self) -> int:
        return len(self.origins)

    def window(self, index: int) -> tuple[slice, slice]:
        y, x = self.origins[index]
        return slice(y, y + self.patch_height), slice(x, x + self.patch_width)

    def coverage(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 weight: torch.Tensor | None = None) -> torch.Tensor:
        """How many windows cover each pixel (or the sum of their ``weight`` maps), shape (height, width); never zero."""
        count = torch.zeros(self.height, self.width, device=device, dtype=dtype)
        for index in range(len(self)):
            count[self.window(index)] += 1 if weight is None else weight
        return count

    def crop(self, tensor: torch.Tensor, indices: range | list[int]) -> torch.Tensor:
        """Stack the windows ``indices`` of a (B, C, H, W) tensor into (len(indices) * B, C, ph, pw)."""
        return torch.cat([tensor[(..., *self.window(i))] for i in indices], dim=0)

    def accumulate(self, total: torch.Tensor, windows: torch.Tensor, indices: range | list[int]) -> None:
        """Add window-batched values (as made by :meth:`crop`) back into ``total`` (B, C, H, W) in place."""
        for chunk, index in zip(windows.split(total.shape[0]), indices):
            total[(..., *self.window(index))] += chunk


WINDOW_BLENDS = ("uniform", "taper")


def final_stride(patch_size: int, stride: int) -> int:
    """Stride of the last step of a shifted-window run: windows overlap by at least half, so no seam survives."""
    return min(stride, max(patch_size // 2, 1))


def window_weight(patch_height: int, patch_width: int, blend: str, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
    """Per-pixel weight of a window's prediction when overlapping windows are averaged.

    ``"uniform"`` (``None``): every window counts equally, as in the original sampler. ``"taper"``: a
    separable tent, highest at the centre and smallest (but positive) at the edges, so that a window's
    border pixels, where zero padding bends the prediction, yield to windows that see them in their
    interior. Windows overlapping by half sum to a constant, which removes visible window seams.
    """
    if blend == "uniform":
        return None

    def tent(size: int) -> torch.Tensor:
        position = torch.arange(size, device=device, dtype=dtype)
        return torch.minimum(position + 1, size - position) / ((size + 1) // 2)

    return tent(patch_height)[:, None] * tent(patch_width)[None, :]
