"""The ``global`` operator: one curve for every pixel, extended Reinhard with automatic exposure.

1. Exposure: scale so that the 99.5th percentile of luminance ``L`` becomes ``W = 4``, times
   ``2**exposure``. Absolute scale does not matter, and the brightest 0.5 % (light sources, specular
   highlights) do not darken the rest of the image.
2. Extended Reinhard curve on luminance, ``L_d = L (1 + L / W^2) / (1 + L)``: linear in the shadows,
   compressive in the highlights, and exactly 1 at ``L = W``.
3. Colour from luminance (:func:`~.colour.colour_from_luminance`) and the sRGB transfer curve.

It is monotone and cheap, the preview the library had before the ``natural`` operator. What it
cannot do is show a sunlit window and a dark room in one picture: it leaves one of them near black
or white.
"""

from __future__ import annotations

import numpy as np

from .colour import display_image, luminance, white_reference

WHITE_PERCENTILE = 99.5
WHITE = 4.0


def reinhard_curve(luminance_map: np.ndarray, exposure: float = 0.0,
                   white_percentile: float = WHITE_PERCENTILE) -> np.ndarray:
    """Display-linear luminance in [0, 1] from scene luminance: auto-exposure, then extended Reinhard."""
    reference = white_reference(luminance_map, white_percentile)
    scaled = luminance_map * np.float32(WHITE * 2.0**exposure / reference)
    return np.minimum(scaled * (1.0 + scaled / np.float32(WHITE**2)) / (1.0 + scaled), 1.0)


def tonemap_global(radiance: np.ndarray, exposure: float = 0.0, saturation: float = 1.0,
                   detail: float = 1.0) -> np.ndarray:
    """Linear RGB radiance (H, W, 3) to sRGB-encoded float32 in [0, 1]; ``detail`` has no effect here."""
    source = luminance(radiance)
    return display_image(radiance, source, reinhard_curve(source, exposure), saturation)
