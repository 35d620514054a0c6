"""Global pre-alignment: a homography from ORB features with RANSAC, kept only when it is reliable."""

from __future__ import annotations

import cv2
import numpy as np

MIN_INLIERS = 15
MIN_INLIER_RATIO = 0.25
MAX_CORNER_SHIFT = 0.25  # of the image diagonal
ECC_MIN_CORRELATION = 0.5  # an ECC fallback's correlation below this means it did not register the frames


def estimate_homography(reference: np.ndarray, frame: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray | None:
    """The 3x3 homography mapping reference pixel coordinates to ``frame``'s, or ``None`` if unreliable.

    Args:
        reference, frame: 8-bit grey images of one size, exposure-matched.
        valid: optional bool mask (H, W) of pixels with motion information (features elsewhere are ignored).

    The estimate is rejected (``None``) with too few or too weak RANSAC inliers, or when it moves an
    image corner by more than a quarter of the diagonal or flips or squashes the image.
    """
    height, width = reference.shape[:2]
    if min(height, width) < 32:
        return None
    mask = None if valid is None else (valid.astype(np.uint8) * 255)
    orb = cv2.ORB_create(nfeatures=1500, edgeThreshold=15, patchSize=15, fastThreshold=10)
    keys_ref, desc_ref = orb.detectAndCompute(reference, mask)
    keys_frame, desc_frame = orb.detectAndCompute(frame, mask)
    if desc_ref is None or desc_frame is None or len(keys_ref) < MIN_INLIERS or len(keys_frame) < MIN_INLIERS:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc_ref, desc_frame)
    if len(matches) < MIN_INLIERS:
        return None
    source = np.float32([keys_ref[m.queryIdx].pt for m in matches])
    target = np.float32([keys_frame[m.trainIdx].pt for m in matches])
    homography, inliers = cv2.findHomography(source, target, cv2.RANSAC, 3.0)
    if homography is None or inliers is None:
        return None
    count = int(inliers.sum())
    if count < MIN_INLIERS or count < MIN_INLIER_RATIO * len(matches):
        return None
    corners = np.float32([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]])[:, None, :]
    moved = cv2.perspectiveTransform(corners, homography)
    if not np.all(np.isfinite(moved)):
        return None
    if np.abs(moved - corners).max() > MAX_CORNER_SHIFT * float(np.hypot(width, height)):
        return None
    determinant = float(np.linalg.det(homography[:2, :2]))
    if not 0.5 < determinant < 2.0:
        return None
    return homography.astype(np.float64)


def estimate_affine_ecc(reference: np.ndarray, frame: np.ndarray, min_correlation: float = ECC_MIN_CORRELATION) -> np.ndarray | None:
    """The 3x3 affine map of reference pixel coordinates to ``frame``'s by intensity correlation
    (:func:`cv2.findTransformECC`), or ``None`` when it does not converge or correlates below ``min_correlation``.

    For small or plain frames where ORB finds too few features (:func:`estimate_homography` gives up): it uses
    every pixel, and as a correlation it tolerates the frames' different brightness. ``reference`` and
    ``frame`` are 8-bit grey images of one size, exposure-matched (equalised histograms, say).
    """
    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-5)
    try:
        correlation, warp = cv2.findTransformECC(np.float32(reference), np.float32(frame), warp, cv2.MOTION_AFFINE,
                                                 criteria, None, 5)
    except cv2.error:  # did not converge
        return None
    if correlation < min_correlation or not np.all(np.isfinite(warp)):
        return None
    return np.vstack([warp, [0.0, 0.0, 1.0]]).astype(np.float64)


def scale_homography(homography: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """A homography estimated on an image resized by ``(scale_x, scale_y)``, expressed at full size."""
    scale = np.diag([scale_x, scale_y, 1.0])
    return np.linalg.inv(scale) @ homography @ scale
