"""Schedulers for DiffHDR: the paper's DDIM sampler, and any diffusers scheduler by name."""

from __future__ import annotations

import numpy as np
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DEISMultistepScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LMSDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from ..errors import InputError

NUM_TRAIN_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02

SCHEDULERS: dict[str, type[SchedulerMixin]] = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "dpm++": DPMSolverMultistepScheduler,
    "unipc": UniPCMultistepScheduler,
    "deis": DEISMultistepScheduler,
    "euler": EulerDiscreteScheduler,
    "heun": HeunDiscreteScheduler,
    "lms": LMSDiscreteScheduler,
}


def original_betas() -> list[float]:
    """The paper's linear betas: computed in float64 and cast to float32, as the original does."""
    betas = np.linspace(BETA_START, BETA_END, NUM_TRAIN_TIMESTEPS, dtype=np.float64).astype(np.float32)
    return betas.tolist()


def original_ddim_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    """A DDIMScheduler that reproduces the original DiffHDR sampler (eta 0, final step to alpha 1).

    ``prediction_type`` other than the paper's ``"epsilon"`` suits models trained with that target.
    """
    return DDIMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_schedule="linear",
        beta_start=BETA_START,
        beta_end=BETA_END,
        trained_betas=original_betas(),
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        timestep_spacing="leading",
        prediction_type=prediction_type,
    )


def scheduler_from_name(name: str, config) -> SchedulerMixin:
    """Build the scheduler called ``name`` (see :data:`SCHEDULERS`) from another scheduler's config."""
    key = name.lower().replace("_", "").replace("-", "")
    aliases = {k.replace("-", "").replace("+", ""): k for k in SCHEDULERS}
    aliases.update({"dpmsolver": "dpm++", "dpmsolver++": "dpm++", "dpmpp": "dpm++"})
    key = aliases.get(key.replace("+", ""), aliases.get(key))
    if key is None:
        raise InputError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    if key == "lms":
        try:
            import scipy  # noqa: F401
        except ImportError as error:
            raise InputError("the 'lms' scheduler needs scipy: pip install scipy") from error
    extra = {"algorithm_type": "dpmsolver++"} if key == "dpm++" else {}
    return SCHEDULERS[key].from_config(config, **extra)


__all__ = ["SCHEDULERS", "original_betas", "original_ddim_scheduler", "scheduler_from_name"]
