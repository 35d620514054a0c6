"""Procedural radiance: textured surfaces under uneven light, deep shadows and bright emitters.

Everything is drawn from a ``numpy.random.Generator`` so that a seed fixes the picture. Radiance is
linear RGB; :func:`procedural_radiance` returns it unscaled (the caller normalises it to the camera).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

TEXTURES = ("noise", "stripes", "checker", "smooth")


def value_noise(rng: np.random.Generator, size: tuple[int, int], cell: float, octaves: int = 4) -> np.ndarray:
    """Fractal value noise in [0, 1], float32 (H, W): random grids upsampled with cubic interpolation."""
    height, width = size
    total = np.zeros((height, width), np.float32)
    weight = 0.0
    for octave in range(octaves):
        step = max(cell / 2**octave, 2.0)
        grid = rng.random((int(height / step) + 3, int(width / step) + 3), dtype=np.float32)
        upsampled = cv2.resize(
            grid, (int(grid.shape[1] * step), int(grid.shape[0] * step)), interpolation=cv2.INTER_CUBIC
        )
        amplitude = 0.5**octave
        total += amplitude * upsampled[:height, :width]
        weight += amplitude
    total /= weight
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)


def texture(rng: np.random.Generator, size: tuple[int, int], kind: str) -> np.ndarray:
    """A (H, W) float32 pattern in [0, 1] of the given ``kind`` (one of :data:`TEXTURES`)."""
    height, width = size
    scale = min(height, width)
    if kind == "smooth":
        return value_noise(rng, size, cell=scale / 2, octaves=2)
    if kind == "noise":
        return value_noise(rng, size, cell=scale / rng.uniform(3, 12), octaves=4)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    grain = value_noise(rng, size, cell=scale / 16, octaves=3)
    if kind == "stripes":
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4, max(scale / 6, 5))
        phase = (x * math.cos(angle) + y * math.sin(angle)) / period
        pattern = 0.5 + 0.5 * np.tanh(3 * np.sin(2 * math.pi * phase))
    elif kind == "checker":
        period = rng.uniform(6, max(scale / 4, 7))
        pattern = ((np.floor(x / period) + np.floor(y / period)) % 2).astype(np.float32)
    else:
        raise ValueError(f"texture kind {kind!r}: use one of {TEXTURES}")
    return (0.8 * pattern + 0.2 * grain).astype(np.float32)


def random_colour(rng: np.random.Generator, saturation: float = 0.5) -> np.ndarray:
    """An RGB reflectance colour with the largest channel 1."""
    hsv = np.array([[[rng.uniform(0, 360), rng.uniform(0, saturation), 1.0]]], np.float32)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return np.clip(rgb, 0.05, 1.0).astype(np.float32)


def random_polygon_mask(
    rng: np.random.Generator, size: tuple[int, int], center: tuple[float, float], radius: float
) -> np.ndarray:
    """An anti-aliased (H, W) float32 mask of a random star-convex polygon or an ellipse."""
    height, width = size
    canvas = np.zeros((height * 4, width * 4), np.uint8)  # draw at 4x, then area-downsample: soft edges
    cx, cy = center[0] * 4, center[1] * 4
    if rng.random() < 0.4:
        axes = (max(int(radius * 4 * rng.uniform(0.6, 1.0)), 1), max(int(radius * 4 * rng.uniform(0.4, 1.0)), 1))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 255, -1)
    else:
        count = int(rng.integers(5, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, count))
        radii = radius * 4 * rng.uniform(0.55, 1.0, count)
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], 255)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of large ``sigma``, computed at a quarter of the resolution (the result is smooth)."""
    height, width = image.shape[:2]
    if sigma < 8 or min(height, width) < 32:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    small = cv2.resize(image, (width // 4, height // 4), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _voronoi_labels(rng: np.random.Generator, size: tuple[int, int], regions: int) -> np.ndarray:
    height, width = size
    seeds = rng.uniform((0, 0), (height, width), (regions, 2)).astype(np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    stretch = rng.uniform(0.3, 3.0, regions).astype(np.float32)  # anisotropy: walls, floors, bands
    distance = (y[None] - seeds[:, :1, None]) ** 2 * stretch[:, None, None] + (x[None] - seeds[:, 1:, None]) ** 2
    return np.argmin(distance, axis=0)


def procedural_radiance(
    rng: np.random.Generator, size: tuple[int, int], min_stops: float = 12.0
) -> tuple[np.ndarray, dict]:
    """Draw a linear radiance map (H, W, 3) of at least ``min_stops`` between emitters and the darkest shadow.

    Returns the map (the 99.9th percentile of the surfaces' brightest channel at 1, emitters 1 to 5
    stops above) and a dict describing it.
    """
    height, width = size
    regions = int(rng.integers(3, 8))
    labels = _voronoi_labels(rng, size, regions)
    reflectance = np.zeros((height, width, 3), np.float32)
    log_light = np.zeros((height, width), np.float32)
    # One fully lit region, one deep shadow, the rest in between.
    # The shadow goes to a region of at least 3% of the picture, so that it is not a stray sliver.
    levels = rng.uniform(-6.0, 0.0, regions)
    areas = np.bincount(labels.ravel(), minlength=regions) / labels.size
    order = rng.permutation(regions)
    shadow = next((region for region in order if areas[region] >= 0.03), int(np.argmax(areas)))
    lit = next(region for region in order if region != shadow)
    levels[lit] = 0.0
    shadow_stops = rng.uniform(min_stops, min_stops + 3.0)
    levels[shadow] = -shadow_stops
    kinds = []
    for region in range(regions):
        kind = TEXTURES[int(rng.integers(len(TEXTURES)))]
        kinds.append(kind)
        rows, cols = np.nonzero(np.any(labels == region, axis=1))[0], np.nonzero(np.any(labels == region, axis=0))[0]
        if rows.size == 0:
            continue
        box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # texture only the region's bounding box
        inside = labels[box] == region
        pattern = texture(rng, inside.shape, kind)
        low, high = rng.uniform(0.03, 0.3), rng.uniform(0.55, 0.95)
        albedo = random_colour(rng)[None, None, :] * (low + (high - low) * pattern)[..., None]
        reflectance[box][inside] = albedo[inside]
        log_light[box][inside] = levels[region]
    # Soft shadow edges and a smooth light gradient of about +-1 stop.
    log_light = cv2.GaussianBlur(log_light, (0, 0), rng.uniform(0.8, 3.0))
    log_light += 2.0 * (value_noise(rng, size, cell=min(size) / 1.5, octaves=2) - 0.5)
    radiance = reflectance * np.exp2(log_light)[..., None]
    radiance /= max(float(np.percentile(radiance.max(axis=2), 99.9)), 1e-12)  # lit surfaces reach about 1
    # Emitters: lamps, windows or sun glints, 1 to 5 stops above the lit surfaces, with a glow.
    emitters = []
    for _ in range(int(rng.integers(1, 4))):
        center = (rng.uniform(0, width), rng.uniform(0, height))
        radius = rng.uniform(0.02, 0.07) * min(size)
        mask = random_polygon_mask(rng, size, center, radius)
        stops = rng.uniform(1.0, 5.0)
        tint = 1.0 - 0.25 * random_colour(rng, saturation=0.6)
        emission = np.float32(2.0**stops) * tint
        glow = _wide_blur(mask, radius * rng.uniform(1.5, 4.0)) * np.float32(rng.uniform(0.02, 0.15))
        radiance = radiance * (1 - mask[..., None]) + (mask + glow)[..., None] * emission
        emitters.append({"center": [float(c) for c in center], "radius": float(radius), "stops": float(stops)})
    params = {"regions": regions, "textures": kinds, "shadow_stops": float(shadow_stops), "emitters": emitters}
    return radiance.astype(np.float32), params
