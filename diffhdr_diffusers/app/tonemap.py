"""Display helpers of the web app: tone mapping at a chosen exposure, LDR frames and uncertainty as 8-bit RGB.

:func:`tonemap_at` is :func:`diffhdr_diffusers.io.tonemap_preview` (the library's default ``natural``
operator, :mod:`diffhdr_diffusers.tonemapping`) with the exposure offset in stops: at 0 stops both
give the same image, and each stop doubles the light. The radiance itself is never changed, so
moving the app's exposure slider re-tonemaps the kept merge without merging again.
"""

from __future__ import annotations

import numpy as np

from ..io.preview import tonemap_preview
from ..tonemapping import DEFAULT_OPERATOR

# Inferno-like ramp (dark purple -> red -> yellow), linearly interpolated between these stops.
_UNCERTAINTY_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 255, 164]],
    dtype=np.float32,
)


def tonemap_at(radiance: np.ndarray, stops: float = 0.0, operator: str = DEFAULT_OPERATOR,
               saturation: float = 1.0, detail: float = 1.0) -> np.ndarray:
    """Tone map linear RGB radiance (H, W, 3) to uint8 sRGB, ``stops`` brighter than the automatic exposure."""
    return tonemap_preview(radiance, operator, float(stops), saturation, detail)


def ldr_to_display(image: np.ndarray) -> np.ndarray:
    """An LDR frame as read (float RGB in [0, 1], camera-encoded) to uint8 RGB as a viewer would show it."""
    return np.round(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


#: The least std (mu-law) the heat map's top colour stands for: 0.01 is PSNR-mu 40 dB's RMS error, about where
#: a difference starts to show.
UNCERTAINTY_FLOOR = 0.01


def uncertainty_to_display(std: np.ndarray) -> tuple[np.ndarray, float]:
    """A per-pixel std map ((H, W) or (H, W, 3), mu-law units) to a uint8 RGB heat map and its scale.

    Channels are averaged; the colour ramp spans 0 (dark) to the map's 99.5th percentile (bright yellow), but
    never to less than :data:`UNCERTAINTY_FLOOR`, so that a negligible spread stays dark instead of being
    stretched to look alarming. The top is returned so that the page can label it.
    """
    std = np.asarray(std, dtype=np.float32)
    if std.ndim == 3:
        std = std.mean(axis=2)
    top = max(float(np.percentile(std, 99.5)) if std.size else 0.0, UNCERTAINTY_FLOOR)
    position = np.clip(std / np.float32(top), 0.0, 1.0) * (len(_UNCERTAINTY_STOPS) - 1)
    lower = np.floor(position).astype(np.int64).clip(0, len(_UNCERTAINTY_STOPS) - 2)
    fraction = (position - lower)[..., None]
    colours = _UNCERTAINTY_STOPS[lower] * (1 - fraction) + _UNCERTAINTY_STOPS[lower + 1] * fraction
    return np.round(colours).astype(np.uint8), top
