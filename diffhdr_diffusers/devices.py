"""Device selection: the one place that decides where torch work runs."""

from __future__ import annotations

import os

from .errors import InputError

CPU_ENVIRONMENT = "ACCELERATE_USE_CPU"  # accelerate's switch to force the CPU


def cpu_forced() -> bool:
    """Whether ``ACCELERATE_USE_CPU`` asks for the CPU even when CUDA is present."""
    return os.environ.get(CPU_ENVIRONMENT, "").lower() in ("1", "true", "yes")


def default_device() -> str:
    """``"cuda"`` when a CUDA device is present, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None = None, flag: str = "--device") -> str:
    """The device to run on: ``name`` checked, or :func:`default_device` when ``name`` is None.

    An unknown name, or a CUDA device that is not present, raises :class:`InputError` naming ``flag``.
    """
    import torch

    if name is None:
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"{flag} {name!r}: not a device name; use cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise InputError(f"{flag} {name!r}: this CUDA device is not available here; use {flag} cpu.")
    return name
