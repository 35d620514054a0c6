"""Domain feature alignment (DFA): a spatial feature transform driven by the condition features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DFALayer(nn.Module):
    """Modulates UNet features as ``features * (1 + scale) + shift``.

    ``scale`` and ``shift`` come from two branches of 1x1 convs (LeakyReLU 0.1 between them) applied
    to the condition features. Parameter names follow the original ``SFTLayer``.
    """

    def __init__(self, condition_channels: int, feature_channels: int, hidden_channels: int):
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(condition_channels, hidden_channels, 1)
        self.SFT_scale_conv1 = nn.Conv2d(hidden_channels, feature_channels, 1)
        self.SFT_shift_conv0 = nn.Conv2d(condition_channels, hidden_channels, 1)
        self.SFT_shift_conv1 = nn.Conv2d(hidden_channels, feature_channels, 1)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(condition), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(condition), 0.1))
        return features * (scale + 1) + shift
