"""Synthetic exposure brackets with ground truth, written in the Kalantari scene layout.

A scene is a linear radiance map (a random crop of a real HDR image, or a procedural one), one to
five foreground objects that move and deform between frames, a hand-held camera motion (a homography
per frame), both scaled by a per-scene motion strength (:mod:`.motion`), and a camera that
exposes the frames at an EV set such as (0, 2, 4) or (-4, -2, 0, 2, 4) (2 to 9 frames), adds
Poisson-Gaussian noise, clips, applies a response and quantises. The default camera (``"kalantari"``)
is gamma 2.2 at 16 bits; a :class:`~.camera.CameraMix` such as ``"realistic"`` draws a camera per scene
(tone curve, TIFF/PNG/JPEG/DNG, exposure and white-balance errors, motion blur in long frames, see
:mod:`.camera`). The ground truth is the reference (middle, ``N // 2``) frame's radiance, objects
included, scaled like Kalantari's (about [0, 1], the shortest exposure barely saturated at its
model-unit EV 0), in the nominal EVs' literal units: ``inverse_response(ldr) / 2 ** ev`` recovers it on
the reference (:mod:`diffhdr_diffusers.hdr_domain`), so a -2/0/+2 scene's radiance is 4x a 0/2/4 scene's.

Each scene draws from ``SeedSequence(seed, spawn_key=(index,))``, so a scene depends only on the
seed and its index: not on the number of scenes, the worker count or the other scenes.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, OutputError
from ..hdr_domain import from_model_units
from ..io import read_radiance, write_radiance
from ..io.atomic import atomic_folder
from ..io.exposures import EXPOSURE_TXT
from ..io.formats import GROUND_TRUTH_NAME, KALANTARI_LDR_NAMES, RADIANCE_SUFFIXES
from .camera import (
    DNG_BLACK,
    DNG_WHITE,
    Camera,
    CameraMix,
    SensorNoise,
    bayer_mosaic,
    codes_to_float,
    draw_camera,
    encode,
    resolve_camera_mix,
    saturated_fraction,
    sensor_signal,
    write_frame,
)
from .motion import displacement, draw_motion, draw_objects, render_exposure
from .procedural import procedural_radiance
from .splits import SPLITS, is_heldout, split_radiance_maps

MIN_FRAMES, MAX_FRAMES = 2, 9
DEFAULT_EV_SETS: tuple[tuple[float, ...], ...] = ((0.0, 2.0, 4.0), (0.0, 3.0, 6.0), (-2.0, 0.0, 2.0))
LDR_NAMES = KALANTARI_LDR_NAMES  # natural order is short to long
SATURATION_PERCENTILE = 99.9  # this percentile of the brightest channel lands just below 1
MARGIN_FRACTION = 0.15  # background margin beyond each edge, as a fraction of the longer side


@dataclass
class SyntheticScene:
    """One synthesised bracket.

    Attributes:
        codes: uint16 (H, W, 3) frames, short to long (16-bit camera codes).
        exposures: EV of each frame, as written to ``exposure.txt``.
        radiance: float32 (H, W, 3) ground truth, the reference frame's linear radiance in literal EV units.
        params: everything drawn for the scene (written as ``scene.json``).
    """

    codes: list[np.ndarray]
    exposures: list[float]
    radiance: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def images(self) -> list[np.ndarray]:
        """The frames as float32 in [0, 1], as ``read_ldr`` returns them (before any JPEG compression); a
        DNG's as its linear (H, W) mosaic, black at 0 and white at 1."""
        if self.params.get("camera", {}).get("format") == "dng":
            return [(frame.astype(np.float32) - DNG_BLACK) / np.float32(DNG_WHITE - DNG_BLACK) for frame in self.codes]
        return [codes_to_float(frame) for frame in self.codes]

    @property
    def file_names(self) -> list[str]:
        """The frames' file names, short to long (``input_1.tif`` ... for the Kalantari camera)."""
        return [frame.get("file", name) for frame, name in zip(self.params["frames"], LDR_NAMES + ("",) * 9)]


def find_radiance_maps(radiance_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """All ``.hdr`` and ``.exr`` files under ``radiance_dir`` (one folder or several, recursively), sorted per folder."""
    roots = [radiance_dir] if isinstance(radiance_dir, (str, os.PathLike)) else list(radiance_dir)
    maps: list[Path] = []
    for root in map(Path, roots):
        if not root.is_dir():
            raise InputError(f"--radiance-dir {root}: not a folder; give a folder of .hdr or .exr radiance maps.")
        found = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix.lower() in RADIANCE_SUFFIXES)
        if not found:
            raise InputError(f"--radiance-dir {root}: holds no .hdr or .exr files; add radiance maps or leave it out.")
        maps += [path for path in found if path not in maps]
    return maps


@functools.lru_cache(maxsize=64)  # all 49 shared maps: ~320 MiB per process
def load_radiance_map(path: str) -> np.ndarray:
    """Read a radiance map once per process (read-only array)."""
    radiance = read_radiance(path)
    radiance.flags.writeable = False
    return radiance


def margin_for(size: tuple[int, int]) -> int:
    """Pixels of background kept beyond each image edge, so that camera motion reveals real content."""
    return int(math.ceil(MARGIN_FRACTION * max(size)))


def _scale_to_camera(rng: np.random.Generator, radiance: np.ndarray, margin: int) -> tuple[np.ndarray, float]:
    """Scale so the brightest channel's 99.9th percentile (inside the frame) lands at 0.6 to 1: the short frame
    barely saturates."""
    inside = radiance[margin : radiance.shape[0] - margin, margin : radiance.shape[1] - margin]
    level = float(np.percentile(inside.max(axis=2), SATURATION_PERCENTILE))
    scale = rng.uniform(0.6, 1.0) / max(level, 1e-12)
    return (radiance * np.float32(scale)).astype(np.float32), float(scale)


def _crop_real_map(
    rng: np.random.Generator, radiance: np.ndarray, size: tuple[int, int], margin: int = 0
) -> tuple[np.ndarray, dict]:
    """A random crop of ``radiance`` with the target aspect ratio, resized to ``size`` plus ``margin`` pixels on
    every side, maybe mirrored. The box describes the crop of the frame itself (without the margin)."""
    height, width = size
    map_height, map_width = radiance.shape[:2]
    largest = min(map_height / (height + 2 * margin), map_width / (width + 2 * margin))
    zoom = largest * rng.uniform(0.35, 1.0)
    outer_height, outer_width = max(int((height + 2 * margin) * zoom), 1), max(int((width + 2 * margin) * zoom), 1)
    top = int(rng.integers(0, map_height - outer_height + 1))
    left = int(rng.integers(0, map_width - outer_width + 1))
    crop = radiance[top : top + outer_height, left : left + outer_width]
    interpolation = cv2.INTER_AREA if zoom > 1 else cv2.INTER_LINEAR
    crop = cv2.resize(np.ascontiguousarray(crop), (width + 2 * margin, height + 2 * margin), interpolation=interpolation)
    mirrored = bool(rng.random() < 0.5)
    if mirrored:
        crop = crop[:, ::-1]
    inset = int(round(margin * zoom))
    box = {
        "top": top + inset,
        "left": left + inset,
        "height": outer_height - 2 * inset,
        "width": outer_width - 2 * inset,
        "mirrored": mirrored,
    }
    return np.maximum(np.ascontiguousarray(crop), 0.0).astype(np.float32), box


def _background(
    rng: np.random.Generator,
    size: tuple[int, int],
    radiance_maps: Sequence[Path],
    procedural_fraction: float,
    margin: int = 0,
) -> tuple[np.ndarray, dict]:
    """Draw the scene's background radiance (``size`` plus ``margin`` on every side), scaled to the camera,
    and its description. Procedural backgrounds are drawn at ``size`` and mirrored into the margin."""
    use_real = bool(radiance_maps) and rng.random() >= procedural_fraction
    if use_real:
        path = radiance_maps[int(rng.integers(len(radiance_maps)))]
        for _ in range(5):  # a crop of pure black sky is useless; try again
            radiance, box = _crop_real_map(rng, load_radiance_map(str(path)), size, margin)
            inside = radiance[margin : radiance.shape[0] - margin, margin : radiance.shape[1] - margin]
            if np.percentile(inside.max(axis=2), SATURATION_PERCENTILE) > 0:
                radiance, scale = _scale_to_camera(rng, radiance, margin)
                split = "heldout" if is_heldout(path) else "train"
                return radiance, {"kind": "real", "file": path.name, "split": split, "crop": box, "scale": scale}
    radiance, description = procedural_radiance(rng, size)  # surfaces reach 1, emitters saturate
    scale = float(rng.uniform(0.6, 1.0))
    radiance *= np.float32(scale)
    if margin:
        radiance = cv2.copyMakeBorder(radiance, margin, margin, margin, margin, cv2.BORDER_REFLECT_101)
    return radiance, {"kind": "procedural", **description, "scale": scale}


def _scene_choices(index: int, ev_sets, mix: CameraMix, balanced: bool) -> tuple[int | None, str | None, str | None]:
    """With ``balanced``, scene ``index`` takes the curve, EV set and format of a mixed-radix count, so that
    every combination appears equally often (``len(curves) * len(ev_sets) * len(formats)`` scenes hold
    each once); otherwise all three are drawn."""
    if not balanced:
        return None, None, None
    curves, sets, formats = len(mix.curves), len(ev_sets), len(mix.formats)
    return (index // curves) % sets, mix.curves[index % curves], mix.formats[(index // (curves * sets)) % formats]


def synthesize_scene(
    seed: int,
    index: int = 0,
    size: tuple[int, int] = (256, 384),
    ev_sets: Sequence[Sequence[float]] = DEFAULT_EV_SETS,
    radiance_maps: Sequence[str | os.PathLike] = (),
    procedural_fraction: float = 0.5,
    motion: bool = True,
    noise: bool = True,
    motion_strength: tuple[float, float] = (0.0, 1.0),
    camera_mix: CameraMix | str = "kalantari",
    balanced: bool = False,
) -> SyntheticScene:
    """Synthesise one bracket in memory.

    Args:
        seed, index: the scene draws from ``SeedSequence(seed, spawn_key=(index,))``.
        size: (height, width) in pixels.
        ev_sets: the EV sets to choose from (each ascending, short to long, 2 to 9 EVs); they are the
            nominal EVs (``exposure.txt``, EXIF).
        radiance_maps: real radiance files to crop backgrounds from; empty means procedural only.
        procedural_fraction: probability of a procedural background when maps are given.
        motion: ``False`` renders a static bracket (no camera motion, no object motion or deformation, no
            motion blur) that is otherwise identical: same content, same objects, same noise; its frames
            equal the moving bracket's reference frame content.
        noise: ``False`` disables sensor noise (clipping and quantisation remain).
        motion_strength: the range the scene's motion strength is drawn from, within [0, 1]
            (0: the old small jitter and slow objects; 1: hard hand-held motion).
        camera_mix: the cameras to draw from (:class:`~.camera.CameraMix` or a name of
            :data:`~.camera.CAMERA_MIXES`); the default ``"kalantari"`` is the exact gamma-2.2 16-bit camera.
        balanced: take the curve, EV set and format from ``index`` (see :func:`_scene_choices`).
    """
    height, width = size
    mix = resolve_camera_mix(camera_mix)
    seeds = np.random.SeedSequence(seed, spawn_key=(index,)).spawn(5)  # the first four as before the camera mix
    content_seed, object_seed, motion_seed, noise_seed, camera_seed = seeds
    content_rng = np.random.default_rng(content_seed)
    set_index = int(content_rng.integers(len(ev_sets)))
    chosen_set, chosen_curve, chosen_format = _scene_choices(index, ev_sets, mix, balanced)
    exposures = [float(ev) for ev in ev_sets[set_index if chosen_set is None else chosen_set]]
    margin = margin_for(size)
    maps = [Path(path) for path in radiance_maps]
    background, source = _background(content_rng, size, maps, procedural_fraction, margin)

    object_rng = np.random.default_rng(object_seed)
    objects = draw_objects(object_rng, size, int(object_rng.integers(1, 6)))
    motion_rng = np.random.default_rng(motion_seed)
    strength = float(motion_rng.uniform(*motion_strength))
    cameras = draw_motion(motion_rng, size, objects, len(exposures), strength)
    sensor = SensorNoise.sample(np.random.default_rng(noise_seed))
    frame_noise = [np.random.default_rng(child) for child in noise_seed.spawn(len(exposures))]  # one stream per frame

    reference = len(exposures) // 2
    camera_rng = np.random.default_rng(camera_seed)
    camera = draw_camera(camera_rng, mix, len(exposures), reference, chosen_curve, chosen_format)
    true_exposures = camera.true_exposures(exposures)
    blur_steps = camera.blur_steps(exposures, reference) if motion else [0.0] * len(exposures)
    times = camera.exposure_times(exposures, reference)
    shortest = min(exposures)
    curve = None if camera.curve == "gamma2.2" else camera.curve  # the gamma camera's exact old arithmetic
    codes, frames = [], []
    for frame, (ev, true_ev) in enumerate(zip(exposures, true_exposures)):
        moving = motion and frame != reference
        step = frame - reference if motion else 0
        streak = camera.shake_px * blur_steps[frame] / max(camera.motion_blur, 1e-12)
        shake = (streak * math.cos(camera.shake_angle), streak * math.sin(camera.shake_angle))
        radiance = render_exposure(background, margin, objects, step, cameras[frame] if moving else None,
                                   blur_steps[frame], shake)
        if frame == reference:
            ground_truth = np.clip(radiance, 0.0, 1.0)
        gains = np.multiply(camera.white_balance[frame], camera.channel_sensitivity)
        signal = sensor_signal(radiance, true_ev - shortest, frame_noise[frame], sensor if noise else None,
                               None if np.all(gains == 1.0) else gains)
        codes.append(bayer_mosaic(signal) if camera.file_format == "dng" else encode(signal, curve, camera.bits))
        frames.append(
            {
                "ev": ev,
                "true_ev": true_ev,
                "file": f"input_{frame + 1}{camera.suffix}",
                "exposure_time_s": times[frame],
                "white_balance": list(camera.white_balance[frame]),
                "blur_steps": blur_steps[frame],
                "saturated_fraction": saturated_fraction(codes[-1]),
                "camera": _camera_params(cameras[frame], size) if moving else None,
            }
        )
    luminance = ground_truth.mean(axis=2)
    darkest = float(np.percentile(luminance[luminance > 0], 0.1)) if np.any(luminance > 0) else 1.0
    params = {
        "generator": "diffhdr_diffusers.data.synth",
        "seed": int(seed),
        "index": int(index),
        "size": [height, width],
        "num_frames": len(exposures),
        "exposures": exposures,
        "true_exposures": true_exposures,
        "reference_index": reference,
        "gamma": 2.2 if camera.curve == "gamma2.2" else None,
        "camera": camera.to_dict(exposures, reference) | {"blur_steps": blur_steps},
        "camera_mix": mix.to_dict(),
        "source": source,
        "motion": bool(motion),
        "motion_strength": strength if motion else 0.0,
        "noise": sensor.to_dict() if noise else None,
        "frames": frames,
        "objects": [_object_params(item, motion, len(exposures) - 1 - reference, reference) for item in objects],
        "dynamic_range_stops": float(math.log2(max(float(luminance.max()), 1e-12) / max(darkest, 1e-12))),
    }
    radiance = from_model_units(ground_truth, exposures).astype(np.float32)
    return SyntheticScene(codes=codes, exposures=exposures, radiance=radiance, params=params)


def _camera_params(homography: np.ndarray, size: tuple[int, int]) -> dict:
    mean, largest = displacement(homography, size)
    return {"homography": homography.tolist(), "mean_displacement_px": mean, "max_displacement_px": largest}


def _object_params(item, motion: bool, after: int, before: int) -> dict:
    """An object's description; motion fields are zero for a static bracket."""
    described = {"radius": item.radius, "center": item.center.tolist(), "peak_radiance": float(item.texture.max())}
    if not motion:
        return described | {"velocity": [0.0, 0.0], "spin": 0.0, "max_displacement_px": 0.0}
    elastic = float(np.abs(item.elastic).max()) if item.elastic is not None else 0.0
    return described | {
        "velocity": item.velocity.tolist(),
        "acceleration": item.acceleration.tolist(),
        "spin": item.spin,
        "zoom": item.zoom,
        "elastic_px_per_step": elastic,
        "joint": item.joint.to_dict() if item.joint is not None else None,
        "max_displacement_px": float(max(np.hypot(*item.offset(step)) for step in (-before, after))),
    }


def write_scene(scene: SyntheticScene, folder: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write ``scene`` as a Kalantari scene folder, atomically (built in a temporary folder, then renamed).

    Files: ``input_1.tif`` .. ``input_N.tif`` (16-bit RGB, uncompressed, short to long; or ``.png`` 8-bit,
    ``.jpg`` 8-bit with EXIF, ``.dng`` linear Bayer mosaic, as the scene's camera writes), ``exposure.txt`` (the
    nominal EVs, one per line), ``HDRImg.hdr`` (linear radiance, RGBE) and ``scene.json`` (the parameters).
    """
    camera = _camera_from_params(scene.params)
    reference = scene.params["reference_index"]
    with atomic_folder(folder, overwrite) as staging:
        for frame, (name, codes) in enumerate(zip(scene.file_names, scene.codes)):
            time = scene.params["frames"][frame].get("exposure_time_s", camera.reference_time)
            bias = scene.exposures[frame] - scene.exposures[reference]
            write_frame(staging / name, codes, camera, time, bias, frame)
        (staging / EXPOSURE_TXT).write_text("".join(f"{ev:g}\n" for ev in scene.exposures))
        write_radiance(staging / GROUND_TRUTH_NAME, scene.radiance)
        (staging / "scene.json").write_text(json.dumps(scene.params, indent=1) + "\n")
    return Path(folder)


def _camera_from_params(params: dict) -> Camera:
    """The :class:`~.camera.Camera` fields a file writer needs, from ``scene.json`` (old scenes: 16-bit TIFF)."""
    record = params.get("camera") or {}
    return Camera(
        curve=record.get("curve", "gamma2.2"),
        file_format=record.get("format", "tif"),
        jpeg_quality=record.get("jpeg_quality"),
        f_number=record.get("f_number", 8.0),
        iso=record.get("iso", 100),
        channel_sensitivity=tuple(record.get("as_shot_neutral", (1.0, 1.0, 1.0))),
    )


def _make_scene(job: tuple) -> str:
    out_dir, index, kwargs, overwrite = job
    scene = synthesize_scene(index=index, **kwargs)
    return str(write_scene(scene, Path(out_dir) / f"{index:05d}", overwrite=overwrite))


def _check_arguments(
    num_scenes: int,
    size: tuple[int, int],
    ev_sets: Sequence[Sequence[float]],
    procedural_fraction: float,
    motion_strength: tuple[float, float],
    camera_mix: CameraMix,
) -> None:
    if num_scenes < 1:
        raise InputError(f"--scenes {num_scenes}: give at least 1 scene.")
    if len(size) != 2 or min(size) < 16:
        raise InputError(f"--size {size}: give HEIGHTxWIDTH, each at least 16 pixels (e.g. 256x384).")
    for ev_set in ev_sets:
        values = [float(ev) for ev in ev_set]
        increasing = all(later > earlier for earlier, later in zip(values, values[1:]))
        if not (MIN_FRAMES <= len(values) <= MAX_FRAMES and increasing):
            raise InputError(f"--ev-sets {ev_set}: each EV set needs {MIN_FRAMES} to {MAX_FRAMES} increasing values, "
                             "e.g. 0,2,4 or -4,-2,0,2,4.")
    if not 0.0 <= procedural_fraction <= 1.0:
        raise InputError(f"--procedural-fraction {procedural_fraction}: must lie in [0, 1].")
    if len(motion_strength) != 2 or not 0.0 <= motion_strength[0] <= motion_strength[1] <= 1.0:
        raise InputError(f"--motion-strength {motion_strength}: give LOW,HIGH with 0 <= LOW <= HIGH <= 1.")
    if "dng" in camera_mix.formats and (size[0] % 2 or size[1] % 2):
        raise InputError(f"--size {size[0]}x{size[1]}: DNG frames hold a 2x2 Bayer pattern; give even sides.")


def select_radiance_maps(radiance_dir, split: str) -> list[Path]:
    """The radiance maps under ``radiance_dir`` (one folder, several, or ``None``) in ``split``."""
    if split not in SPLITS:
        raise InputError(f"--split {split}: use one of {', '.join(SPLITS)}.")
    if radiance_dir is None or (not isinstance(radiance_dir, (str, os.PathLike)) and not list(radiance_dir)):
        if split != "all":
            raise InputError(f"--split {split}: needs --radiance-dir, the folders of radiance maps to split.")
        return []
    maps = split_radiance_maps(find_radiance_maps(radiance_dir), split)
    if not maps:
        raise InputError(f"--split {split}: none of the radiance maps under --radiance-dir is in that split.")
    return maps


def synthesize_scenes(
    out_dir: str | os.PathLike,
    num_scenes: int,
    size: tuple[int, int] = (256, 384),
    seed: int = 0,
    radiance_dir: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    ev_sets: Sequence[Sequence[float]] = DEFAULT_EV_SETS,
    procedural_fraction: float | None = None,
    motion: bool = True,
    noise: bool = True,
    num_workers: int = 1,
    overwrite: bool = False,
    split: str = "all",
    motion_strength: tuple[float, float] = (0.0, 1.0),
    camera_mix: CameraMix | str = "kalantari",
    balanced: bool = False,
) -> list[Path]:
    """Write ``num_scenes`` synthetic scenes to ``out_dir/00000``, ``out_dir/00001``, ...

    Args:
        out_dir: output folder (created if missing); ``load_kalantari(out_dir)`` reads it back.
        num_scenes: how many scenes.
        size: (height, width) of every scene.
        seed: the base seed; scene ``i`` depends only on ``seed`` and ``i``.
        radiance_dir: a folder (or several) of real ``.hdr``/``.exr`` radiance maps to crop backgrounds
            from; ``None`` uses procedural backgrounds only.
        ev_sets: EV sets drawn uniformly per scene.
        procedural_fraction: share of procedural backgrounds when ``radiance_dir`` is given
            (default 0.5, or 0 with ``split="heldout"``: held-out maps only).
        motion, noise, motion_strength: see :func:`synthesize_scene`.
        num_workers: processes to use (1 runs in this process).
        overwrite: replace existing scene folders instead of raising :class:`OutputError`.
        split: ``"train"`` or ``"heldout"`` keeps only those maps (:mod:`.splits`); ``"all"`` uses every map.
        camera_mix, balanced: see :func:`synthesize_scene`.

    Returns:
        The scene folders, in index order.
    """
    size = tuple(int(side) for side in size)
    radiance_maps = select_radiance_maps(radiance_dir, split)
    if procedural_fraction is None:
        procedural_fraction = (0.0 if split == "heldout" else 0.5) if radiance_maps else 1.0
    motion_strength = tuple(float(value) for value in motion_strength)
    camera_mix = resolve_camera_mix(camera_mix)
    _check_arguments(num_scenes, size, ev_sets, procedural_fraction, motion_strength, camera_mix)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{out_dir}: cannot create the output folder ({error.strerror or error}).") from error
    existing = [out_dir / f"{index:05d}" for index in range(num_scenes) if (out_dir / f"{index:05d}").exists()]
    if existing and not overwrite:
        raise OutputError(
            f"{existing[0]}: already exists ({len(existing)} scene folders do); pass --overwrite or choose another --out."
        )
    kwargs = {
        "seed": seed,
        "size": size,
        "ev_sets": [tuple(float(ev) for ev in ev_set) for ev_set in ev_sets],
        "radiance_maps": [str(path) for path in radiance_maps],
        "procedural_fraction": procedural_fraction,
        "motion": motion,
        "noise": noise,
        "motion_strength": motion_strength,
        "camera_mix": camera_mix,
        "balanced": balanced,
    }
    jobs = [(str(out_dir), index, kwargs, overwrite) for index in range(num_scenes)]
    if num_workers <= 1 or num_scenes == 1:
        folders = [_make_scene(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=num_workers) as pool:
            folders = list(pool.map(_make_scene, jobs, chunksize=max(1, num_scenes // (4 * num_workers))))
    return [Path(folder) for folder in folders]
