"""The feature condition generator: AHDR-style spatial attention over an exposure bracket."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

FRAME_POOLINGS = ("mean_max",)
"""How a frame-count-independent encoder summarises its non-reference frames (``frame_pooling``)."""
MIN_EXPOSURES = 2
PRIOR_PLANES = 3  # the flow-merge prior's mu-law: what a pooled encoder reads after its frames


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

    With ``frame_pooling="mean_max"`` (an aligned variant for any bracket of 2 to ``num_exposures`` frames, one
    set of weights), the input of an N-frame bracket is laid out as
    :func:`~diffhdr_diffusers.prior.prior_conditioning` writes it with ``exposure_planes=True``:
    ``[6 planes per frame | the prior (3) | a confidence per frame | an EV plane per frame]``. Every frame, the
    reference (the middle one, ``N // 2``) included, goes through the shared conv with its confidence and its EV
    relative to the reference as two more input planes; one shared gate scales each non-reference frame against the
    reference; their per-pixel mean and maximum over frames (zeros when there are none) join the reference's
    features and the prior's, and the fusion conv reads those four blocks. Nothing depends on N or on the order of
    the non-reference frames.

    Parameters:
        num_exposures (`int`, defaults to 3): bracket size, ordered short to long; with ``frame_pooling``, the
            largest bracket accepted (any of 2 to it).
        reference_index (`int`, *optional*, defaults to 1): index of the reference (medium) exposure; `None` with
            ``frame_pooling`` (the reference is then the middle frame, ``N // 2``).
        exposure_channels (`int`, defaults to 6): channels per exposure (``[LDR, LDR**gamma / 2**ev]``).
        num_features (`int`, defaults to 64): width of the condition features.
        prior_channels (`int`, defaults to 0): extra input planes after the exposures (0: none, the paper); 3 (the
            prior alone) with ``frame_pooling``.
        frame_pooling (`str`, *optional*): `None` (a fixed bracket of ``num_exposures``) or ``"mean_max"``.
    """

    @register_to_config
    def __init__(
        self,
        num_exposures: int = 3,
        reference_index: int | None = 1,
        exposure_channels: int = 6,
        num_features: int = 64,
        prior_channels: int = 0,
        frame_pooling: str | None = None,
    ):
        super().__init__()
        if frame_pooling is None:
            if reference_index is None or not 0 <= reference_index < num_exposures:
                raise ValueError(f"reference_index={reference_index} is outside a bracket of {num_exposures}.")
            frame_inputs, gates, blocks = exposure_channels, num_exposures - 1, num_exposures + bool(prior_channels)
        else:
            if frame_pooling not in FRAME_POOLINGS:
                raise ValueError(f"frame_pooling={frame_pooling!r}: use None or one of {', '.join(FRAME_POOLINGS)}.")
            if reference_index is not None or prior_channels != PRIOR_PLANES or num_exposures < MIN_EXPOSURES:
                raise ValueError(f"frame_pooling={frame_pooling!r} needs reference_index=None (the middle frame), "
                                 f"prior_channels={PRIOR_PLANES} and num_exposures >= {MIN_EXPOSURES}; got "
                                 f"{reference_index}, {prior_channels} and {num_exposures}.")
            # Per frame: its planes, its confidence, its EV; blocks: the reference, mean, max, prior.
            frame_inputs, gates, blocks = exposure_channels + 2, 1, 4
        self.exposure_conv = nn.Conv2d(frame_inputs, num_features, 3, padding=1)
        self.attention = nn.ModuleList(_attention_gate(num_features) for _ in range(gates))
        if prior_channels:
            self.prior_conv = nn.Conv2d(prior_channels, num_features, 3, padding=1)
        self.fusion_conv = nn.Conv2d(blocks * num_features, num_features, 3, padding=1)
        self.activation = nn.LeakyReLU()

    @property
    def receptive_radius(self) -> int:
        """Pixels of context each output pixel sees on every side (its chain of 3x3 convs)."""
        gate_convs = [layer for layer in self.attention[0] if isinstance(layer, nn.Conv2d)] if len(self.attention) else []
        return sum(conv.kernel_size[0] // 2 for conv in (self.exposure_conv, *gate_convs, self.fusion_conv))

    @property
    def exposure_counts(self) -> tuple[int, int]:
        """The fewest and the most frames a bracket may have: ``num_exposures`` twice for a fixed-size encoder."""
        config = self.config
        return (MIN_EXPOSURES if config.frame_pooling else config.num_exposures), config.num_exposures

    @property
    def in_channels(self) -> int:
        """Input planes of a ``num_exposures`` bracket (see :meth:`input_channels`)."""
        return self.input_channels(self.config.num_exposures)

    def input_channels(self, num_exposures: int) -> int:
        """Input planes of a bracket of ``num_exposures``: ``exposure_channels`` per exposure, then
        ``prior_channels``; with ``frame_pooling`` also a confidence and an EV plane per exposure."""
        config = self.config
        per_frame = config.exposure_channels + (2 if config.frame_pooling else 0)
        return num_exposures * per_frame + config.prior_channels

    def forward(self, exposures: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Map ``exposures`` of shape (B, :meth:`input_channels`, H, W) to (B, num_features, H, W).

        With ``frame_pooling``, ``exposures`` may also be a list of such tensors, brackets of different sizes (a
        training batch, see :func:`~diffhdr_diffusers.data.collate_samples`): their features, concatenated along
        the batch in list order.
        """
        if isinstance(exposures, (list, tuple)):
            if not self.config.frame_pooling and len(exposures) > 1:
                raise ValueError(f"a list of {len(exposures)} conditioning tensors needs a frame_pooling encoder; "
                                 f"this one reads brackets of {self.config.num_exposures} only")
            return torch.cat([self.forward(group) for group in exposures])
        if self.config.frame_pooling:
            return self._pooled(exposures)
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

    def _pooled(self, exposures: torch.Tensor) -> torch.Tensor:
        """The ``frame_pooling`` forward pass (see the class docstring)."""
        config, channels = self.config, exposures.shape[1]
        count, remainder = divmod(channels - PRIOR_PLANES, config.exposure_channels + 2)
        low, high = self.exposure_counts
        if remainder or not 1 <= count <= high:
            raise ValueError(f"expected {self.input_channels(low)} to {self.input_channels(high)} channels "
                             f"({config.exposure_channels + 2} per exposure and {PRIOR_PLANES} prior planes), "
                             f"got {channels}")
        start = config.exposure_channels * count  # the prior's first plane
        planes = exposures[:, :start].split(config.exposure_channels, dim=1)
        prior = exposures[:, start : start + PRIOR_PLANES]
        confidence = exposures[:, start + PRIOR_PLANES : start + PRIOR_PLANES + count].split(1, dim=1)
        evs = exposures[:, start + PRIOR_PLANES + count :].split(1, dim=1)
        frames = list(zip(planes, confidence, evs))  # each frame's input planes
        reference = self.activation(self.exposure_conv(torch.cat(frames.pop(count // 2), dim=1)))
        # A running sum and maximum: the memory of one frame's features, whatever N.
        total = peak = torch.zeros_like(reference)
        for index, frame in enumerate(frames):
            feature = self.activation(self.exposure_conv(torch.cat(frame, dim=1)))
            gated = feature * self.attention[0](torch.cat([feature, reference], 1))
            total, peak = (gated, gated) if index == 0 else (total + gated, torch.maximum(peak, gated))
        mean = total / max(len(frames), 1)
        prior_features = self.activation(self.prior_conv(prior))
        return self.fusion_conv(torch.cat([reference, mean, peak, prior_features], dim=1))
