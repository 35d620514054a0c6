"""Full-resolution work in horizontal bands of rows, on a few threads.

Every per-pixel stage that touches whole images (warping, merging, guided upsampling) runs band by band
through :func:`map_bands`: memory stays bounded by a band, and numpy and OpenCV release the GIL, so a few
threads share the work. Each band writes only its own rows, so the result never depends on the threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

BAND_PIXELS = 1 << 19  # full-resolution work runs in horizontal bands of about this many pixels


def bands(height: int, width: int, band_pixels: int | None = None):
    """``(y0, y1)`` row ranges covering ``height`` rows, each about ``band_pixels`` (default :data:`BAND_PIXELS`)
    pixels, at least 16 rows."""
    rows = max(16, (BAND_PIXELS if band_pixels is None else band_pixels) // max(width, 1))
    for start in range(0, height, rows):
        yield start, min(start + rows, height)


def band_workers() -> int:
    """Threads that full-resolution bands run on: ``DIFFHDR_BAND_THREADS``, else the usable CPUs (at most 4)."""
    value = os.environ.get("DIFFHDR_BAND_THREADS", "")
    if value.strip().isdigit() and int(value) > 0:
        return int(value)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def map_bands(fn, height: int, width: int, parallel: bool = True, band_pixels: int | None = None) -> None:
    """Call ``fn(y0, y1)`` for every band of :func:`bands`, on a few threads (numpy and OpenCV release the GIL).

    Each call must write only its own rows, so the result does not depend on the order or the threads.
    """
    spans = list(bands(height, width, band_pixels))
    workers = band_workers() if parallel else 1
    if workers == 1 or len(spans) == 1:
        for y0, y1 in spans:
            fn(y0, y1)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(spans))) as pool:
        for future in [pool.submit(fn, y0, y1) for y0, y1 in spans]:
            future.result()
