"""Dense optical flow (OpenCV DIS) at a bounded resolution, composition with a homography, and warping.

A flow here maps the reference to a frame: reference pixel ``p`` shows what the frame shows at
``p + flow[p]`` (``flow[..., 0]`` is x, ``flow[..., 1]`` is y), so ``warp(frame, flow)`` lines the frame
up with the reference.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..bands import map_bands
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
    """Resample a flow field to (height, width), scaling its vectors with the image (bilinear; area-averaged when
    shrinking)."""
    if flow.shape[:2] == (height, width):
        return flow
    scale_x, scale_y = width / flow.shape[1], height / flow.shape[0]
    interpolation = cv2.INTER_AREA if scale_x <= 1 and scale_y <= 1 else cv2.INTER_LINEAR
    resized = cv2.resize(flow, (width, height), interpolation=interpolation)
    resized[..., 0] *= np.float32(scale_x)
    resized[..., 1] *= np.float32(scale_y)
    return resized


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 x and y coordinate grids (H, W)."""
    xs = np.arange(width, dtype=np.float32)[None, :].repeat(height, axis=0)
    ys = np.arange(height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return xs, ys


def homography_flow(
    homography: np.ndarray, height: int, width: int, residual: np.ndarray | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """The flow of ``p -> H (p + residual[p])``: a residual flow followed by a homography to the frame.

    Computed in bands (float64 only for a band's points); ``out`` (float32 (H, W, 2)) may be ``residual``
    itself, which is then replaced in place.
    """
    matrix = np.asarray(homography, dtype=np.float64)
    if out is None:
        out = np.empty((height, width, 2), np.float32)
    base_x = np.arange(width, dtype=np.float32)

    def band(y0: int, y1: int) -> None:
        rows = y1 - y0
        points = np.empty((rows, width, 2), np.float64)
        base_y = np.arange(y0, y1, dtype=np.float32)[:, None]
        if residual is None:
            points[..., 0] = base_x
            points[..., 1] = base_y
        else:
            # float32 sums first (as the grid plus the residual always was), then float64 for the projection
            points[..., 0] = base_x + residual[y0:y1, :, 0]
            points[..., 1] = base_y + residual[y0:y1, :, 1]
        mapped = cv2.perspectiveTransform(points.reshape(-1, 1, 2), matrix).reshape(rows, width, 2)
        np.subtract(mapped[..., 0], base_x, out=out[y0:y1, :, 0], casting="same_kind")
        np.subtract(mapped[..., 1], base_y, out=out[y0:y1, :, 1], casting="same_kind")

    map_bands(band, height, width)
    return out


# Rows beyond floor(y) that OpenCV's interpolation reads, plus one for rounding to its 1/32-pixel grid. Other
# interpolations sum in another order near a border, so they get the whole source (still exact, just more work).
_REACH = {cv2.INTER_NEAREST: 2, cv2.INTER_LINEAR: 2}


def _source_rows(map_y: np.ndarray, height: int, interpolation: int = cv2.INTER_LINEAR) -> tuple[int, int]:
    """Rows ``[s0, s1)`` of the source that sampling at ``map_y`` can touch (with a safety margin)."""
    reach = _REACH.get(interpolation)
    low, high = float(np.min(map_y)), float(np.max(map_y))  # NaN propagates: then the whole source
    if reach is None or not (np.isfinite(low) and np.isfinite(high)):
        return 0, height
    start = min(max(int(np.floor(low)) - reach, 0), height - 1)
    stop = max(min(int(np.floor(high)) + reach + 1, height), start + 1)
    return start, stop


def warp_into(
    sources, flow: np.ndarray, outs, rows: tuple[int, int] | None = None, interpolation: int = cv2.INTER_LINEAR,
    parallel: bool = True, offset: int = 0,
) -> None:
    """Warp several images with one flow, band by band, into preallocated outputs.

    Args:
        sources: per image, an array (H', W', C) or a :class:`RowSource` (a view computed a few rows
            at a time, e.g. a linearised frame, so the full-size view never exists).
        flow: float32 (h, W, 2) flow of the output rows (all rows, or ``rows`` of the full image).
        outs: per image, a float32 array (h, W, C) to write into.
        rows: ``(y0, y1)``: ``flow`` and ``outs`` hold these rows of the full output; default all.
        parallel: run the bands on a few threads (:func:`map_bands`).
        offset: pixels the sources are padded by on every side (:func:`soft_border`: 1).

    Equal to :func:`warp` (OpenCV samples every output pixel on its own, so bands and a source cut to the
    rows a band reads change nothing; the cut shifts the map by whole pixels, exactly).
    """
    y_offset = 0 if rows is None else rows[0]
    height, width = flow.shape[:2]
    base_x = np.arange(width, dtype=np.float32)

    def band(y0: int, y1: int) -> None:
        map_x = np.add(base_x + np.float32(offset), flow[y0:y1, :, 0])
        map_y = np.add(np.arange(y0 + y_offset + offset, y1 + y_offset + offset, dtype=np.float32)[:, None], flow[y0:y1, :, 1])
        for source, out in zip(sources, outs):
            full_height = source.height if isinstance(source, RowSource) else source.shape[0]
            s0, s1 = _source_rows(map_y, full_height, interpolation)
            part = source(s0, s1) if isinstance(source, RowSource) else source[s0:s1]
            if s0:
                map_y_part = map_y - np.float32(s0)
            else:
                map_y_part = map_y
            warped = cv2.remap(part, map_x, map_y_part, interpolation, borderMode=cv2.BORDER_REPLICATE)
            out[y0:y1] = warped.reshape(out[y0:y1].shape)

    map_bands(band, height, width, parallel)


class RowSource:
    """A view of an image computed on demand, a few rows at a time, for :func:`warp_into`: ``fn(image[s0:s1])``."""

    def __init__(self, image: np.ndarray, fn):
        self.image, self.fn, self.height = image, fn, image.shape[0]

    def __call__(self, start: int, stop: int) -> np.ndarray:
        return self.fn(self.image[start:stop])


def warp(image: np.ndarray, flow: np.ndarray, interpolation: int = cv2.INTER_LINEAR, offset: int = 0) -> np.ndarray:
    """``image`` sampled at ``p + flow[p]`` (border replicated): the frame lined up with the reference
    (``offset``: as for :func:`warp_into`)."""
    image = np.asarray(image, dtype=np.float32)
    height, width = flow.shape[:2]
    out = np.empty((height, width) + image.shape[2:], np.float32)
    warp_into([image], flow, [out], interpolation=interpolation, offset=offset)
    return out


BORDER_SOFTENING = 0.02  # share of the longer side over which a frame's edge pixels are averaged (soft_border)


def soft_border(image: np.ndarray) -> np.ndarray:
    """``image`` padded by one pixel (float32 (H + 2, W + 2, ...)) holding its edge averaged along itself (a box of
    :data:`BORDER_SOFTENING` of the longer side); warp it with ``offset=1``. Warps repeat the outermost pixels into
    what the frame did not see (camera shake): repeated as it is, each edge pixel's texture would become a streak;
    averaged, the frame extends smoothly. The frame's own pixels are sampled as they are."""
    out = cv2.copyMakeBorder(np.asarray(image, dtype=np.float32), 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    size = 2 * max(1, round(BORDER_SOFTENING * max(out.shape[:2]))) + 1
    for line in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):
        edge = out[line].reshape(1, -1, *out.shape[2:])
        out[line] = cv2.blur(edge, (size, 1), borderType=cv2.BORDER_REPLICATE).reshape(out[line].shape)
    return out


def inside(flow: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """float32 (H, W) in [0, 1]: 1 where ``p + flow`` lands inside the frame, falling to 0 ``margin`` pixels outside."""
    height, width = flow.shape[:2]
    xs, ys = pixel_grid(height, width)
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    outside = np.maximum.reduce([-x, x - (width - 1), -y, y - (height - 1), np.zeros_like(x)])
    return np.clip(1.0 - outside / np.float32(margin), 0.0, 1.0).astype(np.float32)
