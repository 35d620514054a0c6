"""Process-wide tuning of the C allocator for CPU sampling.

glibc serves every allocation above its mmap threshold (32 MB at most by default) with fresh pages from
the kernel and gives them back on free, so each large activation tensor of a UNet call is page-faulted in
again. Raising the threshold keeps freed memory in the heap for reuse. On this project's CPU that made a
512-pixel window of the `paper` config 1.5x faster (`benchmarks/bench_window_batch.py`). It changes the
whole process, so the library never does it on its own: the ``diffhdr`` command does, and Python users may.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of glibc's malloc.h
_INT_MAX = 2**31 - 1
_reusing = False  # mirrors the C allocator's process-wide state, which cannot be read back


def reusing_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` took effect in this process (large CPU batches are then cheap)."""
    return _reusing


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
