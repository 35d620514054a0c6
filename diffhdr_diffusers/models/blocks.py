"""Building blocks of the DDPM UNet used by DiffHDR (the DDIM/DDPM "ermongroup" layout).

Parameter names match the original implementation so that released checkpoints map key by key.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(timesteps: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, ``[sin, cos]`` halves, as in DDPM.

    Kept instead of diffusers' ``get_timestep_embedding(t, dim, flip_sin_to_cos=False, downscale_freq_shift=1)``,
    the same formula with the operations in another order (``(-log(10000) * k) / (half - 1)`` there,
    ``k * -(log(10000) / (half - 1))`` here, as in the original), so the frequencies differ in their last bit.
    At t ~ 1000 that moves the embedding by up to 3.0e-5 (t in [0, 1000), widths 64 and 128). In the parity
    test (``tests/test_convert_original_parity.py``, t = 999 and 250) the UNet's output is 1.5e-6 from the
    original's with this function and 4.9e-6 with diffusers' (a review measured 1.4e-5 on another machine):
    inside the 1e-4 at which parity is judged, but three times the error, to save six lines.
    """
    half = embedding_dim // 2
    frequencies = torch.exp(
        torch.arange(half, dtype=torch.float32, device=timesteps.device) * -(math.log(10000) / (half - 1))
    )
    angles = timesteps.float()[:, None] * frequencies[None, :]
    embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if embedding_dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = F.interpolate(hidden, scale_factor=2.0, mode="nearest")
        return self.conv(hidden) if self.with_conv else hidden


class Downsample(nn.Module):
    """Stride-2 3x3 conv after padding right and bottom by one (the original's asymmetric padding)."""

    def __init__(self, channels: int, with_conv: bool = True):
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.with_conv:
            return self.conv(F.pad(hidden, (0, 1, 0, 1)))
        return F.avg_pool2d(hidden, kernel_size=2, stride=2)


class ResnetBlock(nn.Module):
    """GroupNorm-swish-conv twice, with the timestep embedding added after the first conv."""

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, dropout: float, groups: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, hidden: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(hidden)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels:
            hidden = self.nin_shortcut(hidden)
        return hidden + h


class AttnBlock(nn.Module):
    """Single-head spatial self-attention with 1x1-conv projections, via ``scaled_dot_product_attention``."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = group_norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        b, c, h, w = hidden.shape
        normed = self.norm(hidden)
        # (B, C, H, W) -> (B, 1, HW, C): one head of width C.
        q, k, v = (proj(normed).reshape(b, 1, c, h * w).transpose(2, 3) for proj in (self.q, self.k, self.v))
        attended = F.scaled_dot_product_attention(q, k, v)
        attended = attended.transpose(2, 3).reshape(b, c, h, w)
        return hidden + self.proj_out(attended)
