"""The aligned variant's view of a bracket: aligned exposures, the flow-merge prior and its confidence.

The paper's network sees ``[ldr, ldr**gamma / 2**ev]`` of the raw frames (:func:`~diffhdr_diffusers.hdr_domain.make_conditioning`).
An aligned model sees the same planes of the frames *warped onto the reference*
(:func:`~diffhdr_diffusers.alignment.align_exposures`), followed by the flow-merge prior in the mu-law
domain (3 planes, model units) and every exposure's alignment confidence (N planes). Its UNet generates
the residual ``mu_law(target) - prior``, so a model whose output is zero returns the flow-merge itself.
The pipeline and the training data both build their inputs here, so the two cannot diverge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .hdr_domain import GAMMA, MU, linearize, make_conditioning, model_exposures, mu_law


def prior_channels(num_exposures: int) -> int:
    """Extra condition planes of the aligned variant: the prior (3) and one confidence per exposure."""
    return 3 + num_exposures


@dataclass
class PriorConditioning:
    """Network inputs of one bracket for an aligned model.

    Attributes:
        conditioning: float32 (H, W, 6 N + 3 + N): aligned ``[ldr, ldr**gamma / 2**ev]`` per exposure
            (model units), the prior's mu-law, the per-exposure confidences.
        prior: float32 (H, W, 3), the flow-merge's mu-law in model units, clipped to [0, 1].
        failed: per exposure, whether its alignment was judged to have failed (the merge then fell back
            to the reference there).
    """

    conditioning: np.ndarray
    prior: np.ndarray
    failed: list[bool]


def prior_conditioning(images: Sequence[np.ndarray], exposures: Sequence[float], alignment: dict | None = None,
                       gamma: float = GAMMA, reference_index: int | None = None,
                       prior: np.ndarray | None = None) -> PriorConditioning:
    """Align the bracket, flow-merge it, and stack the aligned model's condition planes.

    Args:
        images: N float32 (H, W, 3) frames in [0, 1], short to long.
        exposures: N EV stops (literal; any offset).
        alignment: keyword arguments of :func:`~diffhdr_diffusers.alignment.align_exposures` (a pipeline's
            ``alignment`` config); ``None`` or ``{}`` uses its defaults.
        gamma: the inverse camera response exponent.
        reference_index: the reference frame; default the middle one.
        prior: a prior to use instead of this bracket's own flow-merge (the pipeline's downscaled runs pass the
            full-size prior, area-downscaled).
    """
    from .alignment import align_exposures
    from .merging import flow_merge

    # In model units throughout, so that the network's inputs do not depend on the EVs' offset at all.
    evs = model_exposures(exposures)
    if prior is None:
        merged = flow_merge(images, evs, reference_index=reference_index, gamma=gamma, **(alignment or {}))
        aligned, prior = merged.alignment, _as_prior(merged.radiance)
    else:  # only the alignment is needed
        aligned = align_exposures(images, evs, reference_index, gamma=gamma, **(alignment or {}))
        prior = np.asarray(prior, np.float32)
    planes = [make_conditioning(aligned.images, evs, gamma), prior,
              np.stack(aligned.confidence, axis=-1).astype(np.float32)]
    return PriorConditioning(np.concatenate(planes, axis=-1), prior, list(aligned.failed))


def _as_prior(radiance: np.ndarray) -> np.ndarray:
    return np.clip(mu_law(radiance), 0.0, 1.0).astype(np.float32)


def prior_image(images: Sequence[np.ndarray], exposures: Sequence[float], alignment: dict | None = None,
                gamma: float = GAMMA) -> np.ndarray:
    """The prior of :func:`prior_conditioning` alone (float32 (H, W, 3), mu-law, model units), in bounded memory
    (:func:`~diffhdr_diffusers.merging.flow_merge_radiance`): the full-size guide of a downscaled run."""
    from .merging import flow_merge_radiance

    return _as_prior(flow_merge_radiance(images, model_exposures(exposures), gamma=gamma, **(alignment or {})))


def reference_image(images: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = GAMMA,
                    mu: float = MU) -> np.ndarray:
    """The reference (middle) frame's HDR view ``ldr**gamma / 2**ev`` in the mu-law domain, model units, float32
    (H, W, 3): the paper model's guide for a downscaled run (it has no prior)."""
    index = len(images) // 2
    view = linearize(images[index], float(model_exposures(exposures)[index]), gamma)
    return np.clip(mu_law(view, mu), 0.0, 1.0).astype(np.float32)
