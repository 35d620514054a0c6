"""Processing resolution: run the model on a downscaled bracket, bring its result back to the input size.

The names and meanings are Marigold's: ``processing_resolution`` is the longest side the model runs at
(0: the input's own size); with ``match_input_resolution`` the result comes back at the input size.

The way back is guided upsampling (the fast guided filter of He and Sun, 2015). The guide is an image the
pipeline can make at both sizes: the flow-merge prior for aligned models, the reference frame's HDR view in
the mu-law domain for the paper's. At the processing size the model's correction of the guide
(``output - guide``, mu-law) is fitted per channel, in small windows, as ``a * guide + b``; ``a`` and ``b``
are smoothed, upsampled bilinearly and applied to the full-size guide. Fine detail thus comes from the
photos rather than from an upsampler, and where the model returned its guide unchanged (``a = b = 0``) the
full-size result is exactly the full-size guide.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..bands import map_bands
from ..errors import InputError

# Window radius of the local linear fit (processing-size pixels) and its regulariser (a variance in the mu-law
# domain). A smooth correction carried back works best: on 6 held-out 1000x1500 scenes (--seed 2002) a 2,500-step
# checkpoint of the bundled model at 384 scored 43.13 dB PSNR-mu with (4, 1e-2) against 43.15 at native
# resolution; (2, 1e-4) gave 42.89, (1, 1e-4) 42.83, (2, 1e-2) 43.02 (README: Performance).
GUIDE_RADIUS = 4
GUIDE_EPS = 1e-2


def check_processing_resolution(processing_resolution) -> None:
    """Refuse anything but an int >= 0 (bools included), naming the argument."""
    value = processing_resolution
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"processing_resolution must be a non-negative integer (0: the input's size), "
                         f"got {processing_resolution!r}.")


def processing_size(height: int, width: int, processing_resolution: int, minimum: int = 1) -> tuple[int, int]:
    """``(height, width)`` with the longest side at most ``processing_resolution`` (aspect kept; 0: unchanged).

    Inputs already that small are never upscaled. ``minimum`` bounds the shorter side from below.
    """
    longest = max(height, width)
    if processing_resolution == 0 or longest <= processing_resolution:
        return height, width
    scale = processing_resolution / longest
    return max(minimum, round(height * scale)), max(minimum, round(width * scale))


def resize_frames(frames: Sequence[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Area-downscale (H, W, C) frames to ``size`` (height, width); frames of that size are returned as they are."""
    height, width = size
    return [frame if frame.shape[:2] == (height, width) else
            cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames]


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.blur(image, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def _upsampled_rows(image: np.ndarray, height: int, width: int, y0: int, y1: int) -> np.ndarray:
    """Rows ``y0:y1`` of ``image`` bilinearly resized to (height, width) (pixel centres aligned, as cv2.resize)."""
    small_h, small_w = image.shape[:2]
    map_x = (np.arange(width, dtype=np.float32) + 0.5) * np.float32(small_w / width) - 0.5
    map_y = (np.arange(y0, y1, dtype=np.float32) + 0.5) * np.float32(small_h / height) - 0.5
    map_x, map_y = np.broadcast_to(map_x, (y1 - y0, width)), np.broadcast_to(map_y[:, None], (y1 - y0, width))
    return cv2.remap(image, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def upsample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of (h, w, C) to (height, width, C), computed in bands of rows."""
    out = np.empty((height, width, image.shape[2]), np.float32)

    def band(y0: int, y1: int) -> None:
        out[y0:y1] = _upsampled_rows(image, height, width, y0, y1).reshape(y1 - y0, width, -1)

    map_bands(band, height, width)
    return out


def guided_upsample(target: np.ndarray, guide: np.ndarray, full_guide: np.ndarray, radius: int = GUIDE_RADIUS,
                    eps: float = GUIDE_EPS, out: np.ndarray | None = None) -> np.ndarray:
    """Bring ``target`` (h, w, C) to the size of ``full_guide`` (H, W, C), guided by it (fast guided filter).

    Args:
        target: the model's output at the processing size.
        guide: the guide at the processing size (the full-size guide, area-downscaled).
        full_guide: the guide at full size.
        radius, eps: window radius and regulariser of the local linear fit ``target - guide ~ a * guide + b``.
        out: where to write the (H, W, C) result (``full_guide`` itself works); a new array by default.
    """
    guide = np.asarray(guide, np.float32)
    correction = np.asarray(target, np.float32) - guide
    mean_guide, mean_correction = _box(guide, radius), _box(correction, radius)
    variance = _box(guide * guide, radius) - mean_guide * mean_guide
    covariance = _box(guide * correction, radius) - mean_guide * mean_correction
    a = covariance / (np.maximum(variance, 0.0) + np.float32(eps))
    b = mean_correction - a * mean_guide
    coefficients = np.concatenate([_box(a, radius), _box(b, radius)], axis=-1)
    height, width, channels = full_guide.shape
    out = np.empty_like(full_guide, dtype=np.float32) if out is None else out

    def band(y0: int, y1: int) -> None:
        rows = _upsampled_rows(coefficients, height, width, y0, y1).reshape(y1 - y0, width, 2 * channels)
        base = full_guide[y0:y1]
        out[y0:y1] = base + base * rows[..., :channels] + rows[..., channels:]

    map_bands(band, height, width)
    return out
