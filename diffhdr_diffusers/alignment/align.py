"""Alignment of a bracket onto its reference frame: the steps, in order.

For each non-reference frame: exposure matching (:mod:`.exposure`) → optional global homography
(:mod:`.homography`) → dense DIS flow at a bounded resolution, forward and backward (:mod:`.flow`) →
the frame's measured exposure against the reference → confidence from forward-backward consistency,
occlusion, saturated/black pixels and photometric agreement at the measured exposure (:mod:`.confidence`)
→ the verdict. Then every frame and its HDR-domain view ``ldr**gamma / 2**ev`` are warped at full size
(the HDR view is warped itself, not recomputed from the warped LDR).

A frame is rejected (``failed``, zero confidence; nothing raises) only when it does not match: too few of
its informative pixels agree with the reference once aligned, or its exposure differs from the expected one
by more than :data:`EXPOSURE_TOLERANCE` stops (a wrong camera response or wrong EVs, which a merge would
turn into wrong radiance). A reference that shows less than :data:`MIN_REFERENCE_SHOWN` of the image
informative judges no frame (its per-pixel confidence still applies). Each rejection carries a one-line
reason with the measured figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..bands import band_workers
from ..errors import InputError
from ..hdr_domain import GAMMA, linearize
from . import confidence as _confidence
from .exposure import BLACK_LEVEL, WHITE_LEVEL, grey_u8, informative, match_exposures, measured_exposure
from .flow import DEFAULT_FLOW_MAX_SIDE, RowSource, dense_flow, flow_size, homography_flow, inside, resize_flow, warp
from .flow import flow_preset as _check_preset, soft_border, warp_into
from .homography import estimate_homography, scale_homography

MIN_SIDE = 8
FAIL_FRACTION = 0.15  # a frame fails when fewer of its informative pixels than this are consistent
MIN_JUDGED = 0.02  # share of the image that must be informative in both frames to judge failure
# Share of the image the reference must show informative to judge failure at all. Below it the reference cannot
# vouch for or against a frame: in an overexposed bracket it often shows little but moving things, and
# rejecting the short frames there left the output white.
MIN_REFERENCE_SHOWN = 0.3
EXPOSURE_TOLERANCE = 0.5  # stops: a frame whose measured exposure is further than this from its EV is rejected
EXPOSURE_DEADBAND = 0.05  # stops: beyond this, the photometric check compares at the measured exposure


class RejectedFrame(int):
    """The index of a frame that alignment rejected, with the reason (``int(frame)`` is the index).

    An ``int`` so that lists of rejected frames still read as lists of indices; ``reason`` says why, with the
    measured figure, e.g. ``"exposure ratio 5.9 where 2 was expected"``.
    """

    reason: str

    def __new__(cls, index: int, reason: str | None = None):
        frame = super().__new__(cls, index)
        frame.reason = reason or "alignment failed"
        return frame

    @property
    def index(self) -> int:
        """The frame's index in the bracket, from 0 (warnings and the CLI say "frame 1" for index 0)."""
        return int(self)

    def __repr__(self) -> str:
        return f"RejectedFrame({int(self)}, {self.reason!r})"


@dataclass
class AlignmentResult:
    """A bracket warped onto its reference frame.

    Attributes:
        reference_index: index of the reference frame.
        images: N float32 (H, W, 3) LDR frames warped onto the reference (the reference unchanged).
        radiance: N float32 (H, W, 3) HDR-domain frames ``ldr**gamma / 2**ev`` (literal EV units), warped.
        flows: N float32 (H, W, 2) flows reference → frame (``None`` for the reference).
        confidence: N float32 (H, W) in [0, 1] (1 for the reference).
        failed: per frame, whether it was rejected (it does not match the reference).
        homographies: per frame, the 3x3 global homography used (reference → frame), or ``None``.
        settings: the settings used, JSON-serialisable.
        reasons: per frame, why it was rejected, with the measured figure (``None`` where it was not).
    """

    reference_index: int
    images: list[np.ndarray]
    radiance: list[np.ndarray]
    flows: list[np.ndarray | None]
    confidence: list[np.ndarray]
    failed: list[bool]
    homographies: list[np.ndarray | None] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    reasons: list[str | None] = field(default_factory=list)

    @property
    def rejected(self) -> list[RejectedFrame]:
        """The rejected frames, each with its reason."""
        return rejected_frames(self.failed, self.reasons)


def rejected_frames(failed: Sequence[bool], reasons: Sequence[str | None] = ()) -> list[RejectedFrame]:
    """:class:`RejectedFrame` of every frame with ``failed`` set (reasons by frame; missing ones are generic)."""
    reasons = list(reasons) + [None] * (len(failed) - len(reasons))
    return [RejectedFrame(index, reason) for index, (bad, reason) in enumerate(zip(failed, reasons)) if bad]


@dataclass
class FrameAlignment:
    """One non-reference frame lined up with the reference.

    Attributes:
        flow: float32 (H, W, 2) flow reference → frame.
        confidence: float32 (H, W) in [0, 1] (zero when rejected).
        failed: whether the frame was rejected.
        homography: the 3x3 global homography (reference → frame) at this size, or ``None``.
        reason: why it was rejected (``None`` if it was not).
    """

    flow: np.ndarray
    confidence: np.ndarray
    failed: bool
    homography: np.ndarray | None = None
    reason: str | None = None

    def resized(self, height: int, width: int) -> FrameAlignment:
        """The same alignment for the frames resized to (height, width): flow vectors scaled, confidence
        area-averaged when shrinking. Reuses a full-size alignment for a downscaled copy of the bracket."""
        old_height, old_width = self.flow.shape[:2]
        if (old_height, old_width) == (height, width):
            return self
        shrink = height <= old_height and width <= old_width
        confidence = cv2.resize(self.confidence, (width, height),
                                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        homography = None if self.homography is None else scale_homography(
            self.homography, old_width / width, old_height / height)
        return replace(self, flow=resize_flow(self.flow, height, width), homography=homography,
                       confidence=np.clip(confidence, 0.0, 1.0).astype(np.float32, copy=False))


def check_bracket(
    images: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None
) -> tuple[list[np.ndarray], list[float], int]:
    """Validate a bracket; return float32 frames, float EVs and the reference index (default ``N // 2``)."""
    frames = [np.asarray(image, dtype=np.float32) for image in images]
    if len(frames) < 2:
        raise InputError(f"alignment needs at least 2 exposures, got {len(frames)}.")
    if len(exposures) != len(frames):
        raise InputError(f"got {len(frames)} images but {len(exposures)} exposures; give one EV per image.")
    shapes = {frame.shape for frame in frames}
    first = frames[0].shape
    if len(shapes) != 1 or len(first) != 3 or first[2] != 3 or min(first[:2]) < MIN_SIDE:
        raise InputError(
            f"images must all be (H, W, 3) of one size, at least {MIN_SIDE}x{MIN_SIDE}; got shapes {sorted(shapes)}."
        )
    evs = [float(ev) for ev in exposures]
    if not all(np.isfinite(evs)):
        raise InputError(f"exposures must be finite EV stops, got {evs}.")
    if reference_index is None:
        reference_index = len(frames) // 2
    if not isinstance(reference_index, (int, np.integer)) or not 0 <= reference_index < len(frames):
        raise InputError(f"reference_index {reference_index!r}: must be an integer in [0, {len(frames) - 1}].")
    return frames, evs, int(reference_index)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _ratio_text(stops: float) -> str:
    """An exposure difference in stops as the ratio of the longer exposure to the shorter: ``5.9``, ``2``."""
    return f"{2.0 ** abs(stops):.3g}"


def _verdict(consistent_fraction: float | None, expected_stops: float, measured_stops: float | None) -> str | None:
    """Why a frame is rejected (``None``: it is not), from the share of its informative pixels consistent with the
    reference and its measured exposure (stops relative to the reference) against the expected one."""
    exposure = None
    if measured_stops is not None and abs(measured_stops - expected_stops) > EXPOSURE_TOLERANCE:
        swapped = measured_stops * expected_stops < 0  # brighter where it should be darker, or the reverse
        exposure = (f"exposure ratio {_ratio_text(measured_stops)}{' the wrong way round' if swapped else ''} "
                    f"where {_ratio_text(expected_stops)} was expected")
    if consistent_fraction is not None and consistent_fraction < FAIL_FRACTION:
        text = (f"only {100 * consistent_fraction:.0f} % of informative pixels consistent with the reference "
                f"({100 * FAIL_FRACTION:.0f} % needed)")
        return text if exposure is None else f"{text}; {exposure}"
    return exposure


def _align_frame(
    reference: np.ndarray, frame: np.ndarray, reference_ev: float, frame_ev: float, gamma: float,
    use_homography: bool, preset: str,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, str | None]:
    """Align one (already downsized) frame: homography, residual flow, confidence and the reason it is rejected
    (``None`` when it is not)."""
    height, width = reference.shape[:2]
    reference_view, frame_view, valid = match_exposures(reference, frame, reference_ev, frame_ev, gamma)
    reference_grey, frame_grey = grey_u8(reference_view), grey_u8(frame_view)

    homography = estimate_homography(reference_grey, frame_grey, valid) if use_homography else None
    prewarped = frame_grey
    if homography is not None:
        candidate = cv2.warpPerspective(
            frame_grey, homography, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        before = np.abs(reference_grey.astype(np.float32) - frame_grey)[valid].mean() if valid.any() else 0.0
        after = np.abs(reference_grey.astype(np.float32) - candidate)[valid].mean() if valid.any() else 0.0
        if after <= before:
            prewarped = candidate
        else:
            homography = None

    forward = dense_flow(reference_grey, prewarped, preset)
    backward = dense_flow(prewarped, reference_grey, preset)
    # DIS wanders in flat regions; keep its residual only where it agrees better than the global warp.
    global_flow = np.zeros_like(forward) if homography is None else homography_flow(homography, height, width)
    dense = forward if homography is None else homography_flow(homography, height, width, forward)
    reference_shown = informative(reference)
    uses_flow = _confidence.prefer_dense(
        reference_view, warp(frame_view, global_flow), warp(frame_view, dense), reference_shown, dense,
        None if homography is None else global_flow,
    )
    forward = forward * uses_flow[..., None]
    total = global_flow + (dense - global_flow) * uses_flow[..., None]

    warped_frame = warp(frame, total)
    both_valid = reference_shown & informative(warped_frame)
    consistency = 1.0 - uses_flow * (1.0 - _confidence.forward_backward(forward / np.maximum(uses_flow, 1e-6)[..., None], backward))
    within = inside(total)
    judged = both_valid & (within > 0.5)
    enough = judged.mean() >= MIN_JUDGED and reference_shown.mean() >= MIN_REFERENCE_SHOWN

    # The frame's exposure as measured where the flow is consistent; the photometric check compares the two
    # frames at that exposure, so that a slightly wrong EV does not read as a bad match.
    measured = measured_exposure(reference, warped_frame, judged & (consistency > 0.5), gamma) if enough else None
    if measured is not None and abs(measured - (frame_ev - reference_ev)) > EXPOSURE_DEADBAND:
        reference_view, frame_view, _ = match_exposures(reference, frame, reference_ev, reference_ev + measured, gamma)
    agreement = _confidence.photometric(reference_view, warp(frame_view, total), both_valid)
    confidence = _confidence.combine(consistency, agreement, within)

    consistent_fraction = None
    if enough:
        judged_agreement = _confidence.judged_agreement(agreement, frame_ev - reference_ev, gamma)
        consistent_fraction = float(((consistency * judged_agreement)[judged] > 0.5).mean())
    reason = _verdict(consistent_fraction, frame_ev - reference_ev, measured)
    if reason is not None:
        confidence = np.zeros_like(confidence)
    return homography, forward, confidence, reason


def align_exposures(
    images: Sequence[np.ndarray],
    exposures: Sequence[float],
    reference_index: int | None = None,
    gamma: float = GAMMA,
    homography: bool = True,
    flow_preset: str = "medium",
    flow_max_side: int | None = None,
) -> AlignmentResult:
    """Warp every frame of a bracket onto the reference frame.

    Args:
        images: N >= 2 float (H, W, 3) LDR frames in [0, 1], short to long, at least 8x8.
        exposures: N EV stops in literal units (any offset).
        reference_index: the frame to align to; default ``N // 2`` (the middle exposure).
        gamma: inverse camera response exponent (``ldr**gamma`` is linear).
        homography: estimate a global homography first (for large camera motion); identity if unreliable.
        flow_preset: OpenCV DIS preset, ``"ultrafast"``, ``"fast"`` or ``"medium"``.
        flow_max_side: longest side the flow is computed at (the flow is then upsampled); ``None`` uses
            1024, 0 the native size.

    Returns:
        An :class:`AlignmentResult`.
    """
    frames, evs, reference_index = check_bracket(images, exposures, reference_index)
    flows = frame_flows(frames, evs, reference_index, gamma, homography, flow_preset, flow_max_side)
    return warp_bracket(frames, evs, reference_index, flows.align_all(), gamma, flows.settings)


def warp_bracket(frames: Sequence[np.ndarray], evs: Sequence[float], reference_index: int,
                 aligned: dict[int, FrameAlignment], gamma: float = GAMMA, settings: dict | None = None,
                 ) -> AlignmentResult:
    """Warp every frame (and its HDR-domain view) with its alignment (one :class:`FrameAlignment` per
    non-reference frame, by index, of the frames' size) into an :class:`AlignmentResult`."""
    height, width = frames[0].shape[:2]
    result = AlignmentResult(reference_index=reference_index, images=[], radiance=[], flows=[], confidence=[],
                             failed=[], homographies=[], settings=dict(settings or {}), reasons=[])
    for index, (frame, ev) in enumerate(zip(frames, evs)):
        if index == reference_index:
            result.images.append(frame.copy())
            result.radiance.append(linearized(frame, ev, gamma))
            result.flows.append(None)
            result.confidence.append(np.ones((height, width), np.float32))
            result.failed.append(False)
            result.homographies.append(None)
            result.reasons.append(None)
            continue
        alignment = aligned[index]
        if alignment.flow.shape[:2] != (height, width):
            raise InputError(f"the alignment of frame {index} is {alignment.flow.shape[:2]} but the frames are "
                             f"{(height, width)}; resize it (FrameAlignment.resized).")
        warped, radiance = np.empty_like(frame), np.empty_like(frame)
        source = soft_border(frame)
        warp_into([source, RowSource(source, lambda rows, ev=ev: linearized(rows, ev, gamma))], alignment.flow,
                  [warped, radiance], offset=1)
        result.images.append(np.clip(warped, 0.0, 1.0, out=warped))
        result.radiance.append(radiance)
        result.flows.append(alignment.flow)
        result.confidence.append(alignment.confidence)
        result.failed.append(alignment.failed)
        result.homographies.append(alignment.homography)
        result.reasons.append(alignment.reason)
    return result


def linearized(image: np.ndarray, ev: float, gamma: float = GAMMA) -> np.ndarray:
    """:func:`~diffhdr_diffusers.hdr_domain.linearize` with one full-size temporary instead of three (same values)."""
    if type(gamma) not in (int, float) or np.asarray(image).dtype != np.float32:
        return linearize(image, ev, gamma)  # numpy scalars or other dtypes promote differently: the plain formula
    out = np.power(image, np.float32(gamma))
    out /= np.float32(2.0**ev)
    return out


class FrameFlows:
    """The low-resolution part of :func:`align_exposures`, done once: per frame, its full-size
    :class:`FrameAlignment`. ``settings`` is :attr:`AlignmentResult.settings`."""

    def __init__(self, frames, evs, reference_index, gamma, homography, flow_preset, small, settings):
        self.frames, self.evs, self.reference_index = frames, evs, reference_index
        self.gamma, self.homography, self.flow_preset = gamma, homography, flow_preset
        self.small, self.settings = small, settings

    def align_all(self) -> dict[int, FrameAlignment]:
        """:meth:`frame` of every non-reference frame, by index; the frames are aligned on a few threads
        (:func:`~diffhdr_diffusers.bands.band_workers`), each on its own, so the results do not change."""
        indices = [index for index in range(len(self.frames)) if index != self.reference_index]
        workers = min(band_workers(), len(indices))
        if workers <= 1:
            return {index: self.frame(index) for index in indices}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {index: pool.submit(self.frame, index) for index in indices}
            return {index: future.result() for index, future in futures.items()}

    def frame(self, index: int) -> FrameAlignment:
        """Align one non-reference frame at the flow resolution; its alignment at full size."""
        height, width = self.frames[0].shape[:2]
        small_height, small_width = self.small[0].shape[:2]
        reference_index = self.reference_index
        small_homography, residual, confidence, reason = _align_frame(
            self.small[reference_index], self.small[index], self.evs[reference_index], self.evs[index], self.gamma,
            self.homography, self.flow_preset,
        )
        flow = resize_flow(residual, height, width)
        if small_homography is None:
            full_homography = None
        else:
            full_homography = scale_homography(small_homography, small_width / width, small_height / height)
            if flow is residual:
                flow = flow.copy()
            homography_flow(full_homography, height, width, flow, out=flow)
        if confidence.shape != (height, width):
            confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
            np.clip(confidence, 0, 1, out=confidence)
        return FrameAlignment(flow, confidence.astype(np.float32, copy=False), reason is not None, full_homography,
                              reason)


def frame_flows(
    frames: list[np.ndarray], evs: list[float], reference_index: int, gamma: float = GAMMA, homography: bool = True,
    flow_preset: str = "medium", flow_max_side: int | None = None,
) -> FrameFlows:
    """Check the settings and downsize the (checked, see :func:`check_bracket`) frames for :class:`FrameFlows`."""
    _check_preset(flow_preset)
    max_side = DEFAULT_FLOW_MAX_SIDE if flow_max_side is None else int(flow_max_side)
    if max_side < 0:
        raise InputError(f"flow_max_side {flow_max_side}: must be >= 0 (0 = native resolution) or None.")
    height, width = frames[0].shape[:2]
    small_height, small_width = flow_size(height, width, max_side)
    small = [_resize(frame, small_height, small_width) for frame in frames]
    settings = {
        "reference_index": reference_index,
        "gamma": float(gamma),
        "homography": bool(homography),
        "flow_preset": flow_preset,
        "flow_max_side": max_side,
        "flow_size": [small_height, small_width],
        "black_level": BLACK_LEVEL,
        "white_level": WHITE_LEVEL,
    }
    return FrameFlows(frames, evs, reference_index, gamma, homography, flow_preset, small, settings)
