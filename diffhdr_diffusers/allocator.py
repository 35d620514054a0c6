"""Process-wide tuning of the C allocator for CPU sampling.

glibc serves every allocation above its mmap threshold (32 MB at most by default) with fresh pages from
the kernel and gives them back on free, so each large activation tensor of a UNet call is page-faulted in
again. Raising the threshold keeps freed memory in the heap for reuse. On this project's CPU that made a
512-pixel window of the `paper` config 1.5x faster (`benchmarks/bench_window_batch.py`).

It changes the whole process, so the library never does it on its own. The ``diffhdr`` command does, unless
the environment variable ``DIFFHDR_REUSE_FREED_MEMORY`` is ``0`` (:func:`configure_from_environment`);
Python users call :func:`reuse_freed_memory` themselves. Either way the pipeline's window batch does not
follow this setting: a caller that tuned the allocator passes ``window_memory_budget=cpu_window_budget()``.
"""

from __future__ import annotations

import ctypes
import os

ENVIRONMENT_VARIABLE = "DIFFHDR_REUSE_FREED_MEMORY"
# The CPU window budget that suits the tuned allocator, under which larger batches are the faster ones
# (`benchmarks/bench_window_batch.py`); the pipeline's default is `pipelines.memory.CPU_WINDOW_BUDGET`.
TUNED_CPU_WINDOW_BUDGET = 1 << 30

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of glibc's malloc.h
_INT_MAX = 2**31 - 1
_reusing = False  # mirrors the C allocator's process-wide state, which cannot be read back


def reusing_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` took effect in this process."""
    return _reusing


def cpu_window_budget() -> int:
    """The CPU window-memory budget that suits this process's allocator, for the pipeline's
    ``window_memory_budget``: 1 GiB once :func:`reuse_freed_memory` took effect, else the pipeline's default."""
    from .pipelines.memory import CPU_WINDOW_BUDGET

    return TUNED_CPU_WINDOW_BUDGET if _reusing else CPU_WINDOW_BUDGET


def reuse_freed_memory(threshold: int = 1 << 30) -> bool:
    """Keep freed blocks of up to ``threshold`` bytes in the heap instead of returning them to the kernel.

    Returns whether the C library accepted it (glibc does; elsewhere this does nothing and returns False).
    Peak memory stays about the same; memory freed after the peak is returned later or not at all.
    """
    global _reusing
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    threshold = min(threshold, _INT_MAX)
    trim = min(2 * threshold, _INT_MAX)
    _reusing = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim))
    return _reusing


def configure_from_environment(default: bool = True) -> bool:
    """Apply ``DIFFHDR_REUSE_FREED_MEMORY``: ``1`` tunes the allocator, ``0`` leaves it alone, unset (or empty)
    means ``default``. Returns whether freed memory is reused now. The ``diffhdr`` command calls this at start-up.

    Raises:
        InputError: the variable holds anything else.
    """
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value not in ("", "0", "1"):
        from .errors import InputError

        raise InputError(f"{ENVIRONMENT_VARIABLE} must be 0 or 1, got {value!r}.")
    if value == "1" or (not value and default):
        return reuse_freed_memory()
    return _reusing
