"""The feature condition generator: AHDR-style spatial attention over an exposure bracket."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def _attention_gate(num_features: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2 * num_features, 2 * num_features, 3, padding=1),
        nn.LeakyReLU(),
        nn.Conv2d(2 * num_features, num_features, 3, padding=1),
        nn.Sigmoid(),
    )


class ConditionEncoder(ModelMixin, ConfigMixin):
    r"""Fuses an exposure bracket into condition features for the DFA layer of [`DiffHDRUNet`].

    A shared 3x3 conv maps every exposure to ``num_features`` channels (LeakyReLU 0.01). For every
    non-reference exposure, a two-conv sigmoid gate computed from ``[its features, reference features]``
    scales its features. The gated features, in bracket order, are concatenated and fused by a 3x3 conv.

    With ``prior_channels > 0`` (the aligned variant), the input ends with that many extra planes (the
    flow-merge prior in the mu-law domain and its per-exposure confidence, see
    :mod:`diffhdr_diffusers.prior`); their own 3x3 conv adds one more feature block to the fusion.
    ``prior_channels=0`` is the paper's network, parameter for parameter.

    Parameters:
        num_exposures (`int`, defaults to 3): bracket size, ordered short to long.
        reference_index (`int`, defaults to 1): index of the reference (medium) exposure.
        exposure_channels (`int`, defaults to 6): channels per exposure (``[LDR, LDR**gamma / 2**ev]``).
        num_features (`int`, defaults to 64): width of the condition features.
        prior_channels (`int`, defaults to 0): extra input planes after the exposures (0: none, the paper).
    """

    @register_to_config
    def __init__(
        self,
        num_exposures: int = 3,
        reference_index: int = 1,
        exposure_channels: int = 6,
        num_features: int = 64,
        prior_channels: int = 0,
    ):
        super().__init__()
        if not 0 <= reference_index < num_exposures:
            raise ValueError(f"reference_index={reference_index} is outside a bracket of {num_exposures}.")
        self.exposure_conv = nn.Conv2d(exposure_channels, num_features, 3, padding=1)
        self.attention = nn.ModuleList(_attention_gate(num_features) for _ in range(num_exposures - 1))
        if prior_channels:
            self.prior_conv = nn.Conv2d(prior_channels, num_features, 3, padding=1)
        blocks = num_exposures + (1 if prior_channels else 0)
        self.fusion_conv = nn.Conv2d(blocks * num_features, num_features, 3, padding=1)
        self.activation = nn.LeakyReLU()

    @property
    def receptive_radius(self) -> int:
        """Pixels of context each output pixel sees on every side (its chain of 3x3 convs)."""
        gate_convs = [layer for layer in self.attention[0] if isinstance(layer, nn.Conv2d)] if len(self.attention) else []
        return sum(conv.kernel_size[0] // 2 for conv in (self.exposure_conv, *gate_convs, self.fusion_conv))

    @property
    def in_channels(self) -> int:
        """Input planes: ``exposure_channels`` per exposure, then ``prior_channels``."""
        config = self.config
        return config.num_exposures * config.exposure_channels + config.prior_channels

    def forward(self, exposures: torch.Tensor) -> torch.Tensor:
        """Map ``exposures`` of shape (B, :attr:`in_channels`, H, W) to (B, num_features, H, W)."""
        config = self.config
        if exposures.shape[1] != self.in_channels:
            raise ValueError(
                f"expected {self.in_channels} channels ({config.num_exposures} exposures of "
                f"{config.exposure_channels}, {config.prior_channels} prior planes), got {exposures.shape[1]}"
            )
        bracket_channels = config.num_exposures * config.exposure_channels
        per_exposure = exposures[:, :bracket_channels].split(config.exposure_channels, dim=1)
        features = [self.activation(self.exposure_conv(exposure)) for exposure in per_exposure]
        reference = features[self.config.reference_index]
        gates = iter(self.attention)
        gated = [
            feature if index == self.config.reference_index else feature * next(gates)(torch.cat([feature, reference], 1))
            for index, feature in enumerate(features)
        ]
        if config.prior_channels:
            gated.append(self.activation(self.prior_conv(exposures[:, bracket_channels:])))
        return self.fusion_conv(torch.cat(gated, dim=1))
