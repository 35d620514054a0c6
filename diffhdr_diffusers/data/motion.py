"""Moving things: foreground objects that move and deform between frames, and hand-held camera motion.

Every scene draws a *motion strength* ``s`` in [0, 1] that scales all motion ranges, so a data set
spans easy brackets (``s = 0``: the old ranges, objects moving 2-8 % of the width per frame step and
a camera jitter of +-1 degree, +-1 % zoom and +-1.5 % shift) to hard hand-held ones (``s = 1``:
objects crossing up to ~30 % of the width per step while turning, zooming and deforming, and a
camera that rotates by up to 5 degrees, shifts by up to 6 % and tilts in perspective).

An object has a pose per frame: the reference pose plus ``step`` times a velocity, spin and zoom
rate plus ``step**2 / 2`` times an acceleration, where ``step`` is the frame's offset from the
reference. On top of the rigid pose it deforms: a smooth random displacement field (elastic) and,
for some objects, an articulated part that swings about a joint. The camera motion of a frame is a
homography: a similarity about the image centre followed by a perspective tilt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .procedural import TEXTURES, random_colour, random_polygon_mask, texture

OLD_CAMERA = {"angle": 1.0, "zoom": 0.01, "shift": 0.015}  # the s = 0 camera ranges (fractions of the width)


@dataclass
class Joint:
    """An articulated part: the side of the object beyond ``pivot`` along ``axis`` swings about ``pivot``."""

    pivot: np.ndarray  # canvas pixels (x, y)
    axis: np.ndarray  # unit vector pointing into the part
    softness: float  # pixels: width of the bend zone
    swing: float  # degrees per frame step

    def to_dict(self) -> dict:
        return {"pivot": self.pivot.tolist(), "axis": self.axis.tolist(), "swing": self.swing}


@dataclass
class ForegroundObject:
    """A textured blob on a square canvas, with a rigid pose and a deformation per frame step."""

    texture: np.ndarray  # (S, S, 3) radiance
    mask: np.ndarray  # (S, S) coverage
    radius: float  # pixels
    center: np.ndarray  # position in the reference frame (x, y)
    angle: float  # degrees, reference frame
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixels per step (x, y)
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(2))  # pixels per step squared
    spin: float = 0.0  # degrees per step
    zoom: float = 0.0  # relative scale change per step
    elastic: np.ndarray | None = None  # (S, S, 2) backward displacement per step, canvas pixels
    joint: Joint | None = None

    def offset(self, step: float) -> np.ndarray:
        """The centre's displacement from the reference frame, in pixels."""
        return step * self.velocity + 0.5 * step * step * self.acceleration

    def affine(self, step: float) -> np.ndarray:
        """The 2x3 matrix placing the (deformed) canvas in a frame ``step`` frames from the reference."""
        half = (self.mask.shape[1] - 1) / 2, (self.mask.shape[0] - 1) / 2
        scale = max(1.0 + step * self.zoom, 0.2)
        matrix = cv2.getRotationMatrix2D(half, self.angle + step * self.spin, scale)
        matrix[:, 2] += self.center + self.offset(step) - np.asarray(half)
        return matrix

    def deformation(self, step: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Backward canvas maps ``(map_x, map_y)`` of the non-rigid motion at ``step`` (``None``: none)."""
        if step == 0 or (self.elastic is None and self.joint is None):
            return None
        side = self.mask.shape[0]
        y, x = np.mgrid[0:side, 0:side].astype(np.float32)
        map_x, map_y = x.copy(), y.copy()
        if self.elastic is not None:
            map_x += np.float32(step) * self.elastic[..., 0]
            map_y += np.float32(step) * self.elastic[..., 1]
        if self.joint is not None:
            joint = self.joint
            rel_x, rel_y = x - np.float32(joint.pivot[0]), y - np.float32(joint.pivot[1])
            along = (rel_x * np.float32(joint.axis[0]) + rel_y * np.float32(joint.axis[1])) / np.float32(joint.softness)
            weight = 1.0 / (1.0 + np.exp(-np.clip(along, -30, 30)))
            theta = -math.radians(step * joint.swing)  # backward map: sample the part rotated back
            cos, sin = np.float32(math.cos(theta)), np.float32(math.sin(theta))
            map_x += weight * (cos * rel_x - sin * rel_y - rel_x)
            map_y += weight * (sin * rel_x + cos * rel_y - rel_y)
        return map_x, map_y

    def canvas(self, step: float) -> np.ndarray:
        """The (S, S, 4) texture-and-coverage canvas, deformed for ``step``."""
        stacked = np.dstack([self.texture, self.mask])
        maps = self.deformation(step)
        if maps is None:
            return stacked
        return cv2.remap(stacked, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def draw_objects(rng: np.random.Generator, size: tuple[int, int], count: int) -> list[ForegroundObject]:
    """Foreground objects, largest first (drawn behind): textured blobs from deep shadow to emitter brightness.

    About a quarter are large (a person or a car close to the camera, up to 45 % of the shorter side in
    radius), 15 % are small emitters. The canvas leaves room for the deformations of :func:`draw_motion`.
    """
    height, width = size
    objects = []
    for _ in range(count):
        kind = rng.random()
        emitter = kind < 0.15  # a lamp or a bright screen: small, so the short frame barely saturates
        if emitter:
            radius = rng.uniform(0.03, 0.07) * min(size)
        elif kind < 0.4:
            radius = rng.uniform(0.2, 0.45) * min(size)
        else:
            radius = rng.uniform(0.06, 0.2) * min(size)
        margin = 0.7 * radius + 4  # room for the joint's swing and the elastic field
        side = int(2 * (radius + margin)) + 2
        level = 2.0 ** rng.uniform(0.0, 2.0) if emitter else 2.0 ** rng.uniform(-9.0, -0.5)
        pattern = texture(rng, (side, side), TEXTURES[int(rng.integers(len(TEXTURES)))])
        albedo = random_colour(rng, 0.8)[None, None, :] * (0.2 + 0.8 * pattern)[..., None]
        mask = random_polygon_mask(rng, (side, side), ((side - 1) / 2, (side - 1) / 2), radius)
        objects.append(
            ForegroundObject(
                texture=(albedo * np.float32(level)).astype(np.float32),
                mask=mask,
                radius=float(radius),
                center=rng.uniform((0.1 * width, 0.1 * height), (0.9 * width, 0.9 * height)),
                angle=float(rng.uniform(0, 360)),
            )
        )
    return sorted(objects, key=lambda item: -item.radius)


def _elastic_field(rng: np.random.Generator, side: int, amplitude: float) -> np.ndarray:
    """A smooth random (side, side, 2) displacement field, at most ``amplitude`` pixels per component."""
    cells = int(rng.integers(3, 6))
    grid = rng.uniform(-1.0, 1.0, (cells, cells, 2)).astype(np.float32)
    smooth = cv2.resize(grid, (side, side), interpolation=cv2.INTER_CUBIC)
    return np.clip(smooth, -1.0, 1.0) * np.float32(amplitude)


def _draw_object_motion(rng: np.random.Generator, item: ForegroundObject, width: int, strength: float) -> None:
    boost = 1.0 + 2.5 * strength
    direction = rng.uniform(0, 2 * math.pi)
    speed = rng.uniform(0.02, 0.08) * width * boost
    item.velocity = speed * np.array([math.cos(direction), math.sin(direction)])
    turn = rng.uniform(0, 2 * math.pi)
    item.acceleration = speed * strength * rng.uniform(0, 0.5) * np.array([math.cos(turn), math.sin(turn)])
    item.spin = float(rng.uniform(-12, 12) * (1.0 + 2.0 * strength))
    item.zoom = float(rng.uniform(-0.15, 0.15) * strength)
    side = item.mask.shape[0]
    item.elastic = _elastic_field(rng, side, item.radius * (0.03 + 0.12 * strength))
    if rng.random() < 0.3 + 0.4 * strength:
        pivot_angle, axis_angle = rng.uniform(0, 2 * math.pi, 2)
        pivot = (side - 1) / 2 + 0.3 * item.radius * rng.random() * np.array([math.cos(pivot_angle), math.sin(pivot_angle)])
        item.joint = Joint(
            pivot=pivot,
            axis=np.array([math.cos(axis_angle), math.sin(axis_angle)]),
            softness=max(0.1 * item.radius, 1.0),
            swing=float(rng.uniform(-1, 1) * (8 + 32 * strength)),
        )


def camera_motion(rng: np.random.Generator, size: tuple[int, int], strength: float) -> np.ndarray:
    """A 3x3 homography (reference to frame pixels): similarity about the centre, then a perspective tilt."""
    height, width = size
    centre = (width / 2, height / 2)
    boost = 1.0 + 3.0 * strength
    angle = rng.uniform(-1, 1) * OLD_CAMERA["angle"] * (1.0 + 4.0 * strength)
    zoom = 1.0 + rng.uniform(-1, 1) * OLD_CAMERA["zoom"] * boost
    similarity = np.eye(3)
    similarity[:2] = cv2.getRotationMatrix2D(centre, angle, zoom)
    similarity[:2, 2] += rng.uniform(-1, 1, 2) * OLD_CAMERA["shift"] * width * boost
    tilt = rng.uniform(-1, 1, 2) * 0.06 * strength  # relative depth change at the image edges
    perspective = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [tilt[0] / centre[0], tilt[1] / centre[1], 1]])
    perspective = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]]) @ perspective
    return perspective @ similarity


def displacement(homography: np.ndarray, size: tuple[int, int]) -> tuple[float, float]:
    """Mean and maximum pixel displacement of ``homography`` over a 9x9 grid of the image."""
    height, width = size
    y, x = np.mgrid[0 : height - 1 : 9j, 0 : width - 1 : 9j]
    points = np.stack([x.ravel(), y.ravel()], axis=1)[None].astype(np.float64)
    moved = cv2.perspectiveTransform(points, homography)[0]
    distance = np.hypot(*(moved - points[0]).T)
    return float(distance.mean()), float(distance.max())


def draw_motion(
    rng: np.random.Generator, size: tuple[int, int], objects: list[ForegroundObject], num_frames: int, strength: float
) -> list[np.ndarray]:
    """Give each object its motion and deformation; return one camera homography per frame."""
    for item in objects:
        _draw_object_motion(rng, item, size[1], strength)
    return [camera_motion(rng, size, strength) for _ in range(num_frames)]


def _composite(radiance: np.ndarray, canvas: np.ndarray, matrix: np.ndarray) -> None:
    """Paint ``canvas`` (texture + coverage) placed by ``matrix`` into ``radiance``, in place, in its bounding box."""
    height, width = radiance.shape[:2]
    side = canvas.shape[0]
    corners = matrix @ np.array([[0, side, 0, side], [0, 0, side, side], [1, 1, 1, 1]], np.float64)
    left, top = max(int(math.floor(corners[0].min())) - 1, 0), max(int(math.floor(corners[1].min())) - 1, 0)
    right, bottom = min(int(math.ceil(corners[0].max())) + 2, width), min(int(math.ceil(corners[1].max())) + 2, height)
    if right <= left or bottom <= top:
        return
    shifted = matrix.copy()
    shifted[:, 2] -= (left, top)
    patch = cv2.warpAffine(canvas, shifted, (right - left, bottom - top), flags=cv2.INTER_LINEAR)
    coverage = patch[..., 3:]
    region = radiance[top:bottom, left:right]
    region *= 1.0 - coverage
    region += patch[..., :3] * coverage


def render_frame(
    background: np.ndarray, margin: int, objects: list[ForegroundObject], step: float, camera: np.ndarray | None
) -> np.ndarray:
    """The radiance seen by one frame: the background moved by ``camera`` (a 3x3 homography of frame pixels, or
    ``None``) with the objects at their pose and deformation for ``step``.

    ``background`` extends ``margin`` pixels beyond every edge of the frame, so that the moved frame shows real
    content at its borders (mirrored only where the motion exceeds the margin).
    """
    height, width = background.shape[0] - 2 * margin, background.shape[1] - 2 * margin
    if camera is None:
        radiance = background[margin : margin + height, margin : margin + width].astype(np.float32, copy=True)
    else:
        # Frame pixel p sees padded-background pixel camera^-1(p) + margin.
        unpad = np.array([[1, 0, -margin], [0, 1, -margin], [0, 0, 1]], np.float64)
        radiance = cv2.warpPerspective(
            background, camera @ unpad, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
    for item in objects:
        _composite(radiance, item.canvas(step), item.affine(step))
    return radiance


BLUR_SAMPLES_PER_STEP = 24  # sub-frames per frame step of blur (at least 4, at most 16 per frame)


def render_exposure(
    background: np.ndarray,
    margin: int,
    objects: list[ForegroundObject],
    step: float,
    camera: np.ndarray | None,
    blur_steps: float = 0.0,
    shake: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """The radiance a frame integrates while its shutter is open: :func:`render_frame` averaged over sub-frames.

    The exposure is centred on ``step`` and lasts ``blur_steps`` frame steps, so moving objects streak along
    their motion; ``shake`` is the camera's drift during the exposure (pixels, x and y, start to end), a
    straight streak of the whole picture. ``blur_steps = 0`` is :func:`render_frame` exactly.
    """
    if blur_steps <= 0:
        return render_frame(background, margin, objects, step, camera)
    samples = int(min(max(math.ceil(blur_steps * BLUR_SAMPLES_PER_STEP), 4), 16))
    base = np.eye(3) if camera is None else np.asarray(camera, np.float64)
    total = None
    for fraction in np.linspace(-0.5, 0.5, samples):
        drift = np.array([[1, 0, fraction * shake[0]], [0, 1, fraction * shake[1]], [0, 0, 1]], np.float64)
        radiance = render_frame(background, margin, objects, step + fraction * blur_steps, drift @ base)
        total = radiance if total is None else total + radiance
    return total / np.float32(samples)
