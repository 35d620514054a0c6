"""The ``none`` operator: the radiance as it is (times ``2**exposure``), clipped to [0, 1] and sRGB-encoded.

Radiance is in the reference frame's units, so this shows roughly what the reference exposure
showed: a check of the merge, not a finished photo. With ``saturation`` other than 1, colours are
scaled about their luminance first, and luminance above 1 is clipped keeping each pixel's hue
(:func:`~.colour.colour_from_luminance`) instead of channel by channel.
"""

from __future__ import annotations

import numpy as np

from .colour import colour_from_luminance, luminance, srgb_encode


def tonemap_none(radiance: np.ndarray, exposure: float = 0.0, saturation: float = 1.0,
                 detail: float = 1.0) -> np.ndarray:
    """Linear RGB radiance (H, W, 3) to sRGB-encoded float32 in [0, 1] by clipping; ``detail`` has no effect."""
    scaled = np.asarray(radiance, dtype=np.float32) * np.float32(2.0**exposure)
    if saturation != 1.0:
        source = luminance(scaled)
        scaled = colour_from_luminance(scaled, source, np.minimum(source, 1.0), saturation)
    return srgb_encode(scaled)
