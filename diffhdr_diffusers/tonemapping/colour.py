"""What every operator shares: luminance, auto-exposure percentiles, colour from luminance, the sRGB curve.

Operators work on luminance ``Y`` (Rec. 709 / sRGB primaries) and give colour back with
:func:`colour_from_luminance`, which keeps each pixel's linear chromaticity (raised to the
``saturation`` power) and desaturates towards grey, rather than clipping channels, where a colour
would leave the display's gamut.
"""

from __future__ import annotations

import numpy as np

LUMINANCE_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709 / sRGB primaries
PERCENTILE_SAMPLES = 1 << 20
"""Auto-exposure percentiles of larger images are taken on a regular grid of about this many pixels."""


def luminance(radiance: np.ndarray) -> np.ndarray:
    """Linear RGB (H, W, 3) to luminance (H, W), float32."""
    return np.asarray(radiance, dtype=np.float32) @ LUMINANCE_WEIGHTS


def luminance_percentiles(values: np.ndarray, percentiles) -> np.ndarray:
    """Percentiles of an (H, W) map; above :data:`PERCENTILE_SAMPLES` pixels, of a regular subgrid of it.

    The subgrid keeps a 24 MP photo's auto-exposure to milliseconds; small images use every pixel.
    """
    step = max(1, int(np.sqrt(values.size / PERCENTILE_SAMPLES)))
    sample = values[::step, ::step]
    if sample.size == 0:
        return np.zeros(len(np.atleast_1d(percentiles)))
    return np.percentile(sample, percentiles)


def white_reference(luminance_map: np.ndarray, percentile: float) -> float:
    """The luminance an auto-exposure maps to white: a high percentile, or the maximum (or 1) for dark maps."""
    reference = float(luminance_percentiles(luminance_map, percentile)) if luminance_map.size else 0.0
    if reference <= 0.0:
        peak = float(luminance_map.max()) if luminance_map.size else 0.0
        reference = peak if peak > 0 else 1.0
    return reference


STRIP_PIXELS = 1 << 18
"""Per-pixel stages run over strips of rows of about this many pixels, which keeps them in cache."""


def display_image(radiance: np.ndarray, source: np.ndarray, display: np.ndarray, saturation: float = 1.0) -> np.ndarray:
    """The finished sRGB-encoded float32 image: :func:`colour_from_luminance`, then :func:`srgb_encode`, by strips."""
    height, width = source.shape
    rows = max(1, STRIP_PIXELS // max(width, 1))
    image = np.empty((height, width, 3), np.float32)
    for top in range(0, height, rows):
        strip = slice(top, top + rows)
        image[strip] = srgb_encode(colour_from_luminance(radiance[strip], source[strip], display[strip], saturation))
    return image


def colour_from_luminance(radiance: np.ndarray, source: np.ndarray, display: np.ndarray,
                          saturation: float = 1.0) -> np.ndarray:
    """Display-linear RGB in [0, 1] whose luminance is ``display``, with the colour of ``radiance``.

    ``source`` is the luminance of ``radiance``. Each pixel's chromaticity ``rgb / Y`` is kept
    (``saturation`` 1), or its distance from grey is scaled in linear light by ``saturation``
    (``grey + saturation (rgb - grey)``, which keeps luminance; 0 is grey). A colour that would
    leave [0, 1] is moved towards grey at its luminance until it fits, which keeps luminance and hue;
    channels then only clip where ``display`` itself exceeds 1 (or below 0 when saturation > 1).
    """
    display = np.clip(display, 0.0, 1.0).astype(np.float32, copy=False)
    ratio = np.divide(display, source, out=np.zeros_like(display), where=source > 0)
    rgb = np.asarray(radiance, dtype=np.float32) * ratio[..., None]
    if saturation != 1.0:
        grey = display[..., None]
        rgb -= grey
        rgb *= np.float32(saturation)
        rgb += grey
    peak = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    if (peak > 1.0).any():
        # Shrink the chroma of out-of-gamut pixels: grey + t (rgb - grey), t putting the largest channel at 1.
        # The largest channel is never below the luminance (a weighted mean), so t >= 1 for every other pixel.
        grey = display[..., None]
        spread = peak[..., None] - grey
        shrink = np.divide(1.0 - grey, spread, out=np.ones_like(spread), where=spread > 0)
        np.minimum(shrink, 1.0, out=shrink)
        rgb -= grey
        rgb *= shrink
        rgb += grey
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (linear toe, then a 1/2.4 power) of display-linear values in [0, 1], float32."""
    encoded = np.array(linear, dtype=np.float32)  # a copy, worked on in place
    np.clip(encoded, 0.0, 1.0, out=encoded)
    toe = encoded <= 0.0031308
    toe_values = encoded[toe] * np.float32(12.92)
    np.power(encoded, np.float32(1.0 / 2.4), out=encoded)
    encoded *= np.float32(1.055)
    encoded -= np.float32(0.055)
    encoded[toe] = toe_values
    return np.clip(encoded, 0.0, 1.0, out=encoded)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_encode`: sRGB-encoded values in [0, 1] to display-linear, float32."""
    encoded = np.clip(np.asarray(encoded, dtype=np.float32), 0.0, 1.0)
    return np.where(encoded <= 0.04045, encoded / 12.92,
                    np.power((encoded + 0.055) / 1.055, np.float32(2.4))).astype(np.float32, copy=False)
