"""The DiffHDR noise predictor: a DDPM UNet whose first feature map is modulated by DFA.

Why not diffusers' ``UNet2DModel`` (with DFA after ``conv_in`` and the key mapping in the converter)? The
original is the DDPM ("ermongroup") UNet, which ``UNet2DModel`` can express (``google/ddpm-cifar10-32`` is
one), and parity would probably hold at the 1e-4 tolerance; it was not done because nothing would be gained:

- DFA modulates the output of ``conv_in`` before the first down block. ``UNet2DModel.forward`` has no hook
  there, so a subclass would re-implement the whole forward pass, which is what this module is.
- Its timestep embedding rounds differently (see :func:`~.blocks.timestep_embedding`), and its attention
  projects with ``nn.Linear`` where the original uses 1x1 convolutions: the results move by float32 rounding,
  so the converted model would no longer compute the original's arithmetic.
- Every key would need a rename in the converter (``q``/``k``/``v``/``proj_out`` -> ``to_q``/``to_k``/
  ``to_v``/``to_out.0``, ``temb_proj`` -> ``time_emb_proj``, ``nin_shortcut`` -> ``conv_shortcut``, ...),
  and released checkpoints would no longer map key by key.

So the UNet keeps the original's structure and parameter names (checkpoints convert key by key) and the
diffusers contract that matters: ``ModelMixin``/``ConfigMixin``, ``register_to_config``, gradient
checkpointing and a ``DiffHDRUNetOutput``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample, timestep_embedding
from .dfa import DFALayer


@dataclass
class DiffHDRUNetOutput(BaseOutput):
    """
    Args:
        sample (`torch.Tensor` of shape `(batch_size, out_channels, height, width)`):
            The model output for the input sample: noise (epsilon), the clean sample (x0) or v, as the
            `prediction_type` of the scheduler it was trained with (the paper's model: epsilon).
    """

    sample: torch.Tensor


class DiffHDRUNet(ModelMixin, ConfigMixin):
    r"""DDPM noise predictor conditioned through a DFA layer on [`ConditionEncoder`] features.

    The noisy mu-law HDR image alone enters ``conv_in``; the condition features modulate that first
    feature map as ``h * (1 + scale) + shift``. Structure and parameter names follow the original
    DiffHDR ``DiffusionUNet`` so that released checkpoints convert key by key.

    Parameters:
        sample_size (`int`, defaults to 128): training crop size; ``attn_resolutions`` count from it.
        in_channels (`int`, defaults to 3): channels of the noisy sample.
        out_channels (`int`, defaults to 3): channels of the predicted noise.
        ch (`int`, defaults to 128): base width.
        ch_mult (`tuple[int]`, defaults to `(1, 1, 2, 2, 4, 4)`): width multiplier per resolution level.
        num_res_blocks (`int`, defaults to 1): residual blocks per level.
        attn_resolutions (`tuple[int]`, defaults to `(16,)`): feature resolutions with self-attention.
        dropout (`float`, defaults to 0.0): dropout inside residual blocks.
        resamp_with_conv (`bool`, defaults to True): convolutional down/upsampling.
        norm_num_groups (`int`, defaults to 32): GroupNorm groups.
        condition_channels (`int`, defaults to 64): width of the condition features.
        dfa_hidden_channels (`int`, *optional*): hidden width of the DFA branches; defaults to ``ch``.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        sample_size: int = 128,
        in_channels: int = 3,
        out_channels: int = 3,
        ch: int = 128,
        ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4),
        num_res_blocks: int = 1,
        attn_resolutions: tuple[int, ...] = (16,),
        dropout: float = 0.0,
        resamp_with_conv: bool = True,
        norm_num_groups: int = 32,
        condition_channels: int = 64,
        dfa_hidden_channels: int | None = None,
    ):
        super().__init__()
        ch_mult = tuple(ch_mult)
        groups = norm_num_groups
        temb_ch = ch * 4
        self.gradient_checkpointing = False

        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, temb_ch), nn.Linear(temb_ch, temb_ch)])
        self.conv_in = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.SFT_layer = DFALayer(condition_channels, ch, dfa_hidden_channels or ch)

        resolution = sample_size
        in_ch_mult = (1,) + ch_mult
        self.down = nn.ModuleList()
        for level, mult in enumerate(ch_mult):
            block_in, block_out = ch * in_ch_mult[level], ch * mult
            down = nn.Module()
            down.block, down.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(num_res_blocks):
                down.block.append(ResnetBlock(block_in, block_out, temb_ch, dropout, groups))
                block_in = block_out
                if resolution in attn_resolutions:
                    down.attn.append(AttnBlock(block_in, groups))
            if level != len(ch_mult) - 1:
                down.downsample = Downsample(block_in, resamp_with_conv)
                resolution //= 2
            self.down.append(down)

        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, temb_ch, dropout, groups)
        self.mid.attn_1 = AttnBlock(block_in, groups)
        self.mid.block_2 = ResnetBlock(block_in, block_in, temb_ch, dropout, groups)

        self.up = nn.ModuleList()
        for level in reversed(range(len(ch_mult))):
            block_out = skip_in = ch * ch_mult[level]
            up = nn.Module()
            up.block, up.attn = nn.ModuleList(), nn.ModuleList()
            for index in range(num_res_blocks + 1):
                if index == num_res_blocks:
                    skip_in = ch * in_ch_mult[level]
                up.block.append(ResnetBlock(block_in + skip_in, block_out, temb_ch, dropout, groups))
                block_in = block_out
                if resolution in attn_resolutions:
                    up.attn.append(AttnBlock(block_in, groups))
            if level != 0:
                up.upsample = Upsample(block_in, resamp_with_conv)
                resolution *= 2
            self.up.insert(0, up)

        self.norm_out = nn.GroupNorm(groups, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, out_channels, 3, padding=1)

    @property
    def downsample_factor(self) -> int:
        """Height and width of a sample must be multiples of this."""
        return 2 ** (len(self.config.ch_mult) - 1)

    def _run(self, block: nn.Module, *args: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args)
        return block(*args)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        condition: torch.Tensor,
        return_dict: bool = True,
    ) -> DiffHDRUNetOutput | tuple[torch.Tensor]:
        r"""
        Args:
            sample (`torch.Tensor` of shape `(B, in_channels, H, W)`): the noisy mu-law HDR image.
            timestep (`torch.Tensor`, `float` or `int`): a scalar, a 0-d tensor or a `(B,)` tensor; may be fractional.
            condition (`torch.Tensor` of shape `(B, condition_channels, H, W)`): [`ConditionEncoder`] features.
            return_dict (`bool`, defaults to `True`): return a [`DiffHDRUNetOutput`] instead of a tuple.
        """
        timesteps = torch.as_tensor(timestep, device=sample.device)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        timesteps = timesteps.expand(sample.shape[0]) if timesteps.numel() == 1 else timesteps

        temb = timestep_embedding(timesteps, self.config.ch).to(sample.dtype)
        temb = self.temb.dense[1](F.silu(self.temb.dense[0](temb)))

        hs = [self.SFT_layer(self.conv_in(sample), condition.to(sample.dtype))]
        for level, down in enumerate(self.down):
            for index, block in enumerate(down.block):
                h = self._run(block, hs[-1], temb)
                if len(down.attn):
                    h = self._run(down.attn[index], h)
                hs.append(h)
            if hasattr(down, "downsample"):
                hs.append(down.downsample(hs[-1]))

        h = self._run(self.mid.block_1, hs[-1], temb)
        h = self._run(self.mid.attn_1, h)
        h = self._run(self.mid.block_2, h, temb)

        for up in reversed(self.up):
            for index, block in enumerate(up.block):
                h = self._run(block, torch.cat([h, hs.pop()], dim=1), temb)
                if len(up.attn):
                    h = self._run(up.attn[index], h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)

        h = self.conv_out(F.silu(self.norm_out(h)))
        if not return_dict:
            return (h,)
        return DiffHDRUNetOutput(sample=h)
