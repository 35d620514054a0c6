"""Moving things: foreground objects that cross the scene between frames, and camera jitter.

Objects are textured blobs (from deep shadow to lamp brightness) with a pose per frame: the
reference frame's position and angle plus ``step`` times a velocity and a spin, where ``step`` is
the frame's offset from the reference. The camera jitter is a small similarity transform per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .procedural import TEXTURES, random_colour, random_polygon_mask, texture


@dataclass
class ForegroundObject:
    """A textured blob with a pose per frame (see :meth:`affine`)."""

    texture: np.ndarray  # (S, S, 3) radiance
    mask: np.ndarray  # (S, S) coverage
    center: np.ndarray  # position in the reference frame (x, y)
    angle: float  # degrees, reference frame
    velocity: np.ndarray  # pixels per frame step (x, y)
    spin: float  # degrees per frame step

    def affine(self, step: float) -> np.ndarray:
        """The 2x3 matrix placing the object's canvas in a frame ``step`` frames from the reference."""
        half = (self.mask.shape[1] - 1) / 2, (self.mask.shape[0] - 1) / 2
        matrix = cv2.getRotationMatrix2D(half, self.angle + step * self.spin, 1.0)
        matrix[:, 2] += self.center + step * self.velocity - np.asarray(half)
        return matrix


def draw_objects(rng: np.random.Generator, size: tuple[int, int], count: int) -> list[ForegroundObject]:
    """Foreground objects: textured blobs from deep shadow to emitter brightness."""
    height, width = size
    objects = []
    for _ in range(count):
        emitter = rng.random() < 0.15  # a lamp or a bright screen: small, so the short frame barely saturates
        radius = rng.uniform(0.03, 0.07) * min(size) if emitter else rng.uniform(0.08, 0.2) * min(size)
        side = int(2 * radius) + 6
        level = 2.0 ** rng.uniform(0.0, 2.0) if emitter else 2.0 ** rng.uniform(-9.0, -0.5)
        pattern = texture(rng, (side, side), TEXTURES[int(rng.integers(len(TEXTURES)))])
        albedo = random_colour(rng, 0.8)[None, None, :] * (0.2 + 0.8 * pattern)[..., None]
        mask = random_polygon_mask(rng, (side, side), ((side - 1) / 2, (side - 1) / 2), radius)
        objects.append(
            ForegroundObject(
                texture=(albedo * np.float32(level)).astype(np.float32),
                mask=mask,
                center=rng.uniform((0.1 * width, 0.1 * height), (0.9 * width, 0.9 * height)),
                angle=float(rng.uniform(0, 360)),
                velocity=np.zeros(2),
                spin=0.0,
            )
        )
    return objects


def draw_motion(
    rng: np.random.Generator, size: tuple[int, int], objects: list[ForegroundObject], num_frames: int
) -> list[np.ndarray]:
    """Give each object a velocity and spin; return one camera-jitter matrix per frame (identity for none)."""
    height, width = size
    for item in objects:
        direction = rng.uniform(0, 2 * math.pi)
        speed = rng.uniform(0.02, 0.08) * width
        item.velocity = speed * np.array([math.cos(direction), math.sin(direction)])
        item.spin = float(rng.uniform(-12, 12))
    jitters = []
    for _ in range(num_frames):
        matrix = cv2.getRotationMatrix2D(
            (width / 2, height / 2), rng.uniform(-1.0, 1.0), 1.0 + rng.uniform(-0.01, 0.01)
        )
        matrix[:, 2] += rng.uniform(-0.015, 0.015, 2) * width
        jitters.append(matrix)
    return jitters


def render_frame(
    background: np.ndarray, objects: list[ForegroundObject], step: float, jitter: np.ndarray | None
) -> np.ndarray:
    """The radiance seen by one frame: the (jittered) background with the objects at their pose."""
    height, width = background.shape[:2]
    if jitter is None:
        radiance = background.copy()
    else:
        radiance = cv2.warpAffine(
            background, jitter, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
    for item in objects:
        matrix = item.affine(step)
        coverage = cv2.warpAffine(item.mask, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        colour = cv2.warpAffine(item.texture, matrix, (width, height), flags=cv2.INTER_LINEAR)
        radiance = radiance * (1.0 - coverage) + colour * coverage
    return radiance.astype(np.float32)
