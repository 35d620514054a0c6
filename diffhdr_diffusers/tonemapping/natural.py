"""The ``natural`` operator (the default): local exposure from an edge-aware base layer, detail kept at full contrast.

A sunlit window and a dark room need different exposures. This operator gives every pixel the
exposure of its neighbourhood, as exposure fusion of many virtual exposures of the radiance would,
but chooses it continuously from an edge-aware base layer, so no exposure weights blur across edges
(the cause of fusion's halos) and nothing ghosts (there is one radiance map, already deghosted):

1. ``log2`` luminance ``l`` is split into a base ``b`` (large-scale light, edges kept) and detail
   ``l - b``. The base is a guided filter of ``l`` guided by itself (He, Sun and Tang, 2013),
   its coefficients computed with the longer side at :data:`GUIDE_PIXELS` and applied at full
   resolution (He and Sun's fast guided filter). A step in light stays a step in the base, so the
   detail layer holds no edge and nothing halos.
2. Only as much of the base's range is compressed as the display needs: its 1st-99th percentile
   span is brought down to :data:`BASE_RANGE` stops (a scene that already fits is left alone), and
   the detail is added back unchanged (times ``detail``): ``l' = k b + detail (l - b)``, so texture
   keeps its contrast in highlights and shadows alike (Durand and Dorsey, 2002, with a guided filter).
3. Auto-exposure puts the base's 99th percentile at display luminance :data:`BASE_WHITE` (times
   ``2**exposure``); detail above it rolls off smoothly from :data:`KNEE` towards white
   (:func:`soft_clip`), so highlights keep texture instead of clipping. Colour is put back with each
   pixel's chromaticity (:func:`~.colour.colour_from_luminance`), its saturation lowered as much as
   the base was compressed (:func:`colour_saturation`), then the sRGB curve.

Everything is a handful of full-resolution passes (a ``log2``, an ``exp2``, two resizes and the
per-pixel colour): 1.5-3.5 s for a 24 MP photo on this project's 2-core CPU, busy or not
(``python benchmarks/tonemap.py``).
"""

from __future__ import annotations

import cv2
import numpy as np

from .colour import display_image, luminance, luminance_percentiles

BASE_RANGE = 7.0
"""Stops of large-scale light (base 1st to 99th percentile) the display shows; wider scenes are compressed to it."""
BASE_PERCENTILES = (1.0, 99.0)
BASE_RADIUS = 1 / 24
"""The base layer's neighbourhood: this fraction of the image's longer side."""
EDGE_STOPS = 0.5
"""Light changes (in stops, as a local standard deviation) above this are edges the base keeps; below, detail."""
GUIDE_PIXELS = 512
"""The guided filter's coefficients are computed with the longer side at about this many pixels."""
BASE_WHITE = 0.8
"""Display luminance (linear, white = 1) of the base's 99th percentile at ``exposure`` 0: headroom for its detail."""
KNEE = 0.8
"""Display luminance above this rolls off smoothly towards white (:func:`soft_clip`)."""
DARKEST_STOPS = 24.0
"""Luminance more than this many stops below the 99.5th percentile (and zeros) counts as that floor."""


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def base_layer(log_luminance: np.ndarray) -> np.ndarray:
    """Edge-aware large-scale part of a ``log2`` luminance map: a fast self-guided filter (see module doc)."""
    height, width = log_luminance.shape
    scale = min(1.0, GUIDE_PIXELS / max(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(log_luminance, small_size, interpolation=cv2.INTER_AREA) if scale < 1 else log_luminance
    radius = max(1, round(BASE_RADIUS * max(small.shape)))
    mean = _box(small, radius)
    variance = np.maximum(_box(small * small, radius) - mean * mean, 0.0)
    slope = variance / (variance + np.float32(EDGE_STOPS**2))
    offset = mean - slope * mean
    slope, offset = _box(slope, radius), _box(offset, radius)
    if scale < 1:
        slope = cv2.resize(slope, (width, height), interpolation=cv2.INTER_LINEAR)
        offset = cv2.resize(offset, (width, height), interpolation=cv2.INTER_LINEAR)
    return slope * log_luminance + offset


def colour_saturation(compression: float) -> float:
    """The saturation that keeps colours looking natural after a contrast ``compression`` ``c`` (1 = none).

    The shape of Mantiuk, Mantiuk, Tomaszewska and Heidrich's fit ("Color correction for tone mapping",
    2009), ``s = (1 + k1) c^k2 / (1 + k1 c^k2)`` with their constants for non-linear tone curves,
    k1 = 1.6774 and k2 = 0.9925; it is applied here with the cheaper, luminance-preserving linear
    form (:func:`~.colour.colour_from_luminance`). Without it, shadows lifted by many stops come out
    garish; a scene that needs no compression keeps its colour (s = 1).
    """
    strength = compression**0.9925
    return (1.0 + 1.6774) * strength / (1.0 + 1.6774 * strength)


def natural_luminance(source: np.ndarray, exposure: float = 0.0, detail: float = 1.0) -> tuple[np.ndarray, float]:
    """Display-linear luminance in [0, 1] of scene luminance ``source`` (H, W), steps 1-3 of the module doc,
    and the base compression ``k`` (1 = none)."""
    peak = float(luminance_percentiles(source, 99.5)) if source.size else 0.0
    peak = peak if peak > 0 else float(source.max(initial=0.0)) or 1.0
    floor = np.float32(peak * 2.0**-DARKEST_STOPS)
    log_luminance = np.log2(np.maximum(source, floor))
    base = base_layer(log_luminance)
    low, high = luminance_percentiles(base, BASE_PERCENTILES)
    compression = np.float32(min(1.0, BASE_RANGE / max(float(high - low), 1e-6)))
    log_display = compression * (base - np.float32(high)) + np.float32(detail) * (log_luminance - base)
    display = np.exp2(log_display + np.float32(np.log2(BASE_WHITE) + exposure))
    return soft_clip(display), float(compression)


def soft_clip(display: np.ndarray, knee: float = KNEE) -> np.ndarray:
    """Identity below ``knee``, then a smooth roll-off (slope 1 at the knee) that reaches 1 only at infinity."""
    over = display > knee
    headroom = np.float32(1.0 - knee)
    display[over] = knee + headroom * np.tanh((display[over] - np.float32(knee)) / headroom)
    return display


def tonemap_natural(radiance: np.ndarray, exposure: float = 0.0, saturation: float = 1.0,
                    detail: float = 1.0) -> np.ndarray:
    """Linear RGB radiance (H, W, 3) to sRGB-encoded float32 in [0, 1] with the local operator above."""
    source = luminance(radiance)
    display, compression = natural_luminance(source, exposure, detail)
    return display_image(radiance, source, display, saturation * colour_saturation(compression))
