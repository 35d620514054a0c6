"""The classical HDR merges, together: the baselines DiffHDR is compared against, in literal EV units.

Every merge has the signature ``(images, exposures, reference_index=None) -> radiance``: ``images`` are
N >= 2 float arrays (H, W, 3) in [0, 1] in the canonical encoding (frames as
:func:`~diffhdr_diffusers.camera.apply_camera` returns them, short to long); ``exposures`` are EV stops; the
result is float32 linear radiance (H, W, 3) in the EVs' own units, ``code**2.2 / 2**ev``
(:mod:`diffhdr_diffusers.hdr_domain`), which is ``inverse_response(code) / 2**ev`` of the camera's own code.
The reference defaults to the middle frame (index ``N // 2``, the later of the two middle ones for even N).

* ``reference``: the reference frame alone, linearised. Saturated highlights stay clipped.
* ``naive-merge``: a triangle-weighted average of all linearised frames, without alignment, so moving
  objects ghost. Pixels that no frame exposes well fall back to the short frame (bright) or the long
  frame (dark).
* ``flow-merge``: the frames aligned to the reference by exposure-aware optical flow, then merged with
  reference weights, falling back to the reference where alignment is not trusted (the prior of the
  aligned DiffHDR variant, and the baseline every model card reports).
* ``debevec``: OpenCV's ``MergeDebevec`` with the known exposure times ``2**ev`` and the gamma-2.2
  response of the canonical encoding. OpenCV only merges 8-bit images, so the frames are quantised to 8 bits first (16-bit TIFFs
  lose precision: a relative error up to about 0.2 % near white, more in the shadows). OpenCV weights
  whole pixels (the mean of the channels' hat weights), so a channel that clips while the others do not
  still pulls the result towards its clipped value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ..hdr_domain import GAMMA, linearize
from ..errors import InputError

Baseline = Callable[..., np.ndarray]

# A frame counts as clipped above/below these normalised LDR values in the naive merge's fallback.
_BRIGHT = 0.5


def _check(images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
           ) -> tuple[list[np.ndarray], np.ndarray, int]:
    images = [np.asarray(image, dtype=np.float32) for image in images]
    if len(images) < 1 or len(images) != len(exposures):
        raise InputError(
            f"a classical merge needs one exposure per image, got {len(images)} images and {len(exposures)} exposures."
        )
    shapes = {image.shape for image in images}
    if len(shapes) != 1 or images[0].ndim != 3 or images[0].shape[-1] != 3:
        raise InputError(f"bracket images must all be (H, W, 3) of one size, got shapes {sorted(shapes)}.")
    reference_index = len(images) // 2 if reference_index is None else int(reference_index)
    if not 0 <= reference_index < len(images):
        raise InputError(f"reference index {reference_index}: the bracket has frames 0 to {len(images) - 1}.")
    return images, np.asarray(exposures, dtype=np.float64), reference_index


def reference_merge(images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
                    ) -> np.ndarray:
    """The reference frame linearised: the no-merge lower bound."""
    images, evs, reference_index = _check(images, exposures, reference_index)
    return linearize(images[reference_index], evs[reference_index])


def triangle_weight(image: np.ndarray) -> np.ndarray:
    """Hat weight ``1 - |2 z - 1|``: 1 at mid-grey, 0 at black and at white."""
    return 1.0 - np.abs(2.0 * image - 1.0)


def naive_merge(images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
                ) -> np.ndarray:
    """Triangle-weighted per-pixel average of the linearised frames, without alignment."""
    images, evs, reference_index = _check(images, exposures, reference_index)
    order = np.argsort(evs, kind="stable")
    weighted = np.zeros_like(images[0], dtype=np.float64)
    total = np.zeros_like(images[0], dtype=np.float64)
    for index in order:
        weight = triangle_weight(images[index]).astype(np.float64)
        weighted += weight * linearize(images[index], evs[index])
        total += weight
    shortest, longest = order[0], order[-1]
    fallback = np.where(
        images[reference_index] > _BRIGHT,
        linearize(images[shortest], evs[shortest]),
        linearize(images[longest], evs[longest]),
    )
    well_exposed = total > 1e-6
    merged = np.where(well_exposed, weighted / np.where(well_exposed, total, 1.0), fallback)
    return merged.astype(np.float32)


def gamma_response(gamma: float = GAMMA) -> np.ndarray:
    """A camera response for OpenCV: (256, 1, 3) float32 with ``response[z] = (z / 255)**gamma``.

    ``response[0]`` is set to ``response[1]`` (as OpenCV does for its default response), because OpenCV
    merges in the log domain and ``log(0)`` would turn every pixel that is black in any frame black.
    """
    levels = (np.arange(256, dtype=np.float64) / 255.0) ** gamma
    levels[0] = levels[1]
    return np.repeat(levels.astype(np.float32)[:, None, None], 3, axis=2)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round float [0, 1] to 8 bits, as OpenCV's HDR merges require."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def debevec_merge(images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
                  ) -> np.ndarray:
    """OpenCV ``MergeDebevec`` with exposure times ``2**ev`` and a gamma-2.2 response (8-bit inputs); it has no
    reference frame (``reference_index`` is only checked)."""
    images, evs, _ = _check(images, exposures, reference_index)
    times = (2.0**evs).astype(np.float32)
    merged = cv2.createMergeDebevec().process([to_uint8(image) for image in images], times, gamma_response())
    return np.ascontiguousarray(merged, dtype=np.float32)


def flow_merge(images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
               ) -> np.ndarray:
    """Exposure-aware optical-flow alignment, then a reference-weighted merge (:mod:`diffhdr_diffusers.merging`)."""
    from .. import merging

    return merging.flow_merge_radiance(*_check(images, exposures, reference_index))


#: The classical merges by name (``diffhdr merge --method``, ``diffhdr evaluate --method``).
BASELINES: dict[str, Baseline] = {
    "reference": reference_merge,
    "naive-merge": naive_merge,
    "debevec": debevec_merge,
    "flow-merge": flow_merge,
}


def baseline(name: str) -> Baseline:
    """The classical merge called ``name`` (one of :data:`BASELINES`)."""
    try:
        return BASELINES[name]
    except KeyError:
        raise InputError(
            f"unknown merge method {name!r}; choose one of: {', '.join(BASELINES)}."
        ) from None
