"""Estimate a camera's inverse response and the frames' true exposure ratios from one bracket (stub)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .response import Response


@dataclass
class CameraEstimate:
    """The result of :func:`estimate_camera`."""

    response: Response
    exposures: list[float]
    warnings: list[str] = field(default_factory=list)
    fallback: bool = False


def estimate_camera(frames: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
                    ) -> CameraEstimate:
    """Placeholder: sRGB with the nominal exposures (the estimator lands next)."""
    return CameraEstimate(Response.srgb(), [float(ev) for ev in exposures], ["response estimation not implemented"], True)
