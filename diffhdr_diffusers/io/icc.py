"""The colours of an LDR frame's embedded ICC profile: the matrix from its linear RGB to linear Rec.709/sRGB.

A camera or raw converter that writes Adobe RGB (1998) or Display P3 files embeds the profile; read as sRGB,
their colours come out desaturated and the finished photo, tagged sRGB, shows them so. A matrix/TRC profile's
colorant tags give each primary's XYZ in the profile connection space (D50), and so do those of Pillow's sRGB
profile: ``inverse(sRGB colorants) @ frame colorants`` takes the frame's linear RGB to linear sRGB primaries,
which are Rec.709's. The tone curve is not read here: the camera model linearises the frames (an estimated
response, or the one named). Profiles without colorants (LUT-based, greyscale) and sRGB-like ones give ``None``.
"""

from __future__ import annotations

import functools
import io
import os

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

SAME_PRIMARIES = 2e-3  # largest element difference from the identity below which the primaries count as sRGB's


def _colorants(profile: ImageCms.ImageCmsProfile) -> np.ndarray | None:
    """(3, 3) matrix whose columns are the red, green and blue colorants' XYZ (D50), or None."""
    core = profile.profile
    colorants = [core.red_colorant, core.green_colorant, core.blue_colorant]
    if core.xcolor_space.strip() != "RGB" or any(colorant is None for colorant in colorants):
        return None
    return np.array([colorant[0] for colorant in colorants], dtype=np.float64).T


@functools.lru_cache(maxsize=1)
def _srgb_colorants() -> np.ndarray:
    return _colorants(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")))


def rgb_to_rec709(path: str | os.PathLike) -> tuple[np.ndarray, str] | None:
    """``(matrix, profile name)`` for a frame whose embedded ICC profile has primaries other than sRGB's: the
    (3, 3) matrix from its linear RGB to linear Rec.709; ``None`` without a profile, for sRGB-like primaries,
    or for a profile this cannot read (its colours are then taken as sRGB's)."""
    try:
        with Image.open(path) as image:
            data = image.info.get("icc_profile")
        if not data:
            return None
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        colorants = _colorants(profile)
    except (OSError, UnidentifiedImageError, ValueError, ImageCms.PyCMSError):
        return None
    if colorants is None or not np.all(np.isfinite(colorants)) or abs(np.linalg.det(colorants)) < 1e-6:
        return None
    matrix = np.linalg.solve(_srgb_colorants(), colorants)
    if np.abs(matrix - np.eye(3)).max() < SAME_PRIMARIES:
        return None
    return matrix.astype(np.float32), (profile.profile.profile_description or "embedded").strip()
