"""Tonemapped 8-bit previews of linear radiance."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import OutputError
from .atomic import atomic_path
from .radiance import check_radiance

PREVIEW_PERCENTILE = 99.5
PREVIEW_WHITE = 4.0
LUMINANCE_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709 / sRGB primaries


def tonemap_preview(radiance: np.ndarray) -> np.ndarray:
    """Tonemap linear RGB radiance (H, W, 3) to display-referred uint8 sRGB (H, W, 3).

    A global operator, the same for every pixel:

    1. Exposure: scale so that the 99.5th percentile of luminance ``L`` (Rec. 709 weights) becomes
       ``W = 4``. Absolute scale does not matter, and the brightest 0.5% (light sources, specular
       highlights) do not darken the rest of the image.
    2. Extended Reinhard curve on luminance, ``L_d = L (1 + L / W^2) / (1 + L)``: linear in the shadows,
       compressive in the highlights, and exactly 1 at ``L = W``. Colours are scaled by ``L_d / L``,
       which keeps hue and saturation, then clipped to [0, 1].
    3. The sRGB transfer curve (linear toe, then 1/2.4 power) and rounding to 8 bits.
    """
    luminance = radiance.astype(np.float32) @ LUMINANCE_WEIGHTS
    reference = float(np.percentile(luminance, PREVIEW_PERCENTILE)) if luminance.size else 0.0
    if reference <= 0.0:
        reference = float(luminance.max()) if luminance.size and luminance.max() > 0 else 1.0
    scaled_luminance = luminance * np.float32(PREVIEW_WHITE / reference)
    display_luminance = scaled_luminance * (1.0 + scaled_luminance / PREVIEW_WHITE**2) / (1.0 + scaled_luminance)
    ratio = np.divide(display_luminance, luminance, out=np.zeros_like(luminance), where=luminance > 0)
    display = np.clip(radiance * ratio[..., None], 0.0, 1.0)
    encoded = np.where(display <= 0.0031308, 12.92 * display, 1.055 * np.power(display, 1.0 / 2.4) - 0.055)
    return np.round(np.clip(encoded, 0.0, 1.0) * 255.0).astype(np.uint8)


def write_preview(path: str | os.PathLike, radiance: np.ndarray, overwrite: bool = False) -> Path:
    """Write an 8-bit PNG preview of linear radiance (see :func:`tonemap_preview`), atomically.

    Raises :class:`~diffhdr_diffusers.errors.InputError` for non-finite or negative radiance and
    :class:`OutputError` for an existing file without ``overwrite`` or an unusable folder.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OutputError(f"{path}: previews are written as .png, not {path.suffix!r}.")
    preview = tonemap_preview(check_radiance(path, radiance))
    with atomic_path(path, overwrite) as temporary:
        if not cv2.imwrite(str(temporary), np.ascontiguousarray(preview[..., ::-1])):
            raise OutputError(f"{path}: OpenCV could not write the PNG preview.")
    return path
