"""Display helpers of the web app: tonemapping at a chosen exposure, LDR frames and uncertainty as 8-bit RGB.

:func:`tonemap_at` is :func:`diffhdr_diffusers.io.tonemap_preview` (the same auto-exposure, extended
Reinhard curve and sRGB encoding) with an extra exposure offset in stops: at 0 stops both give the
same image, and each stop doubles the light the curve sees. The radiance itself is never changed, so
moving the app's exposure slider re-tonemaps the kept merge without merging again.
"""

from __future__ import annotations

import numpy as np

from ..io import tonemap_preview
from ..io.preview import LUMINANCE_WEIGHTS, PREVIEW_PERCENTILE, PREVIEW_WHITE

# Inferno-like ramp (dark purple -> red -> yellow), linearly interpolated between these stops.
_UNCERTAINTY_STOPS = np.array(
    [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39],
     [252, 255, 164]],
    dtype=np.float32,
)


def tonemap_at(radiance: np.ndarray, stops: float = 0.0) -> np.ndarray:
    """Tonemap linear RGB radiance (H, W, 3) to uint8 sRGB, ``stops`` brighter than the automatic exposure.

    The automatic exposure maps the 99.5th percentile of luminance to the curve's white point, as
    :func:`~diffhdr_diffusers.io.tonemap_preview` does (which this equals at 0 stops); ``stops`` then
    multiplies the light the curve sees by ``2**stops``.
    """
    radiance = np.asarray(radiance, dtype=np.float32)
    if stops == 0.0:
        return tonemap_preview(radiance)
    luminance = radiance @ LUMINANCE_WEIGHTS
    reference = float(np.percentile(luminance, PREVIEW_PERCENTILE)) if luminance.size else 0.0
    if reference <= 0.0:
        reference = float(luminance.max()) if luminance.size and luminance.max() > 0 else 1.0
    scaled_luminance = luminance * np.float32(PREVIEW_WHITE * 2.0**stops / reference)
    display_luminance = scaled_luminance * (1.0 + scaled_luminance / PREVIEW_WHITE**2) / (1.0 + scaled_luminance)
    ratio = np.divide(display_luminance, luminance, out=np.zeros_like(luminance), where=luminance > 0)
    display = np.clip(radiance * ratio[..., None], 0.0, 1.0)
    encoded = np.where(display <= 0.0031308, 12.92 * display, 1.055 * np.power(display, 1.0 / 2.4) - 0.055)
    return np.round(np.clip(encoded, 0.0, 1.0) * 255.0).astype(np.uint8)


def ldr_to_display(image: np.ndarray) -> np.ndarray:
    """An LDR frame as read (float RGB in [0, 1], camera-encoded) to uint8 RGB as a viewer would show it."""
    return np.round(np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def uncertainty_to_display(std: np.ndarray) -> tuple[np.ndarray, float]:
    """A per-pixel std map ((H, W) or (H, W, 3), mu-law units) to a uint8 RGB heat map and its scale.

    Channels are averaged; the colour ramp spans 0 (dark) to the map's 99.5th percentile (bright yellow),
    which is returned so that the page can label it.
    """
    std = np.asarray(std, dtype=np.float32)
    if std.ndim == 3:
        std = std.mean(axis=2)
    top = float(np.percentile(std, 99.5)) if std.size else 0.0
    top = top if top > 0 else (float(std.max()) if std.size and std.max() > 0 else 1.0)
    position = np.clip(std / np.float32(top), 0.0, 1.0) * (len(_UNCERTAINTY_STOPS) - 1)
    lower = np.floor(position).astype(np.int64).clip(0, len(_UNCERTAINTY_STOPS) - 2)
    fraction = (position - lower)[..., None]
    colours = _UNCERTAINTY_STOPS[lower] * (1 - fraction) + _UNCERTAINTY_STOPS[lower + 1] * fraction
    return np.round(colours).astype(np.uint8), top
