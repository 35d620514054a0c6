"""The aligned variant's view of a bracket: aligned exposures, the flow-merge prior and its confidence.

The paper's network sees ``[ldr, ldr**gamma / 2**ev]`` of the raw frames (:func:`~diffhdr_diffusers.hdr_domain.make_conditioning`).
An aligned model sees the same planes of the frames *warped onto the reference*
(:func:`~diffhdr_diffusers.alignment.align_exposures`), followed by the flow-merge prior in the mu-law
domain (3 planes, model units) and every exposure's alignment confidence (N planes); a frame-count-independent
model (``frame_pooling``, :class:`~diffhdr_diffusers.models.ConditionEncoder`) also reads every exposure's EV
relative to the reference as a constant plane (``exposure_planes``, N planes more). Its UNet generates
the residual ``mu_law(target) - prior``, so a model whose output is zero returns the flow-merge itself.
The pipeline and the training data both build their inputs here, so the two cannot diverge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError
from .hdr_domain import GAMMA, MU, make_conditioning, model_exposures, mu_law

if TYPE_CHECKING:  # alignment imports OpenCV: only when a bracket is aligned
    from .alignment import FrameAlignment


EV_PLANE_STOPS = 4.0  # an exposure plane holds (ev - ev_reference) / 4: a frame 4 stops shorter reads -1


def prior_channels(num_exposures: int) -> int:
    """Extra condition planes of the aligned variant: the prior (3) and one confidence per exposure."""
    return 3 + num_exposures


def relative_ev_planes(shape: tuple[int, int], exposures: Sequence[float], reference_index: int) -> np.ndarray:
    """float32 (H, W, N): every exposure's EV relative to the reference, in units of :data:`EV_PLANE_STOPS`."""
    relative = (np.asarray(exposures, np.float64) - float(exposures[reference_index])) / EV_PLANE_STOPS
    return np.broadcast_to(relative.astype(np.float32), (*shape, len(relative)))


@dataclass
class PriorConditioning:
    """Network inputs of one bracket for an aligned model.

    Attributes:
        conditioning: float32 (H, W, 6 N + 3 + N): aligned ``[ldr, ldr**gamma / 2**ev]`` per exposure
            (model units), the prior's mu-law, the per-exposure confidences; with ``exposure_planes``, then every
            exposure's EV relative to the reference (:func:`relative_ev_planes`; 6 N + 3 + 2 N planes).
        prior: float32 (H, W, 3), the flow-merge's mu-law in model units, clipped to [0, 1].
        failed: per exposure, whether alignment rejected it (the merge then fell back to the reference there).
        reasons: per exposure, why it was rejected, with the measured figure (``None`` where it was not).
        gate: float32 (H, W, 1) in [0, 1], where the model's correction applies (:func:`correction_gate`), or
            ``None`` (everywhere).
    """

    conditioning: np.ndarray
    prior: np.ndarray
    failed: list[bool]
    reasons: list[str | None] = field(default_factory=list)
    gate: np.ndarray | None = None


def prior_conditioning(images: Sequence[np.ndarray], exposures: Sequence[float], alignment: dict | None = None,
                       gamma: float = GAMMA, reference_index: int | None = None,
                       prior: np.ndarray | None = None, mu: float = MU,
                       frame_alignments: dict[int, FrameAlignment] | None = None,
                       exposure_planes: bool = False,
                       gate: Sequence[float] | None = None) -> PriorConditioning:
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
        mu: the mu-law constant of the model's output domain (the pipeline's ``mu``).
        frame_alignments: with ``prior``, the frames' alignments to warp with instead of aligning again (a
            downscaled run passes those of the full-size prior, resized: :class:`FullSizePrior`).
        exposure_planes: append every exposure's EV relative to the reference (a ``frame_pooling`` model's input).
        gate: ``(start, end)`` codes: also return :func:`correction_gate` of the reference frame.
    """
    from .alignment import align_exposures, check_bracket, warp_bracket
    from .merging import flow_merge

    # In model units throughout, so that the network's inputs do not depend on the EVs' offset at all.
    evs = model_exposures(exposures)
    if prior is None:
        merged = flow_merge(images, evs, reference_index=reference_index, gamma=gamma, **(alignment or {}))
        aligned, prior = merged.alignment, as_prior(merged.radiance, mu)
    else:  # only the alignment is needed
        if frame_alignments is None:
            aligned = align_exposures(images, evs, reference_index, gamma=gamma, **(alignment or {}))
        else:
            frames, evs, index = check_bracket(images, evs, reference_index)
            aligned = warp_bracket(frames, evs, index, frame_alignments, gamma)
        prior = np.asarray(prior, np.float32)
    planes = [make_conditioning(aligned.images, evs, gamma), prior,
              np.stack(aligned.confidence, axis=-1).astype(np.float32)]
    index = len(evs) // 2 if reference_index is None else reference_index
    if exposure_planes:
        planes.append(relative_ev_planes(prior.shape[:2], evs, index))
    weight = None if gate is None else correction_gate(reference_planes(planes[0], len(evs), index), *gate)
    return PriorConditioning(np.concatenate(planes, axis=-1), prior, list(aligned.failed), list(aligned.reasons),
                             weight)


def reference_planes(conditioning: np.ndarray, num_exposures: int, reference_index: int | None = None) -> np.ndarray:
    """The reference frame as merged (canonical codes, (H, W, 3)) out of an aligned conditioning's planes."""
    index = num_exposures // 2 if reference_index is None else reference_index
    return conditioning[..., 6 * index:6 * index + 3]


def check_gate(gate: Sequence[float]) -> tuple[float, float]:
    """A correction gate's ``(start, end)`` as floats, or an :class:`InputError` unless ``0 <= start < end``."""
    values = tuple(float(code) for code in gate)
    if len(values) != 2 or not 0.0 <= values[0] < values[1]:
        raise InputError(f"a correction gate is two codes 0 <= start < end (say 0.9, 1.0), got {list(gate)}.")
    return values


def correction_gate(reference: np.ndarray, start: float, end: float) -> np.ndarray:
    """float32 (H, W, 1): where an aligned model's correction of the prior applies: 0 where the reference
    frame's brightest channel is below ``start`` (there every frame agrees with the reference, and flow-merge is
    already right), rising linearly to 1 at ``end`` (clipped: only the other frames, and the model, know what is
    there). ``reference`` is the frame as merged (canonical encoding, [0, 1])."""
    start, end = check_gate((start, end))
    level = np.asarray(reference, np.float32).max(axis=-1, keepdims=True)
    return np.clip((level - np.float32(start)) / np.float32(end - start), 0.0, 1.0).astype(np.float32)


def as_prior(radiance: np.ndarray, mu: float = MU) -> np.ndarray:
    """Radiance (model units) as a prior: its mu-law, clipped to [0, 1], float32."""
    return np.clip(mu_law(radiance, mu), 0.0, 1.0).astype(np.float32)


@dataclass
class FullSizePrior:
    """The full-size guide of a downscaled aligned run, and the alignment it was merged with.

    Attributes:
        prior: float32 (H, W, 3), the flow-merge's mu-law in model units, clipped to [0, 1].
        frame_alignments: every non-reference frame's :class:`~diffhdr_diffusers.alignment.FrameAlignment`,
            resized to the processing size, so the conditioning reuses these flows instead of aligning again.
    """

    prior: np.ndarray
    frame_alignments: dict[int, FrameAlignment]


def full_size_prior(images: Sequence[np.ndarray], exposures: Sequence[float], alignment: dict | None = None,
                    gamma: float = GAMMA, mu: float = MU, size: tuple[int, int] | None = None) -> FullSizePrior:
    """The prior of :func:`prior_conditioning` alone, in bounded memory
    (:func:`~diffhdr_diffusers.merging.flow_merge_radiance`), with its alignment resized to ``size``
    ((height, width); default the frames' own)."""
    from .merging import flow_merge_radiance

    merged = flow_merge_radiance(images, model_exposures(exposures), gamma=gamma, details=True, **(alignment or {}))
    height, width = size or np.shape(images[0])[:2]
    resized = {index: frame.resized(height, width) for index, frame in merged.alignments.items()}
    return FullSizePrior(as_prior(merged.radiance, mu), resized)
