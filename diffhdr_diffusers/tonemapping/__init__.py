"""Tone mapping: a finished, display-ready photo from linear radiance.

:func:`tonemap` is the one entry point; every front end (``--preview``, photo outputs, the app,
batch previews, figures) calls it. Operators, one module each:

- ``natural`` (default, :mod:`.natural`): local exposure from an edge-aware base layer, so a sunlit
  window and a dark room both keep their detail, without halos.
- ``global`` (:mod:`.global_curve`): extended Reinhard with automatic exposure, the same curve everywhere.
- ``none`` (:mod:`.clip`): the radiance clipped to [0, 1], i.e. roughly the reference exposure.

Every operator takes ``exposure`` (stops, brighter when positive), ``saturation`` (1 keeps colour,
0 is grey) and ``detail`` (local contrast; only ``natural`` uses it) and returns sRGB-encoded float32 in
[0, 1]. :func:`tonemap_settings` is the record of a call that outputs carry in their metadata.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .clip import tonemap_none
from .colour import LUMINANCE_WEIGHTS, luminance, srgb_decode, srgb_encode
from .global_curve import tonemap_global
from .natural import tonemap_natural

OPERATORS = {"natural": tonemap_natural, "global": tonemap_global, "none": tonemap_none}
"""Operator name -> function(radiance, exposure, saturation, detail) -> sRGB float32 in [0, 1]."""
DEFAULT_OPERATOR = "natural"


def tonemap_settings(operator: str = DEFAULT_OPERATOR, exposure: float = 0.0, saturation: float = 1.0,
                     detail: float = 1.0) -> dict:
    """The checked settings of a :func:`tonemap` call as a JSON-ready dict (what outputs record).

    Raises :class:`~diffhdr_diffusers.errors.InputError` naming the argument and the accepted values.
    """
    if operator not in OPERATORS:
        raise InputError(f"tonemap operator {operator!r} is unknown; choose one of {', '.join(OPERATORS)}.")
    values = {"exposure": exposure, "saturation": saturation, "detail": detail}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"tonemap {name} must be a finite number, not {value!r}.")
    if not -20.0 <= exposure <= 20.0:
        raise InputError(f"tonemap exposure {exposure} stops is out of range; use -20 to 20.")
    if not 0.0 <= saturation <= 4.0:
        raise InputError(f"tonemap saturation {saturation} is out of range; use 0 (grey) to 4 (1 keeps colour).")
    if not 0.0 <= detail <= 4.0:
        raise InputError(f"tonemap detail {detail} is out of range; use 0 (flat) to 4 (1 keeps detail).")
    return {"operator": operator, **{name: float(value) for name, value in values.items()}}


def tonemap(radiance: np.ndarray, operator: str = DEFAULT_OPERATOR, exposure: float = 0.0,
            saturation: float = 1.0, detail: float = 1.0) -> np.ndarray:
    """Tone map linear RGB radiance (H, W, 3) to an sRGB-encoded float32 image (H, W, 3) in [0, 1].

    Args:
        radiance: linear, finite, non-negative RGB; its absolute scale does not matter except for
            ``"none"`` (which clips at 1, the reference exposure's white).
        operator: ``"natural"`` (default), ``"global"`` or ``"none"``.
        exposure: stops added to the automatic exposure (positive is brighter).
        saturation: colour strength; 1 keeps the radiance's colour, 0 is greyscale.
        detail: local contrast of the ``natural`` operator; 1 keeps the radiance's, 0 flattens it.
    """
    settings = tonemap_settings(operator, exposure, saturation, detail)
    radiance = np.asarray(radiance, dtype=np.float32)
    if radiance.ndim != 3 or radiance.shape[2] != 3:
        raise InputError(f"tonemap needs RGB radiance of shape (H, W, 3), not {radiance.shape}.")
    return OPERATORS[operator](radiance, settings["exposure"], settings["saturation"], settings["detail"])


def to_bits(image: np.ndarray, bits: int = 8) -> np.ndarray:
    """Quantise an sRGB-encoded float image in [0, 1] to uint8 (``bits`` 8) or uint16 (16), rounding."""
    if bits not in (8, 16):
        raise InputError(f"bits must be 8 or 16, not {bits!r}.")
    top = 255.0 if bits == 8 else 65535.0
    return np.round(np.clip(image, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


__all__ = [
    "DEFAULT_OPERATOR",
    "LUMINANCE_WEIGHTS",
    "OPERATORS",
    "luminance",
    "srgb_decode",
    "srgb_encode",
    "to_bits",
    "tonemap",
    "tonemap_settings",
]
