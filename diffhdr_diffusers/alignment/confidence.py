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


def prefer_dense(reference_view: np.ndarray, global_view: np.ndarray, dense_view: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """float32 (H, W) in [0, 1]: where to follow the dense flow rather than the global warp.

    Both warps are exposure matched (clipped as a capture would be) and compared with the reference by 5x5 mean
    absolute difference: the dense flow wins where it agrees clearly better (by :data:`DENSE_MARGIN`), the global
    warp where it agrees as well. That decides wherever the reference is informative (``valid``), and also where it
    is saturated or black but one warp clearly shows there what the reference cannot have seen (the dense flow
    dragging a moving head into a blown sky, or the global warp a raised paddle). Where nothing decides, the dense
    flow is kept. The choice is smoothed so the blended flow has no seams.
    """
    def difference(view: np.ndarray) -> np.ndarray:
        return cv2.blur(np.abs(reference_view - view).mean(axis=2), (5, 5), borderType=cv2.BORDER_REPLICATE)

    gain = difference(global_view) - difference(dense_view)
    choice = np.clip((gain - np.float32(DENSE_MARGIN)) / np.float32(DENSE_MARGIN), 0.0, 1.0)
    decided = valid | (np.abs(gain) > np.float32(DENSE_MARGIN))
    choice = np.where(decided, choice, 1.0).astype(np.float32)
    return cv2.GaussianBlur(choice, (0, 0), 2.0, borderType=cv2.BORDER_REPLICATE)
