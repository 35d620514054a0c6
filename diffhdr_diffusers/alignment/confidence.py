"""How far to trust a warped frame, per pixel: a soft weight in [0, 1].

Each cue is a float32 (H, W) map in [0, 1]; :func:`combine` takes their product, spreads low values a
little (a small erosion, so halos around occlusions go too) and smooths the result.
"""

from __future__ import annotations

import cv2
import numpy as np

from .flow import warp

FB_TOLERANCE = 0.5  # pixels of forward-backward error tolerated at zero motion
FB_RELATIVE = 0.05  # plus this share of the motion's length
PHOTOMETRIC_TOLERANCE = 0.03  # mean absolute LDR difference (exposure matched) at which trust halves
PHOTOMETRIC_WINDOW = 5  # box window the difference is averaged over
PHOTOMETRIC_GAP = 2.0  # stops between frames up to which PHOTOMETRIC_TOLERANCE holds as it is


def forward_backward(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Consistency of a flow with its reverse: ``forward[p] + backward[p + forward[p]]`` should be 0.

    Occluded pixels (visible in the reference, hidden in the frame) fail this test too.
    """
    returned = warp(backward, forward)
    error = np.linalg.norm(forward + returned, axis=-1)
    length = 0.5 * (np.linalg.norm(forward, axis=-1) + np.linalg.norm(returned, axis=-1))
    tolerance = np.float32(FB_TOLERANCE) + np.float32(FB_RELATIVE) * length
    return np.exp(-((error / tolerance) ** 2) * np.float32(np.log(2.0))).astype(np.float32)


def judged_agreement(agreement: np.ndarray, stops: float, gamma: float) -> np.ndarray:
    """:func:`photometric` agreement of frames ``stops`` apart, at the tolerance that judges whether they match at
    all: brightening a frame by more than :data:`PHOTOMETRIC_GAP` stops to match the other amplifies its noise and
    quantisation in code values by ``k = 2 ** (extra stops / gamma)``, and the tolerance grows by ``k`` (the same
    Gaussian at ``k`` times the width is the agreement to the power ``1 / k**2``). sculpture_garden's 8-bit frames
    4 stops apart agreed on 12 % of their pixels at the plain tolerance; a frame is rejected under 15 %. Each
    pixel's confidence keeps the plain tolerance."""
    widening = 2.0 ** (max(0.0, abs(stops) - PHOTOMETRIC_GAP) / gamma)
    return agreement if widening == 1.0 else agreement ** np.float32(1.0 / widening**2)


def photometric(reference_view: np.ndarray, warped_view: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Agreement of the exposure-matched reference and warped frame where both are informative (0 elsewhere)."""
    difference = np.abs(reference_view - warped_view).mean(axis=2)
    difference = cv2.blur(difference, (PHOTOMETRIC_WINDOW, PHOTOMETRIC_WINDOW), borderType=cv2.BORDER_REPLICATE)
    agreement = np.exp(-((difference / np.float32(PHOTOMETRIC_TOLERANCE)) ** 2) * np.float32(np.log(2.0)))
    return np.where(valid, agreement, 0.0).astype(np.float32)


def combine(*cues: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Product of the cues, eroded by one pixel and Gaussian-smoothed (sigma ``smoothing``), clipped to [0, 1]."""
    confidence = np.ones_like(cues[0], dtype=np.float32)
    for cue in cues:
        confidence *= cue.astype(np.float32)
    confidence = cv2.erode(confidence, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    if smoothing > 0:
        confidence = cv2.GaussianBlur(confidence, (0, 0), smoothing, borderType=cv2.BORDER_REPLICATE)
    return np.clip(confidence, 0.0, 1.0).astype(np.float32)


DENSE_MARGIN = 0.004  # the dense flow must beat the global warp by this mean absolute LDR difference
EDGE_MOTION = 2.0  # pixels the dense flow must move an edge beyond the global warp for the edge to vote
NEIGHBOUR_DEPTH = 6.0  # pixels into the informative neighbour where its own motion is read


def prefer_dense(reference_view: np.ndarray, global_view: np.ndarray, dense_view: np.ndarray, valid: np.ndarray,
                 dense: np.ndarray, global_flow: np.ndarray | None) -> np.ndarray:
    """float32 (H, W) in [0, 1]: where to follow the dense flow rather than the global warp.

    Both warps are exposure matched (clipped as a capture would be) and compared with the reference by 5x5 mean
    absolute difference: the dense flow wins where it agrees clearly better (by :data:`DENSE_MARGIN`), the global
    warp where it agrees as well. That decides wherever the reference is informative (``valid``), and also where it
    is saturated or black but one warp clearly shows there what the reference cannot have seen (the dense flow
    dragging a moving head into a blown sky, or the global warp a raised paddle).

    Where nothing decides, the dense flow is DIS's interpolation from around the region, and
    :func:`occluded_background` says which regions it is wrong for. ``dense`` and ``global_flow`` are the two
    flows (``global_flow`` ``None`` when no homography was found: the global warp is then no motion at all, and
    the dense flow is kept wherever nothing decides). The choice is smoothed so the blended flow has no seams.
    """
    def difference(view: np.ndarray) -> np.ndarray:
        return cv2.blur(np.abs(reference_view - view).mean(axis=2), (5, 5), borderType=cv2.BORDER_REPLICATE)

    gain = difference(global_view) - difference(dense_view)
    choice = np.clip((gain - np.float32(DENSE_MARGIN)) / np.float32(DENSE_MARGIN), 0.0, 1.0)
    decided = valid | (np.abs(gain) > np.float32(DENSE_MARGIN))
    undecided = np.float32(1.0)
    if global_flow is not None and not decided.all():
        undecided = np.where(occluded_background(decided, dense, global_flow), 0.0, 1.0)
    choice = np.where(decided, choice, undecided).astype(np.float32)
    return cv2.GaussianBlur(choice, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)


def occluded_background(decided: np.ndarray, dense: np.ndarray, global_flow: np.ndarray) -> np.ndarray:
    """Bool (H, W): the undecided regions (``~decided``, each connected one as a whole) that lie behind a moving
    neighbour, where the global warp is right and the dense flow is not.

    An edge between a region the reference cannot show (clipped or black) and an informative neighbour moves with
    whichever of the two is in front. DIS carries the edge's motion into the region either way. Where the
    neighbour's own inside (:data:`NEIGHBOUR_DEPTH` pixels and more from the edge) moves as the edge does, the
    neighbour is in front and the region is the background it moved over: a head before a blown sky (pingpong's
    window, where the sky had taken the head's motion). Where the neighbour stays put while the edge moves, the
    region is the thing that moved: a clipped object crossing a static background. Each region goes by the vote
    of its edge pixels that the dense flow moves more than :data:`EDGE_MOTION` pixels beyond the global warp.
    """
    count, labels = cv2.connectedComponents((~decided).astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(decided.shape, bool)
    depth = cv2.distanceTransform(decided.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5)  # from the regions
    inside = (depth > NEIGHBOUR_DEPTH) & (depth <= 3 * NEIGHBOUR_DEPTH)
    sigma = 2 * NEIGHBOUR_DEPTH
    weight = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), sigma)
    neighbour_flow = cv2.GaussianBlur(dense * inside[..., None], (0, 0), sigma)
    neighbour_flow /= np.maximum(weight, np.float32(1e-6))[..., None]
    motion = np.linalg.norm(dense - global_flow, axis=-1)
    carried = np.linalg.norm(dense - neighbour_flow, axis=-1) < 0.5 * motion
    # each edge pixel votes for the region beside it (labels spread 3 pixels out of the regions)
    beside = cv2.dilate(labels.astype(np.float32), np.ones((7, 7), np.uint8)).astype(np.int32)
    voters = decided & (depth <= 2.5) & (motion > EDGE_MOTION) & (weight > 1e-3) & (beside > 0)
    votes = np.bincount(beside[voters], weights=np.where(carried[voters], 1.0, -1.0), minlength=count)
    behind = votes > 0
    behind[0] = False
    return behind[labels]
