"""flow-merge: a reference-weighted HDR merge of a bracket aligned by :mod:`diffhdr_diffusers.alignment`.

The reference frame decides, pixel by pixel, which exposures to use: triangle ramps of its
brightness (brightest channel) hand bright pixels to the shorter frames and dark pixels to the
longer ones, and leave mid-tones to the reference. Every non-reference weight is multiplied by the
frame's alignment confidence, so the merge falls back to the reference wherever alignment is not
trusted, and by the frame's own hat (its saturated pixels carry nothing).

Where the reference is saturated there is nothing to fall back to, so the warped shorter frames are
used there whatever their confidence, under a saturation-consistency rule: a value placed into a
saturated reference channel must be at least the saturation level's radiance at the reference
exposure (a darker warped sample is a wrong match: it is down-weighted, and the result clamped up to
that bound). Likewise a reference channel that is black bounds the value from above. This keeps
saturated windows free of dark speckles and black blobs.

Radiance is in literal EV units: ``R * 2**ev_i ~= ldr_i**gamma`` where frame ``i`` is well exposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .alignment import AlignmentResult, align_exposures, check_bracket
from .alignment.exposure import WHITE_LEVEL
from .errors import InputError

BRIGHT_START = 0.5  # reference brightness above which shorter frames are asked for
DARK_START = 0.5  # reference brightness below which longer frames are asked for
EXPOSURE_WEIGHTING = False  # weight frames by exposure time (shot-noise SNR), relative to the reference
BLACK_BOUND_LEVEL = 0.05  # LDR level of a reference channel at or below which it bounds the value from above
BLACK_RULE_LEVEL = 0.02  # reference channels at or below this are black for the rule
REFERENCE_FLOOR = 1e-4  # the reference's weight never drops below this: the last fallback
FALLBACK_TRUST = 1e-2  # trust given to shorter frames in saturated reference pixels whatever their confidence
REJECTED = 1e-3  # weight factor of a sample that breaks the saturation or black rule


@dataclass
class FlowMergeResult:
    """The merge of an aligned bracket.

    Attributes:
        radiance: float32 (H, W, 3) linear radiance in literal EV units.
        confidence: float32 (H, W) in [0, 1]: how much the merge trusts the non-reference data it wanted
            to use (1 = fully merged, 0 = reference only); the mean alignment confidence of the other
            frames, weighted by how much the reference's brightness asks for each.
        alignment: the :class:`~diffhdr_diffusers.alignment.AlignmentResult` merged.
    """

    radiance: np.ndarray
    confidence: np.ndarray
    alignment: AlignmentResult


def _ramp(values: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 at ``start``, 1 at ``end``, linear between (either order), float32."""
    return np.clip((values - np.float32(start)) / np.float32(end - start), 0.0, 1.0).astype(np.float32)


def flow_merge(
    images: Sequence[np.ndarray],
    exposures: Sequence[float],
    reference_index: int | None = None,
    alignment: AlignmentResult | None = None,
    saturation_rule: bool = True,
    **alignment_kwargs,
) -> FlowMergeResult:
    """Align (unless ``alignment`` is given) and merge a bracket into HDR radiance.

    Args:
        images: N >= 2 float (H, W, 3) LDR frames in [0, 1], short to long.
        exposures: N EV stops, literal units (any offset).
        reference_index: the reference frame; default ``N // 2`` (or the alignment's).
        alignment: a precomputed :func:`~diffhdr_diffusers.alignment.align_exposures` result of these images.
        saturation_rule: enforce saturation/black consistency with the reference (see the module docstring);
            ``False`` only for ablations.
        **alignment_kwargs: passed to :func:`~diffhdr_diffusers.alignment.align_exposures`
            (``gamma``, ``homography``, ``flow_preset``, ``flow_max_side``).

    Returns:
        A :class:`FlowMergeResult`.
    """
    frames, evs, reference_index = check_bracket(
        images, exposures, alignment.reference_index if alignment is not None and reference_index is None else reference_index
    )
    if alignment is None:
        alignment = align_exposures(frames, evs, reference_index, **alignment_kwargs)
    elif alignment.reference_index != reference_index or len(alignment.images) != len(frames):
        raise InputError(
            f"alignment is of {len(alignment.images)} frames with reference {alignment.reference_index}, "
            f"but {len(frames)} frames with reference {reference_index} were given; align these images."
        )
    gamma = float(alignment.settings.get("gamma", alignment_kwargs.get("gamma", 2.2)))
    reference_ev = evs[reference_index]
    reference = frames[reference_index]
    brightness = reference.max(axis=2)
    bright = _ramp(brightness, BRIGHT_START, WHITE_LEVEL)  # asks for shorter frames
    dark = _ramp(brightness, DARK_START, 0.0)  # asks for longer frames
    saturated = _ramp(brightness, WHITE_LEVEL - 0.05, WHITE_LEVEL)

    reference_weight = np.maximum(1.0 - np.maximum(bright, dark), REFERENCE_FLOOR)[..., None]
    total = reference_weight.copy()
    merged = reference_weight * alignment.radiance[reference_index]

    upper_channels = reference >= np.float32(WHITE_LEVEL)  # saturated reference channels: a lower bound
    lower_bound = np.float32(WHITE_LEVEL**gamma / 2.0**reference_ev)
    lower_channels = reference <= np.float32(BLACK_RULE_LEVEL)  # black reference channels: an upper bound
    upper_bound = np.float32(BLACK_BOUND_LEVEL**gamma / 2.0**reference_ev)

    wanted_sum = np.zeros(brightness.shape, np.float32)
    trusted_sum = np.zeros(brightness.shape, np.float32)
    for index, (ev, warped, radiance, confidence, failed) in enumerate(
        zip(evs, alignment.images, alignment.radiance, alignment.confidence, alignment.failed)
    ):
        if index == reference_index:
            continue
        shorter = ev < reference_ev
        wanted = bright if shorter else dark
        own = _ramp(warped.max(axis=2), 1.0, WHITE_LEVEL - 0.1) + np.float32(REJECTED)  # its own saturation
        trust = np.zeros_like(confidence) if failed else confidence
        if shorter and not failed:
            trust = trust + np.float32(FALLBACK_TRUST) * saturated
        weight = wanted * own * trust * np.float32(2.0 ** (ev - reference_ev) if EXPOSURE_WEIGHTING else 1.0)
        if saturation_rule:
            broken = (upper_channels & (radiance < lower_bound)).any(axis=2) | (
                lower_channels & (radiance > upper_bound)
            ).any(axis=2)
            weight = np.where(broken, weight * np.float32(REJECTED), weight)
        merged += weight[..., None] * radiance
        total += weight[..., None]
        wanted_sum += wanted + np.float32(1e-3)
        trusted_sum += (wanted + np.float32(1e-3)) * (0.0 if failed else confidence)
    merged /= total
    if saturation_rule:
        merged = np.where(upper_channels, np.maximum(merged, lower_bound), merged)
        merged = np.where(lower_channels, np.minimum(merged, upper_bound), merged)
    confidence = np.clip(trusted_sum / np.maximum(wanted_sum, 1e-6), 0.0, 1.0).astype(np.float32)
    return FlowMergeResult(radiance=np.maximum(merged, 0.0).astype(np.float32), confidence=confidence, alignment=alignment)


def flow_merge_radiance(images: Sequence[np.ndarray], exposures: Sequence[float]) -> np.ndarray:
    """``(images, exposures) -> radiance``: :func:`flow_merge` with default settings (for the baselines registry)."""
    return flow_merge(images, exposures).radiance


__all__ = ["FlowMergeResult", "flow_merge", "flow_merge_radiance"]
