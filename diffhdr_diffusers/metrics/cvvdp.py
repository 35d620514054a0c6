"""Optional ColorVideoVDP (PyPI ``cvvdp``, module ``pycvvdp``) score of an HDR merge.

ColorVideoVDP is not a dependency of this library. When it is missing, :func:`cvvdp_jod` raises
:class:`MissingDependencyError` with the install command instead of an ImportError traceback.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import MissingDependencyError
from .pu21 import DisplayAssumptions


def _import_pycvvdp():
    try:
        return importlib.import_module("pycvvdp")
    except ImportError as error:
        raise MissingDependencyError(
            "the ColorVideoVDP metric needs the optional package 'cvvdp', which is not installed "
            f"({error}); install it with `pip install cvvdp`, or leave out --cvvdp."
        ) from None


def cvvdp_available() -> bool:
    """Whether ``pycvvdp`` can be imported."""
    try:
        _import_pycvvdp()
    except MissingDependencyError:
        return False
    return True


def cvvdp_jod(prediction, target, display: DisplayAssumptions | None = None, device: str = "cpu") -> float:
    """ColorVideoVDP quality in JOD (10 = identical) on the 'standard_hdr_linear' display.

    Both images are scaled to absolute cd/m^2 with ``display`` (the scale is taken from the target)
    before scoring, as that display model expects absolute linear RGB.
    """
    pycvvdp = _import_pycvvdp()
    import torch

    display = display or DisplayAssumptions()
    scale = display.scale_for(np.asarray(target, dtype=np.float64))
    test = torch.from_numpy(np.maximum(np.asarray(prediction, dtype=np.float32), 0) * np.float32(scale))
    reference = torch.from_numpy(np.maximum(np.asarray(target, dtype=np.float32), 0) * np.float32(scale))
    metric = pycvvdp.cvvdp(display_name="standard_hdr_linear", device=torch.device(device))
    quality, _ = metric.predict(test, reference, dim_order="HWC")
    return float(quality)
