"""Dense optical flow (OpenCV DIS) at a bounded resolution, composition with a homography, and warping.

A flow here maps the reference to a frame: reference pixel ``p`` shows what the frame shows at
``p + flow[p]`` (``flow[..., 0]`` is x, ``flow[..., 1]`` is y), so ``warp(frame, flow)`` lines the frame
up with the reference.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError

FLOW_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_FLOW_MAX_SIDE = 1024
_MIN_FLOW_SIDE = 16  # DIS refuses images below 12 pixels; smaller ones are padded


def flow_preset(name: str) -> int:
    """The OpenCV DIS preset called ``name`` (one of :data:`FLOW_PRESETS`)."""
    try:
        return FLOW_PRESETS[name]
    except KeyError:
        raise InputError(f"unknown flow_preset {name!r}; choose one of: {', '.join(FLOW_PRESETS)}.") from None


def flow_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) the flow is computed at: the image shrunk so its longer side is at most ``max_side`` (0 = native)."""
    if max_side <= 0 or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(int(round(height * scale)), 1), max(int(round(width * scale)), 1)


def dense_flow(reference: np.ndarray, frame: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS flow (H, W, 2) float32 from 8-bit grey ``reference`` to ``frame`` (one size)."""
    height, width = reference.shape[:2]
    pad_y, pad_x = max(_MIN_FLOW_SIDE - height, 0), max(_MIN_FLOW_SIDE - width, 0)
    if pad_y or pad_x:
        reference = cv2.copyMakeBorder(reference, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
        frame = cv2.copyMakeBorder(frame, 0, pad_y, 0, pad_x, cv2.BORDER_REPLICATE)
    flow = cv2.DISOpticalFlow_create(flow_preset(preset)).calc(reference, frame, None)
    return np.ascontiguousarray(flow[:height, :width], dtype=np.float32)


def resize_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a flow field to (height, width), scaling its vectors with the image."""
    if flow.shape[:2] == (height, width):
        return flow
    scale_x, scale_y = width / flow.shape[1], height / flow.shape[0]
    resized = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
    resized[..., 0] *= np.float32(scale_x)
    resized[..., 1] *= np.float32(scale_y)
    return resized


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 x and y coordinate grids (H, W)."""
    xs = np.arange(width, dtype=np.float32)[None, :].repeat(height, axis=0)
    ys = np.arange(height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return xs, ys


def homography_flow(homography: np.ndarray, height: int, width: int, residual: np.ndarray | None = None) -> np.ndarray:
    """The flow of ``p -> H (p + residual[p])``: a residual flow followed by a homography to the frame."""
    xs, ys = pixel_grid(height, width)
    if residual is not None:
        xs, ys = xs + residual[..., 0], ys + residual[..., 1]
    points = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2).astype(np.float64)
    mapped = cv2.perspectiveTransform(points, np.asarray(homography, dtype=np.float64)).reshape(height, width, 2)
    base_x, base_y = pixel_grid(height, width)
    return np.stack([mapped[..., 0] - base_x, mapped[..., 1] - base_y], axis=-1).astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` sampled at ``p + flow[p]`` (border replicated): the frame lined up with the reference."""
    height, width = flow.shape[:2]
    xs, ys = pixel_grid(height, width)
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(np.asarray(image, dtype=np.float32), map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)
    return warped.reshape(np.shape(image)) if warped.ndim < np.ndim(image) else warped


def inside(flow: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 where ``p + flow`` lands inside the frame, falling to 0 ``margin`` pixels outside."""
    height, width = flow.shape[:2]
    xs, ys = pixel_grid(height, width)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    outside = np.maximum.reduce([-x, x - (width - 1), -y, y - (height - 1), np.zeros_like(x)])
    return np.clip(1.0 - outside / np.float32(margin), 0.0, 1.0).astype(np.float32)
