"""Alignment: warp every exposure of a bracket onto the reference, with a per-pixel confidence.

For each non-reference frame: exposure matching (:mod:`.exposure`) → optional global homography
(:mod:`.homography`) → dense DIS flow at a bounded resolution, forward and backward (:mod:`.flow`) →
warp of the LDR frame and of its HDR-domain view ``ldr**gamma / 2**ev`` (the HDR view is warped
itself, not recomputed from the warped LDR) → confidence from forward-backward consistency,
occlusion, saturated/black pixels and photometric agreement (:mod:`.confidence`). A frame that shows
another scene is marked ``failed`` and gets zero confidence; nothing here raises for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import InputError
from ..hdr_domain import GAMMA, linearize
from . import confidence as _confidence
from .exposure import BLACK_LEVEL, WHITE_LEVEL, grey_u8, informative, match_exposures
from .flow import DEFAULT_FLOW_MAX_SIDE, dense_flow, flow_preset as _check_preset, flow_size, homography_flow
from .flow import RowSource, band_workers, inside, resize_flow, warp, warp_into
from .homography import estimate_homography, scale_homography

MIN_SIDE = 8
FAIL_FRACTION = 0.15  # a frame fails when fewer of its informative pixels than this are consistent
MIN_JUDGED = 0.02  # share of the image that must be informative in both frames to judge failure


@dataclass
class AlignmentResult:
    """A bracket warped onto its reference frame.

    Attributes:
        reference_index: index of the reference frame.
        images: N float32 (H, W, 3) LDR frames warped onto the reference (the reference unchanged).
        radiance: N float32 (H, W, 3) HDR-domain frames ``ldr**gamma / 2**ev`` (literal EV units), warped.
        flows: N float32 (H, W, 2) flows reference → frame (``None`` for the reference).
        confidence: N float32 (H, W) in [0, 1] (1 for the reference).
        failed: per frame, whether alignment was judged failed (the frame shows another scene).
        homographies: per frame, the 3x3 global homography used (reference → frame), or ``None``.
        settings: the settings used, JSON-serialisable.
    """

    reference_index: int
    images: list[np.ndarray]
    radiance: list[np.ndarray]
    flows: list[np.ndarray | None]
    confidence: list[np.ndarray]
    failed: list[bool]
    homographies: list[np.ndarray | None] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


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


def _align_frame(
    reference: np.ndarray, frame: np.ndarray, reference_ev: float, frame_ev: float, gamma: float,
    use_homography: bool, preset: str,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, bool]:
    """Align one (already downsized) frame: homography, residual flow, confidence and the failure verdict."""
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
    uses_flow = _confidence.prefer_dense(
        reference_view, warp(frame_view, global_flow), warp(frame_view, dense), informative(reference)
    )
    forward = forward * uses_flow[..., None]
    total = global_flow + (dense - global_flow) * uses_flow[..., None]

    warped_frame = warp(frame, total)
    warped_view = warp(frame_view, total)
    both_valid = informative(reference) & informative(warped_frame)
    consistency = 1.0 - uses_flow * (1.0 - _confidence.forward_backward(forward / np.maximum(uses_flow, 1e-6)[..., None], backward))
    agreement = _confidence.photometric(reference_view, warped_view, both_valid)
    within = inside(total)
    confidence = _confidence.combine(consistency, agreement, within)

    judged = both_valid & (within > 0.5)
    failed = False
    if judged.mean() >= MIN_JUDGED:
        consistent = (consistency * agreement)[judged] > 0.5
        failed = bool(consistent.mean() < FAIL_FRACTION)
    if failed:
        confidence = np.zeros_like(confidence)
    return homography, forward, confidence, failed


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
    height, width = frames[0].shape[:2]
    flows = frame_flows(frames, evs, reference_index, gamma, homography, flow_preset, flow_max_side)
    result = AlignmentResult(
        reference_index=reference_index, images=[], radiance=[], flows=[], confidence=[], failed=[],
        homographies=[], settings=flows.settings,
    )
    aligned = flows.align_all()
    for index, (frame, ev) in enumerate(zip(frames, evs)):
        if index == reference_index:
            result.images.append(frame.copy())
            result.radiance.append(linearized(frame, ev, gamma))
            result.flows.append(None)
            result.confidence.append(np.ones((height, width), np.float32))
            result.failed.append(False)
            result.homographies.append(None)
            continue
        flow, confidence, failed, full_homography = aligned.pop(index)
        warped, radiance = np.empty_like(frame), np.empty_like(frame)
        warp_into([frame, RowSource(frame, lambda rows, ev=ev: linearized(rows, ev, gamma))], flow, [warped, radiance])
        result.images.append(np.clip(warped, 0.0, 1.0, out=warped))
        result.radiance.append(radiance)
        result.flows.append(flow)
        result.confidence.append(confidence)
        result.failed.append(failed)
        result.homographies.append(full_homography)
    return result


def linearized(image: np.ndarray, ev: float, gamma: float = GAMMA) -> np.ndarray:
    """:func:`~diffhdr_diffusers.hdr_domain.linearize` with one full-size temporary instead of three (same values)."""
    if type(gamma) not in (int, float) or np.asarray(image).dtype != np.float32:
        return linearize(image, ev, gamma)  # numpy scalars or other dtypes promote differently: the plain formula
    out = np.power(image, np.float32(gamma))
    out /= np.float32(2.0**ev)
    return out


class FrameFlows:
    """The low-resolution part of :func:`align_exposures`, done once: per frame, its full-size flow and confidence.

    ``frame(index)`` aligns one non-reference frame at the flow resolution and returns
    ``(flow, confidence, failed, homography)`` at full size (float32 (H, W, 2), float32 (H, W), bool,
    3x3 or ``None``). ``settings`` is :attr:`AlignmentResult.settings`.
    """

    def __init__(self, frames, evs, reference_index, gamma, homography, flow_preset, max_side, small, settings):
        self.frames, self.evs, self.reference_index = frames, evs, reference_index
        self.gamma, self.homography, self.flow_preset = gamma, homography, flow_preset
        self.small, self.settings = small, settings

    def align_all(self) -> dict[int, tuple[np.ndarray, np.ndarray, bool, np.ndarray | None]]:
        """:meth:`frame` of every non-reference frame, by index; the frames are aligned on a few threads
        (:func:`~diffhdr_diffusers.alignment.flow.band_workers`), each on its own, so the results do not change."""
        indices = [index for index in range(len(self.frames)) if index != self.reference_index]
        workers = min(band_workers(), len(indices))
        if workers <= 1:
            return {index: self.frame(index) for index in indices}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {index: pool.submit(self.frame, index) for index in indices}
            return {index: future.result() for index, future in futures.items()}

    def frame(self, index: int) -> tuple[np.ndarray, np.ndarray, bool, np.ndarray | None]:
        height, width = self.frames[0].shape[:2]
        small_height, small_width = self.small[0].shape[:2]
        reference_index = self.reference_index
        small_homography, residual, confidence, failed = _align_frame(
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
        return flow, confidence.astype(np.float32, copy=False), failed, full_homography


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
    return FrameFlows(frames, evs, reference_index, gamma, homography, flow_preset, max_side, small, settings)


__all__ = ["AlignmentResult", "align_exposures", "check_bracket"]
