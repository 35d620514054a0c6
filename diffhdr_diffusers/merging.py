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
saturated windows free of dark speckles and black blobs. A reference pixel clipped in some channels only still
shows the others: a shorter frame's sample more than :data:`MISMATCH_RATIO` away from them there shows something
else (a red shirt clipped in red, where the short frame saw the wall behind it before the walker came), so it is
refuted like a dark sample, and the reference's shown channels stand. And as a saturated reference pixel gives its
weight to the shorter frames, a black reference channel (below the black level, where it holds nothing but
noise and quantisation) gives its weight in that channel to the longer frames, whatever their confidence
(which cannot be measured against black): their values there are bounded from above by the rule. Per
channel, so that a dark, coloured pixel whose blue channel the reference shows as black takes its blue from
the longer frames instead of turning yellow.

Radiance is in literal EV units: ``R * 2**ev_i ~= ldr_i**gamma`` where frame ``i`` is well exposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .alignment import (AlignmentResult, FrameAlignment, RejectedFrame, align_exposures, check_bracket, frame_flows,
                        linearized, rejected_frames)
from .alignment.exposure import WHITE_LEVEL, brightest
from .alignment.flow import RowSource, soft_border, warp_into
from .bands import map_bands
from .errors import InputError
from .hdr_domain import GAMMA, MU, linearize, model_exposures, mu_law

BRIGHT_START = 0.5  # reference brightness above which shorter frames are asked for
DARK_START = 0.5  # reference brightness below which longer frames are asked for
EXPOSURE_WEIGHTING = False  # weight frames by exposure time (shot-noise SNR), relative to the reference
BLACK_BOUND_LEVEL = 0.05  # LDR level of a reference channel at or below which it bounds the value from above
BLACK_RULE_LEVEL = 0.02  # reference channels at or below this (or half the black level) are black for the rule
REFERENCE_FLOOR = 1e-4  # the reference's weight never drops below this: the last fallback
FALLBACK_TRUST = 1e-2  # trust given to shorter frames in saturated reference pixels whatever their confidence
REJECTED = 1e-3  # weight factor of a sample that breaks the saturation or black rule
RULE_SLACK = 0.85  # a sample breaks the saturation rule below this share of the clip level (noise, quantisation)
#: Bump whenever flow-merge's output changes: training's prior cache keys on it, so no model trains on stale priors.
FLOW_MERGE_VERSION = 2
MISMATCH_RATIO = 2.0  # a shorter frame's sample breaks the rule this far from a partly clipped reference's other channels
MISMATCH_FLOOR = 0.1  # reference channels at or above this LDR level are judged by MISMATCH_RATIO


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
    """0 at ``start``, 1 at ``end``, linear between (either order), float32 (computed in place on a new array)."""
    out = np.subtract(values, np.float32(start), dtype=np.float32)
    out /= np.float32(end - start)
    return np.clip(out, 0.0, 1.0, out=out)


def _any_channel(mask: np.ndarray) -> np.ndarray:
    """``mask.any(axis=2)`` for (H, W, C) bools, without numpy's slow short-axis reduction."""
    out = mask[..., 0].copy()
    for channel in range(1, mask.shape[2]):
        out |= mask[..., channel]
    return out


@dataclass
class _Other:
    """One non-reference frame's rows, as the merge sees them."""

    ev: float
    warped: np.ndarray  # (h, W, 3) warped LDR
    radiance: np.ndarray  # (h, W, 3) warped HDR-domain view
    confidence: np.ndarray  # (h, W)
    failed: bool


def _merge_rows(
    reference: np.ndarray, reference_radiance: np.ndarray, reference_ev: float, others: list[_Other], gamma: float,
    saturation_rule: bool, want_confidence: bool = True, black_level: float = BLACK_BOUND_LEVEL,
    holes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The merge of some rows (every operation is per pixel, so rows can be merged band by band); ``holes``
    (uint8 (h, W), optional) receives :func:`fill_holes`' map of these rows."""
    brightness = brightest(reference)
    bright = _ramp(brightness, BRIGHT_START, WHITE_LEVEL)  # asks for shorter frames
    dark = _ramp(brightness, DARK_START, 0.0)  # asks for longer frames
    saturated = _ramp(brightness, WHITE_LEVEL - 0.05, WHITE_LEVEL)
    black = _ramp(brightness, black_level, 0.5 * black_level)  # the reference holds nothing but noise
    del brightness

    reference_weight = np.maximum(bright, dark)
    np.subtract(1.0, reference_weight, out=reference_weight)
    # Per channel: a channel the reference shows black yields its weight there, as a saturated reference does.
    total = _ramp(reference, 0.5 * black_level, black_level)
    np.minimum(total, reference_weight[..., None], out=total)
    np.maximum(total, REFERENCE_FLOOR, out=total)
    del reference_weight
    merged = total * reference_radiance

    upper_channels = reference >= np.float32(WHITE_LEVEL)  # saturated reference channels: a lower bound
    lower_bound = np.float32(WHITE_LEVEL**gamma / 2.0**reference_ev)
    # Black reference channels bound the value from above: those that yield their weight entirely, at least.
    lower_channels = reference <= np.float32(max(BLACK_RULE_LEVEL, 0.5 * black_level))
    upper_bound = np.float32(black_level**gamma / 2.0**reference_ev)

    # A partly clipped reference pixel still shows its other channels: a shorter frame's sample there must agree
    # with them, or it shows something else (what moved), whatever it puts in the clipped channel.
    shown_channels = refuted = None
    if saturation_rule and MISMATCH_RATIO:
        partly = _any_channel(upper_channels) & ~upper_channels.all(axis=2)
        shown_channels = partly[..., None] & ~upper_channels & (reference >= np.float32(MISMATCH_FLOOR))
        refuted = np.zeros(reference.shape[:2], bool)

    shape = reference.shape[:2]
    shorter_sum = np.zeros(shape, np.float32) if holes is not None else None
    shorter_clipped = np.zeros(shape, bool) if holes is not None else None
    wanted_sum = np.zeros(shape, np.float32) if want_confidence else None
    trusted_sum = np.zeros(shape, np.float32) if want_confidence else None
    for other in others:
        shorter = other.ev < reference_ev
        wanted = bright if shorter else dark
        level = brightest(other.warped)
        weight = _ramp(level, 1.0, WHITE_LEVEL - 0.1)  # its own saturation
        weight += np.float32(REJECTED)
        weight *= wanted
        if other.failed:
            trust = np.zeros_like(other.confidence)
        elif shorter:
            trust = other.confidence + np.float32(FALLBACK_TRUST) * saturated
        else:  # likewise longer frames where the reference is black: nothing there to check them against
            trust = other.confidence + np.float32(FALLBACK_TRUST) * black
        weight *= trust
        if EXPOSURE_WEIGHTING:
            weight *= np.float32(2.0 ** (other.ev - reference_ev))
        if saturation_rule:
            broken = _any_channel(upper_channels & (other.radiance < np.float32(RULE_SLACK) * lower_bound))
            broken |= _any_channel(lower_channels & (other.radiance > upper_bound))
            if shorter and shown_channels is not None:
                ratio = np.float32(MISMATCH_RATIO)
                mismatch = _any_channel(shown_channels & ((other.radiance > ratio * reference_radiance)
                                                          | (other.radiance * ratio < reference_radiance)))
                broken |= mismatch
                refuted |= mismatch
            np.multiply(weight, np.float32(REJECTED), out=weight, where=broken)
        if shorter_sum is not None and shorter and not other.failed:
            shorter_sum += weight
            shorter_clipped |= level >= np.float32(WHITE_LEVEL)
        weighted = weight[..., None]
        merged += weighted * other.radiance
        total += weighted
        if want_confidence:
            asked = wanted + np.float32(1e-3)
            wanted_sum += asked
            if other.failed:
                asked *= 0.0
            else:
                asked *= other.confidence
            trusted_sum += asked
    if refuted is not None:  # what the refuted frames showed is gone: the reference's shown channels stand
        kept = shown_channels & refuted[..., None]
        np.add(merged, reference_radiance, out=merged, where=kept)
        np.add(total, np.float32(1.0), out=total, where=kept)
    merged /= total
    if saturation_rule:
        np.maximum(merged, lower_bound, out=merged, where=upper_channels)
        # Where a shorter frame is saturated too, the light is at least its clip level: a sun or lamp that every
        # frame clips stays the brightest thing there, not a hole at the reference's clip level.
        for other in others:
            if other.ev < reference_ev and not other.failed:
                clipped = upper_channels & (other.warped >= np.float32(WHITE_LEVEL))
                np.maximum(merged, np.float32(WHITE_LEVEL**gamma / 2.0**other.ev), out=merged, where=clipped)
        np.minimum(merged, upper_bound, out=merged, where=lower_channels)
    np.maximum(merged, 0.0, out=merged)
    if holes is not None:
        _hole_map(holes, upper_channels, shorter_sum, shorter_clipped)
    confidence = None
    if want_confidence:
        np.maximum(wanted_sum, np.float32(1e-6), out=wanted_sum)
        confidence = np.divide(trusted_sum, wanted_sum, out=trusted_sum)
        np.clip(confidence, 0.0, 1.0, out=confidence)
    return merged, confidence


HOLE_WEIGHT = 3e-3  # shorter frames' summed weight below which a saturated reference pixel is a hole
HOLE_SIGMA = 0.02  # of the longer side: how far around a hole its fill is drawn from (fill_holes)
_HOLE, _SOURCE = 1, 2  # hole map values


def _hole_map(out, upper_channels, shorter_sum, shorter_clipped):
    """uint8 map: :data:`_HOLE` where the reference clips all three channels and every shorter frame's sample was
    refused (it shows something darker than the reference's clip there: what moved in front), :data:`_SOURCE`
    where the reference clips all three and a shorter frame filled it (a source for :func:`fill_holes`)."""
    saturated = upper_channels[..., 0] & upper_channels[..., 1] & upper_channels[..., 2]
    np.multiply(saturated, np.uint8(_SOURCE), out=out)
    out[saturated & (shorter_sum < np.float32(HOLE_WEIGHT)) & ~shorter_clipped] = _HOLE


def fill_holes(radiance: np.ndarray, holes: np.ndarray) -> None:
    """Fill, in place, the blown reference pixels that no frame could fill (``holes`` from the merge) with the
    radiance the filled blown pixels around them hold, never below what the merge put there (the clip level): a
    blown sky or wall that no frame shows, because something moved in front of it in the short frame, continues
    the radiance around it instead of a flat patch at the reference's clip level. The neighbourhood is a
    normalised Gaussian (:data:`HOLE_SIGMA` of the longer side) over blocks of pixels (512 blocks along the
    longer side at most), averaged band by band, so no full-size temporary is made. Holes with no filled blown
    pixel nearby stay at the clip level."""
    ys, xs = np.nonzero(holes == _HOLE)
    if not len(ys):
        return
    height, width = holes.shape
    factor = max(1, -(-max(height, width) // 512))
    small_height, small_width = -(-height // factor), -(-width // factor)
    means = np.zeros((small_height, small_width, 3), np.float32)  # block means of the sources' radiance (0 elsewhere)
    shares = np.zeros((small_height, small_width), np.float32)  # and the share of sources per block
    step = factor * max(1, 256 // factor)
    for y0 in range(0, height, step):
        source = (holes[y0:y0 + step] == _SOURCE).astype(np.float32)
        rows = slice(y0 // factor, y0 // factor + -(-source.shape[0] // factor))
        size = (small_width, rows.stop - rows.start)
        shares[rows] = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        means[rows] = cv2.resize(radiance[y0:y0 + step] * source[..., None], size, interpolation=cv2.INTER_AREA)
    if not shares.any():
        return
    sigma = HOLE_SIGMA * max(small_height, small_width)
    weight = cv2.GaussianBlur(shares, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    fill = cv2.GaussianBlur(means, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    fill /= np.maximum(weight, np.float32(1e-6))[..., None]
    fill[weight < 1e-3] = 0.0
    from scipy.ndimage import map_coordinates

    points = [(ys + 0.5) / factor - 0.5, (xs + 0.5) / factor - 0.5]  # the holes' centres on the block grid
    at_holes = np.stack([map_coordinates(fill[..., channel], points, order=1, mode="nearest") for channel in range(3)],
                        axis=-1)
    radiance[ys, xs] = np.maximum(radiance[ys, xs], at_holes)


def black_bound_level(reference: np.ndarray) -> float:
    """The level below which the reference frame shows black: :data:`BLACK_BOUND_LEVEL`, or twice the smallest
    non-zero value it holds where a camera crushes its shadows (its first code above black then stands for
    more light than that level: an estimated response's toe). Computed on the whole frame, so bands agree."""
    smallest = float(np.min(reference, initial=np.inf, where=reference > 0))
    return max(BLACK_BOUND_LEVEL, 2.0 * smallest) if np.isfinite(smallest) else BLACK_BOUND_LEVEL


def _alignment_for(images, exposures, reference_index, alignment):
    frames, evs, reference_index = check_bracket(
        images, exposures, alignment.reference_index if alignment is not None and reference_index is None else reference_index
    )
    if alignment is not None and (alignment.reference_index != reference_index or len(alignment.images) != len(frames)):
        raise InputError(
            f"alignment is of {len(alignment.images)} frames with reference {alignment.reference_index}, "
            f"but {len(frames)} frames with reference {reference_index} were given; align these images."
        )
    return frames, evs, reference_index


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
        A :class:`FlowMergeResult`. It holds the full alignment (every warped frame, flow and
        confidence at full size); when only the radiance is wanted, :func:`flow_merge_radiance` needs
        far less memory and gives the same radiance.
    """
    frames, evs, reference_index = _alignment_for(images, exposures, reference_index, alignment)
    if alignment is None:
        alignment = align_exposures(frames, evs, reference_index, **alignment_kwargs)
    gamma = float(alignment.settings.get("gamma", alignment_kwargs.get("gamma", 2.2)))
    reference = frames[reference_index]
    height, width = reference.shape[:2]
    radiance = np.empty((height, width, 3), np.float32)
    confidence = np.empty((height, width), np.float32)
    holes = np.zeros((height, width), np.uint8)
    black_level = black_bound_level(reference)

    def band(y0: int, y1: int) -> None:
        others = [
            _Other(ev, warped[y0:y1], frame_radiance[y0:y1], frame_confidence[y0:y1], failed)
            for index, (ev, warped, frame_radiance, frame_confidence, failed) in enumerate(
                zip(evs, alignment.images, alignment.radiance, alignment.confidence, alignment.failed))
            if index != reference_index
        ]
        radiance[y0:y1], confidence[y0:y1] = _merge_rows(
            reference[y0:y1], alignment.radiance[reference_index][y0:y1], evs[reference_index], others, gamma,
            saturation_rule, black_level=black_level, holes=holes[y0:y1] if saturation_rule else None,
        )

    map_bands(band, height, width)
    fill_holes(radiance, holes)
    return FlowMergeResult(radiance=radiance, confidence=confidence, alignment=alignment)


@dataclass
class FlowMergeRadiance:
    """What :func:`flow_merge_radiance` returns with ``details=True``.

    Attributes:
        radiance: float32 (H, W, 3), as :func:`flow_merge`'s.
        failed: per frame, whether alignment rejected it.
        settings: the alignment's settings (:attr:`~diffhdr_diffusers.alignment.AlignmentResult.settings`).
        reasons: per frame, why it was rejected (``None`` where it was not).
        alignments: the full-size :class:`~diffhdr_diffusers.alignment.FrameAlignment` of every non-reference
            frame, by index (to reuse the flows, e.g. resized for a downscaled copy of the bracket).
    """

    radiance: np.ndarray
    failed: list[bool]
    settings: dict
    reasons: list[str | None] = field(default_factory=list)
    alignments: dict[int, FrameAlignment] = field(default_factory=dict)

    @property
    def rejected(self) -> list[RejectedFrame]:
        """The rejected frames (indices), each with its reason."""
        return rejected_frames(self.failed, self.reasons)


def flow_merge_radiance(
    images: Sequence[np.ndarray],
    exposures: Sequence[float],
    reference_index: int | None = None,
    saturation_rule: bool = True,
    details: bool = False,
    **alignment_kwargs,
):
    """``(images, exposures) -> radiance``: the radiance of :func:`flow_merge` (the same values), in bounded memory.

    Only the flows and confidences are kept at full size; each frame is warped and merged band by band
    (a few hundred thousand pixels at a time), so the peak memory is the inputs, the output and about
    12 bytes per pixel per non-reference frame. Large brackets are tiled this way, not refused. Also the
    baselines registry's ``flow-merge``.

    Args:
        images, exposures, reference_index, saturation_rule, **alignment_kwargs: as for :func:`flow_merge`.
        details: return a :class:`FlowMergeRadiance` (radiance, per-frame ``failed`` and reasons, alignment settings,
            the frames' full-size alignments) instead of the radiance alone.
    """
    frames, evs, reference_index = check_bracket(images, exposures, reference_index)
    flows = frame_flows(frames, evs, reference_index, **alignment_kwargs)
    gamma = float(flows.settings["gamma"])
    raw_gamma = alignment_kwargs.get("gamma", GAMMA)
    aligned = flows.align_all()
    sources = {index: soft_border(frames[index]) for index in aligned}
    reference = frames[reference_index]
    reference_ev = evs[reference_index]
    height, width = reference.shape[:2]
    radiance = np.empty((height, width, 3), np.float32)
    holes = np.zeros((height, width), np.uint8)
    black_level = black_bound_level(reference)

    def band(y0: int, y1: int) -> None:
        others = []
        for index, alignment in aligned.items():
            frame, ev, flow = sources[index], evs[index], alignment.flow
            warped = np.empty((y1 - y0, width, 3), np.float32)
            frame_radiance = np.empty_like(warped)
            warp_into([frame, RowSource(frame, lambda rows, ev=ev: linearized(rows, ev, raw_gamma))], flow[y0:y1],
                      [warped, frame_radiance], rows=(y0, y1), parallel=False, offset=1)
            np.clip(warped, 0.0, 1.0, out=warped)
            others.append(_Other(ev, warped, frame_radiance, alignment.confidence[y0:y1], alignment.failed))
        radiance[y0:y1], _ = _merge_rows(
            reference[y0:y1], linearized(reference[y0:y1], reference_ev, raw_gamma), reference_ev, others, gamma,
            saturation_rule, want_confidence=False, black_level=black_level,
            holes=holes[y0:y1] if saturation_rule else None,
        )

    map_bands(band, height, width)
    fill_holes(radiance, holes)
    if not details:
        return radiance
    failed = [False if index == reference_index else aligned[index].failed for index in range(len(frames))]
    reasons = [None if index == reference_index else aligned[index].reason for index in range(len(frames))]
    return FlowMergeRadiance(radiance=radiance, failed=failed, settings=flows.settings, reasons=reasons,
                             alignments=aligned)


def reference_image(images: Sequence[np.ndarray], exposures: Sequence[float], gamma: float = GAMMA,
                    mu: float = MU) -> np.ndarray:
    """The reference (middle) frame alone: its HDR view ``ldr**gamma / 2**ev`` in the mu-law domain (constant
    ``mu``), model units, float32 (H, W, 3). The paper model's guide for a downscaled run (it has no prior)."""
    index = len(images) // 2
    view = linearize(images[index], float(model_exposures(exposures)[index]), gamma)
    return np.clip(mu_law(view, mu), 0.0, 1.0).astype(np.float32)


__all__ = ["FlowMergeRadiance", "FlowMergeResult", "flow_merge", "flow_merge_radiance", "reference_image"]
