"""Reusable pieces of DiffHDR training: the objective, seeded randomness, data order and checkpoints.

Everything random in a training step is drawn from generators derived from ``(seed, global step, rank,
micro step)`` (noise, timesteps) or from ``(seed, stream position)`` (which scene, which crop), never from
global RNG state. A run killed at step k and resumed from its step-k checkpoint therefore repeats exactly
the steps the uninterrupted run would have taken, and ends with byte-identical weights.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import CheckpointError
from .io.atomic import replace_folder, write_json_atomically

# Data order and crop datasets live in ``diffhdr_diffusers.data``; re-exported for existing imports.
from .data.crops import SeededCropDataset, collate_samples
from .data.sampling import StreamBatchSampler, crop_seed, derive_seed

# The original sums the squared noise error over C*H*W (mean over the batch) and adds a per-element mean
# L1 on the predicted clean image. At its 128x128 crops that is 49152 * MSE + L1. We use the per-element
# mean squared error instead, so the loss value and the gradient-clipping threshold do not depend on the
# crop size, and weight the L1 so that the balance of the two terms equals the original's at 128x128.
# With Adam (invariant to a constant gradient scale) this reproduces the original's updates at crop 128.
PAPER_CROP_SIZE = 128
PAPER_L1_WEIGHT = 1.0 / (3 * PAPER_CROP_SIZE * PAPER_CROP_SIZE)
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


# ----------------------------------------------------------------------------------------- randomness
def step_generator(seed: int, global_step: int, rank: int, micro_step: int, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator for one micro-batch's noise and timesteps: ``manual_seed(f(seed, step, rank, micro_step))``."""
    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(seed, 1, global_step, rank, micro_step))
    return generator


def antithetic_timesteps(batch_size: int, num_train_timesteps: int, generator: torch.Generator | None = None,
                         device: str | torch.device = "cpu", low: int = 0) -> torch.Tensor:
    """Timesteps as the original samples them: ``t`` for the first half of the batch, ``T - 1 - t`` for the rest.

    ``low`` narrows the draw to ``[low, num_train_timesteps)``, each ``t`` paired with its mirror in that range
    (the default 0 is the original's draw, unchanged).
    """
    first = torch.randint(low, num_train_timesteps, (batch_size // 2 + 1,), generator=generator,
                          device=generator.device if generator is not None else device)
    return torch.cat([first, num_train_timesteps - 1 + low - first])[:batch_size].to(device)


# ----------------------------------------------------------------------------------------- objective
RELATIVE_FLOOR = 0.1  # ``reduction="relative"``: a crop's weight is at most 1 / (0.1 x the batch's mean energy)


@dataclass
class LossTerms:
    """The training objective and its parts (all scalars)."""

    loss: torch.Tensor
    noise_mse: torch.Tensor
    x0_l1: torch.Tensor


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def predicted_clean(noisy: torch.Tensor, model_output: torch.Tensor, alphas_cumprod_t: torch.Tensor,
                    prediction_type: str = "epsilon") -> torch.Tensor:
    """The clean image implied by the model output at ``x_t`` (``noisy``) for a diffusers ``prediction_type``.

    ``epsilon``: ``(x_t - sqrt(1 - a) eps) / sqrt(a)``; ``v_prediction``: ``sqrt(a) x_t - sqrt(1 - a) v``;
    ``sample``: the output itself.
    """
    alpha = alphas_cumprod_t.view(-1, 1, 1, 1).to(noisy.dtype)
    if prediction_type == "epsilon":
        return (noisy - model_output * (1 - alpha).sqrt()) / alpha.sqrt()
    if prediction_type == "v_prediction":
        return alpha.sqrt() * noisy - (1 - alpha).sqrt() * model_output
    if prediction_type == "sample":
        return model_output
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


def regression_target(noise: torch.Tensor, clean: torch.Tensor, alphas_cumprod_t: torch.Tensor,
                      prediction_type: str = "epsilon") -> torch.Tensor:
    """What the model learns to output: the noise, the velocity ``sqrt(a) eps - sqrt(1 - a) x_0``, or ``x_0``."""
    alpha = alphas_cumprod_t.view(-1, 1, 1, 1).to(noise.dtype)
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return alpha.sqrt() * noise - (1 - alpha).sqrt() * clean
    if prediction_type == "sample":
        return clean
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


def diffhdr_loss(model_output: torch.Tensor, noise: torch.Tensor, noisy: torch.Tensor, target: torch.Tensor,
                 alphas_cumprod_t: torch.Tensor, l1_weight: float = PAPER_L1_WEIGHT,
                 reduction: str = "mean", prediction_type: str = "epsilon") -> LossTerms:
    """Regression MSE (the paper: on epsilon) plus ``l1_weight`` times the L1 between the predicted clean
    image and ``target``.

    Args:
        model_output, noise, noisy, target: (B, 3, H, W) tensors; ``noisy`` is ``x_t``, ``target`` is ``x_0``.
        alphas_cumprod_t: (B,) cumulative alphas at each sample's timestep.
        l1_weight: weight of the L1 term. The default keeps the original's balance at 128x128 crops.
        reduction: ``"mean"`` averages the squared error over all elements; ``"sum"`` sums it over
            C, H, W and averages over the batch, exactly as the original (use ``l1_weight=1`` with it);
            ``"relative"`` weighs each crop's mean squared error by the inverse of its target's energy (an
            aligned model's target is the prior's error, so a crop counts by how much of that error it removes,
            as a mean of per-image PSNRs counts it), floored at ``RELATIVE_FLOOR`` of the batch's mean energy,
            the weights normalised to mean 1.
        prediction_type: ``"epsilon"`` (the paper), ``"v_prediction"`` or ``"sample"``, as in diffusers' schedulers.
    """
    model_output, noise = model_output.float(), noise.float()
    alphas = alphas_cumprod_t.float()
    squared = (regression_target(noise, target.float(), alphas, prediction_type) - model_output).square()
    if reduction == "mean":
        noise_mse = squared.mean()
    elif reduction == "sum":
        noise_mse = squared.sum(dim=(1, 2, 3)).mean()
    elif reduction == "relative":
        energy = target.float().square().mean(dim=(1, 2, 3))
        weights = 1.0 / (energy + RELATIVE_FLOOR * energy.mean() + 1e-12)
        noise_mse = (squared.mean(dim=(1, 2, 3)) * weights).sum() / weights.sum()
    else:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'relative', got {reduction!r}")
    x0_l1 = F.l1_loss(predicted_clean(noisy.float(), model_output, alphas, prediction_type), target.float())
    return LossTerms(loss=noise_mse + l1_weight * x0_l1, noise_mse=noise_mse.detach(), x0_l1=x0_l1.detach())


# ----------------------------------------------------------------------------------------- checkpoints
def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a ``checkpoint-N`` folder name, or ``None`` for anything else (``.tmp`` included)."""
    match = CHECKPOINT_PATTERN.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete ``checkpoint-N`` folders in ``output_dir``, oldest first; unfinished ``.tmp`` ones are ignored."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and checkpoint_step(path) is not None]
    return sorted(found, key=checkpoint_step)


def resolve_checkpoint(output_dir: str | os.PathLike, resume_from: str) -> Path | None:
    """``"latest"`` gives the newest complete checkpoint (or ``None``); anything else must be a checkpoint folder."""
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume_from)
    if not path.is_dir():
        path = Path(output_dir) / resume_from
    if not path.is_dir() or checkpoint_step(path) is None:
        raise CheckpointError(f"--resume_from_checkpoint {resume_from}: not a checkpoint-N folder; pass 'latest' "
                              f"or one of {[p.name for p in list_checkpoints(output_dir)] or 'the saved checkpoints'}.")
    return path


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def save_checkpoint(accelerator, output_dir: str | os.PathLike, step: int) -> Path:
    """``accelerator.save_state`` into ``checkpoint-N.tmp``, then rename it to ``checkpoint-N`` atomically.

    Every rank must call this. If any rank fails to write (disk full, no permission), the partial
    ``.tmp`` folder is removed, every rank raises :class:`CheckpointError`, and older checkpoints are
    left untouched. A crash mid-write leaves only a ``.tmp`` folder, which :func:`resolve_checkpoint`
    ignores and the next save replaces.
    """
    output_dir = Path(output_dir)
    final, staging = output_dir / f"checkpoint-{step}", output_dir / f"checkpoint-{step}.tmp"
    problem = ""
    try:
        if accelerator.is_main_process and staging.exists():
            shutil.rmtree(staging)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(staging))
        if accelerator.is_main_process:
            _fsync_tree(staging)
    except Exception as error:  # noqa: BLE001 - OSError, SafetensorError, pickling errors: all mean "not saved"
        problem = f"{type(error).__name__}: {error}"
    failed = torch.tensor([1.0 if problem else 0.0], device=accelerator.device)
    failed = accelerator.reduce(failed, reduction="sum") if accelerator.num_processes > 1 else failed
    if failed.item() > 0:
        if accelerator.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
        accelerator.wait_for_everyone()
        previous = list_checkpoints(output_dir)
        raise CheckpointError(
            f"could not write checkpoint {final}: {problem or 'another process failed to write its part'}. "
            f"Free disk space or fix the permissions of {output_dir}, then resume with "
            f"--resume_from_checkpoint latest ({'the last good one is ' + previous[-1].name if previous else 'no earlier checkpoint exists'})."
        )
    if accelerator.is_main_process:
        replace_folder(staging, final)  # re-saving a step after a resume swaps the old copy out
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(output_dir: str | os.PathLike, total_limit: int | None) -> list[Path]:
    """Delete the oldest complete checkpoints beyond ``total_limit`` (renamed away first, then removed)."""
    if not total_limit:
        return []
    found = list_checkpoints(output_dir)
    removed = found[: max(0, len(found) - total_limit)]
    for path in removed:
        doomed = path.with_name(path.name + ".deleting")
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    return removed


__all__ = [
    "PAPER_L1_WEIGHT",
    "LossTerms",
    "SeededCropDataset",
    "StreamBatchSampler",
    "antithetic_timesteps",
    "checkpoint_step",
    "collate_samples",
    "crop_seed",
    "derive_seed",
    "diffhdr_loss",
    "list_checkpoints",
    "PREDICTION_TYPES",
    "predicted_clean",
    "regression_target",
    "prune_checkpoints",
    "resolve_checkpoint",
    "save_checkpoint",
    "step_generator",
    "write_json_atomically",
]
