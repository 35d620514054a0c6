"""A faithful re-implementation of the original DiffHDR tiled sampler, used as the benchmark baseline.

It repeats the algorithm of DiffHDR-pytorch's ``generalized_steps_overlapping`` and
``DiffusiveRestoration`` on our modules (:class:`DiffHDRUNet`, :class:`ConditionEncoder`), with its
costs left in on purpose:

* the window grid is ``range(0, size - patch + 1, stride)`` on each axis (no extra border window);
* at every step all window crops of the noisy image and of the 18-channel conditioning are stacked,
  then processed in batches of 8: the condition network runs on the conditioning crops of the batch,
  then the UNet;
* each window's noise estimate is added into the full-size sum in a Python loop, and the sum is
  divided by the coverage mask;
* DDIM with eta = 0 over ``range(0, 1000, 1000 // T)``, the final step going to alpha = 1, with
  alphas from float32 betas (linear 1e-4..0.02 computed in float64, cast to float32);
* the result is clamped to [0, 1] in the mu-law domain.

It is not part of the library: the pipeline's exact mode must reproduce its numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000
ORIGINAL_WINDOW_BATCH = 8


def original_betas() -> torch.Tensor:
    """Linear betas computed in float64 and cast to float32, as the original's ``get_beta_schedule``."""
    return torch.from_numpy(np.linspace(1e-4, 0.02, NUM_TRAIN_TIMESTEPS, dtype=np.float64)).float()


def _alpha(betas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Cumulative alpha at integer steps ``t`` (-1 gives 1), shape (n, 1, 1, 1)."""
    padded = torch.cat([torch.zeros(1, device=betas.device), betas], dim=0)
    return (1 - padded).cumprod(dim=0).index_select(0, t + 1).view(-1, 1, 1, 1)


def original_corners(height: int, width: int, patch_size: int, stride: int) -> list[tuple[int, int]]:
    """Window origins of the original grid; raises if some pixels would get no window (NaN there)."""
    if (height - patch_size) % stride or (width - patch_size) % stride or min(height, width) < patch_size:
        raise ValueError(f"the original grid leaves pixels uncovered for {height}x{width}, patch {patch_size}, "
                         f"stride {stride}: (size - patch) must be a non-negative multiple of stride.")
    rows = range(0, height - patch_size + 1, stride)
    cols = range(0, width - patch_size + 1, stride)
    return [(h, w) for h in rows for w in cols]


@dataclass
class OriginalTimings:
    """Seconds spent in the condition network and the UNet, and UNet pixel-evaluations."""

    condition: float = 0.0
    unet: float = 0.0
    unet_pixel_evaluations: int = 0
    encoder_calls: int = 0
    steps: list[int] = field(default_factory=list)


@torch.no_grad()
def original_sample(unet, condition_encoder, conditioning: torch.Tensor, latents: torch.Tensor,
                    num_inference_steps: int, patch_size: int, stride: int,
                    timings: OriginalTimings | None = None) -> torch.Tensor:
    """Sample like the original DiffHDR; returns the clamped mu-law image (1, 3, H, W).

    Args:
        unet, condition_encoder: our modules, in eval mode.
        conditioning: (1, 18, H, W), the per-exposure ``[LDR, LDR**2.2 / 2**ev]`` stack.
        latents: (1, 3, H, W) initial noise.
        num_inference_steps: T; the original runs ``len(range(0, 1000, 1000 // T))`` steps.
        patch_size, stride: the window grid.
        timings: filled in if given.
    """
    timings = timings if timings is not None else OriginalTimings()
    p = patch_size
    corners = original_corners(conditioning.shape[-2], conditioning.shape[-1], p, stride)
    betas = original_betas().to(latents.device)
    seq = list(range(0, NUM_TRAIN_TIMESTEPS, NUM_TRAIN_TIMESTEPS // num_inference_steps))
    seq_next = [-1] + seq[:-1]
    x = latents
    n = x.size(0)

    mask = torch.zeros_like(x)
    for hi, wi in corners:
        mask[:, :, hi:hi + p, wi:wi + p] += 1

    xt = x
    for i, j in zip(reversed(seq), reversed(seq_next)):
        t = torch.ones(n, device=x.device) * i
        next_t = torch.ones(n, device=x.device) * j
        at = _alpha(betas, t.long())
        at_next = _alpha(betas, next_t.long())
        et_output = torch.zeros_like(x)
        xt_patch = torch.cat([xt[..., hi:hi + p, wi:wi + p] for hi, wi in corners], dim=0)
        cond_patch = torch.cat([conditioning[..., hi:hi + p, wi:wi + p] for hi, wi in corners], dim=0)
        for start in range(0, len(corners), ORIGINAL_WINDOW_BATCH):
            stop = start + ORIGINAL_WINDOW_BATCH
            began = time.perf_counter()
            features = condition_encoder(cond_patch[start:stop])
            middle = time.perf_counter()
            outputs = unet(xt_patch[start:stop], t, features).sample
            timings.condition += middle - began
            timings.unet += time.perf_counter() - middle
            timings.encoder_calls += 1
            timings.unet_pixel_evaluations += outputs.shape[0] * p * p
            for index, (hi, wi) in enumerate(corners[start:stop]):
                et_output[0, :, hi:hi + p, wi:wi + p] += outputs[index]
        et = torch.div(et_output, mask)
        x0_t = (xt - et * (1 - at).sqrt()) / at.sqrt()
        c2 = (1 - at_next).sqrt()  # eta = 0: c1 = 0
        xt = at_next.sqrt() * x0_t + c2 * et
        timings.steps.append(i)
    return xt.clamp(0, 1)
