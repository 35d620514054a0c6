"""Tone-mapped 8-bit previews of linear radiance: the finished photo of :mod:`diffhdr_diffusers.tonemapping`.

The operator is ``natural`` unless asked otherwise; :func:`write_preview` writes an 8-bit PNG with
the sRGB profile, the settings and (given ``reference``) the camera EXIF, as :func:`.photo.write_photo` does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..tonemapping import DEFAULT_OPERATOR, LUMINANCE_WEIGHTS, to_bits, tonemap
from .formats import PREVIEW_SUFFIXES
from .photo import write_photo

__all__ = ["LUMINANCE_WEIGHTS", "tonemap_preview", "write_preview"]


def tonemap_preview(radiance: np.ndarray, operator: str = DEFAULT_OPERATOR, exposure: float = 0.0,
                    saturation: float = 1.0, detail: float = 1.0) -> np.ndarray:
    """Tone map linear RGB radiance (H, W, 3) to uint8 sRGB by :func:`~diffhdr_diffusers.tonemapping.tonemap`."""
    return to_bits(tonemap(radiance, operator, exposure, saturation, detail))


def write_preview(path: str | os.PathLike, radiance: np.ndarray, overwrite: bool = False,
                  operator: str = DEFAULT_OPERATOR, exposure: float = 0.0, saturation: float = 1.0,
                  detail: float = 1.0, reference: str | os.PathLike | None = None) -> Path:
    """Write an 8-bit PNG or JPEG preview of linear radiance (see :func:`tonemap_preview`), atomically.

    Raises :class:`~diffhdr_diffusers.errors.InputError` for non-finite or negative radiance and
    :class:`OutputError` for another suffix than ``.png``, an existing file without ``overwrite``
    or an unusable folder.
    """
    path = Path(path)
    if path.suffix.lower() not in PREVIEW_SUFFIXES:
        raise OutputError(f"{path}: previews are written as {', '.join(PREVIEW_SUFFIXES)}, not {path.suffix!r}.")
    return write_photo(path, radiance, operator, exposure, saturation, detail, bits=8, reference=reference,
                       overwrite=overwrite)
