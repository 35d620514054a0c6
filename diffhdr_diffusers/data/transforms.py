"""Views of a Kalantari-layout dataset for ``Dataset.with_transform``: random training crops, full images.

Training randomness is explicit: with a ``seed``, the crop and augmentation of a row depend only on
``(seed, epoch, scene id)``, never on the order rows are visited, the batch size or the worker
count. A training script calls :meth:`TrainingTransform.set_epoch` before each epoch (before the
DataLoader's iterator is created, so worker processes get the new epoch) and resumes bit-exactly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import SMALLER_CROP, CropSizeError, DatasetError
from ..hdr_domain import GAMMA, MU, inverse_mu_law, make_conditioning, mu_law, to_model_units
from ..io.atomic import atomic_path
from ..prior import check_gate, correction_gate, reference_planes
from .decode import decode_ldr, decode_radiance


MAPPED_BYTES = 1 << 16  # prior-cache members this large are memory-mapped; smaller ones are read
MAPPED_FILES = 4096  # prior-cache files kept open per process


def read_prior_cache(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A prior-cache file's arrays (an uncompressed ``.npz``), the large ones memory-mapped read-only: a training
    crop then reads its window of the scene instead of the whole file. The last :data:`MAPPED_FILES` files are
    kept mapped per process while unchanged (each member is one memory map, and a process may hold about 65,000)."""
    stat = os.stat(path)
    return _read_prior_cache(os.fspath(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=MAPPED_FILES)
def _read_prior_cache(path: str, mtime_ns: int, size: int) -> dict[str, np.ndarray]:
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size < MAPPED_BYTES:  # read: small or compressed
                with archive.open(info) as member:
                    arrays[name] = np.lib.format.read_array(member)
                continue
            # A stored member's .npy lies as it is after its local header (30 bytes, then its name and extra field).
            handle.seek(info.header_offset)
            name_length, extra_length = struct.unpack("<HH", handle.read(30)[26:30])
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = read_header(handle)
            arrays[name] = np.memmap(path, dtype, "r", handle.tell(), shape, "F" if fortran_order else "C")
    return arrays


def decode_scene(row: Mapping, frames: bool = True) -> dict:
    """Decode one dataset row exactly.

    Returns:
        ``scene`` (str), ``images`` (list of float32 (H, W, 3) in [0, 1], short to long; 16-bit
        samples as ``code / 65535``; ``None`` with ``frames=False``), ``exposures`` (list of float EV) and
        ``radiance`` (float32 (H, W, 3) linear ground truth, or ``None`` when the row has none).
    """
    scene = row["scene"]
    images = None
    if frames:
        images = [decode_ldr(data, f"{scene}/{name}") for data, name in zip(row["ldr"], row["ldr_names"])]
        shapes = {image.shape for image in images}
        if len(shapes) != 1:
            raise DatasetError(f"scene {scene}: LDR images {list(row['ldr_names'])} have different sizes {sorted(shapes)}.")
    radiance = None
    if row.get("hdr") is not None:
        radiance = decode_radiance(row["hdr"], f"{scene}/{row['hdr_name']}")
        if images is not None and radiance.shape != images[0].shape:
            raise DatasetError(
                f"scene {scene}: {row['hdr_name']} is {radiance.shape[:2]} but the LDR images are {images[0].shape[:2]}."
            )
    return {"scene": scene, "images": images, "exposures": [float(ev) for ev in row["exposures"]], "radiance": radiance}


def _rows(batch: Mapping) -> tuple[list[dict], bool]:
    """Split a ``with_transform`` batch (dict of lists) into rows; a single row passes through."""
    if isinstance(batch["scene"], str):
        return [dict(batch)], False
    count = len(batch["scene"])
    return [{key: values[index] for key, values in batch.items()} for index in range(count)], True


def _to_chw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


def dihedral(array: np.ndarray, flip: bool, quarter_turns: int) -> np.ndarray:
    """Mirror ``array`` (H, W, C) left-right if ``flip``, then rotate it by ``quarter_turns`` x 90 degrees."""
    if flip:
        array = array[:, ::-1]
    return np.rot90(array, quarter_turns, axes=(0, 1))


def prior_units_scale(prior: np.ndarray, radiance: np.ndarray, mu: float = MU) -> float:
    """The factor that brings ``radiance`` (H, W, 3, model units) to the units of ``prior`` (its mu-law, the same
    size): ``2 ** median(log2(prior / radiance))`` over the prior's trusted levels (mu-law 0.3 to 0.97); 1 when
    there are none."""
    prior = np.asarray(prior, np.float32)
    trusted = (prior > 0.3) & (prior < 0.97) & (radiance > 0)
    if not trusted.any():
        return 1.0
    linear = inverse_mu_law(prior[trusted], mu)
    return float(2.0 ** np.median(np.log2(linear / radiance[trusted])))


class TrainingTransform:
    """Random ``crop_size`` crops with flips and 90-degree rotations, as network inputs and targets.

    Use as ``dataset.with_transform(TrainingTransform(128, seed=0))``. Each row becomes
    ``conditioning``: float32 tensor (6 * N, crop, crop), per exposure ``[ldr, ldr ** 2.2 / 2 ** ev]``
    (EV relative to the shortest), and ``target``: float32 tensor (3, crop, crop), the mu-law (constant ``mu``) of
    the ground-truth radiance in model units (not clipped, as in the original). The same crop, flip and rotation apply
    to every channel of both.

    With ``alignment`` (an aligned model's pipeline setting), ``conditioning`` is the aligned variant's
    (:func:`~diffhdr_diffusers.prior.prior_conditioning`, computed on the whole scene and kept as float16,
    by this instance and, with ``prior_cache_dir``, on disk for every instance and run: the training
    script's ``SeededCropDataset`` builds a transform per sample, so the disk is what makes it once per
    scene) and ``target`` is the residual ``mu_law(radiance) - prior``. With ``response``, the frames first go
    through the camera model (:func:`~diffhdr_diffusers.camera.apply_camera`, as every merge path does), and the
    target's model units follow the exposures it returns (a measured correction of the nominal ones). With
    ``target_units="prior"`` the ground truth is then rescaled by one factor per scene to the prior's units
    (:func:`prior_units_scale`), so that the network learns corrections of the merge, not the response
    estimate's units error (which no crop can see: ``auto`` puts a log curve's grey about a stop off).

    Args:
        crop_size: side of the square crop (the paper uses 128).
        augment: apply a random flip and rotation (one of the 8 symmetries of the square).
        seed: ``None`` draws fresh randomness on every call; an int makes the crops a function of
            ``(seed, epoch, scene)`` (see :meth:`rng`).
        gamma: the inverse camera response exponent of the conditioning.
        mu: the mu-law constant of the target (and of an aligned model's prior): the pipeline's ``mu``.
        alignment: ``None`` for the paper's inputs, else the settings of the aligned variant.
        prior_cache_dir: with ``alignment``, a folder where each scene's aligned conditioning is kept on disk
            (one ``.npz`` per scene and settings, written atomically), so a resumed or repeated run does not
            align the training set again.
        exposure_planes: with ``alignment``, add every frame's EV relative to the reference (the input of a
            ``frame_pooling`` model, see :func:`~diffhdr_diffusers.prior.prior_conditioning`).
        response: with ``alignment``, the camera response the frames are mapped through first (``"auto"``: estimated
            per scene, as a merge does by default; or a ``--response`` value); ``None`` uses the frames as decoded
            (a gamma-2.2 camera's, exactly as ``"gamma:2.2"``).
        target_units: with ``alignment``, ``"exposures"`` or ``"prior"`` (see above).
        correction_gate: with ``alignment``, the pipeline's ``correction_gate``: the residual target is multiplied
            by :func:`~diffhdr_diffusers.prior.correction_gate` of the crop's reference frame, so the network
            learns a zero correction where the pipeline discards it and spends itself where the reference is clipped.
    """

    def __init__(self, crop_size: int = 128, augment: bool = True, seed: int | None = None, gamma: float = GAMMA,
                 alignment: dict | None = None, prior_cache_dir: str | os.PathLike | None = None, mu: float = MU,
                 exposure_planes: bool = False, response: str | None = None, target_units: str = "exposures",
                 correction_gate: Sequence[float] | None = None):
        if crop_size < 1:
            raise ValueError(f"crop_size={crop_size}: must be a positive number of pixels.")
        self.crop_size = int(crop_size)
        self.augment = augment
        self.seed = seed
        self.gamma = gamma
        self.mu = mu
        self.alignment = alignment
        self.exposure_planes, self.response = bool(exposure_planes), response
        if target_units not in ("exposures", "prior"):
            raise ValueError(f"target_units={target_units!r}: must be 'exposures' or 'prior'.")
        self.target_units = target_units
        self.correction_gate = None if correction_gate is None else check_gate(correction_gate)
        self.prior_cache_dir = None if prior_cache_dir is None else Path(prior_cache_dir)
        self.epoch = 0
        self._priors: dict[str, tuple[np.ndarray, np.ndarray, list[float], float]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops the next calls draw (call before creating the DataLoader iterator)."""
        self.epoch = int(epoch)

    def rng(self, scene: str, epoch: int | None = None) -> np.random.Generator:
        """The generator used for ``scene`` in ``epoch`` (default: the current epoch)."""
        if self.seed is None:
            return np.random.default_rng()
        epoch = self.epoch if epoch is None else epoch
        key = zlib.crc32(scene.encode("utf-8"))
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(epoch, key)))

    def _cache_path(self, scene: str) -> Path | None:
        """The scene's file in the prior cache (``None`` without one); the key holds the settings that change it."""
        if self.prior_cache_dir is None:
            return None
        from ..merging import FLOW_MERGE_VERSION

        # The priors of another flow-merge are stale: its version is part of the key.
        settings = {"alignment": self.alignment, "gamma": self.gamma, "flow_merge": FLOW_MERGE_VERSION}
        # Only settings away from the defaults enter the key, so that the default's cache files keep their names.
        if self.mu != MU:
            settings["mu"] = self.mu
        if self.exposure_planes:
            settings["exposure_planes"] = True
        if self.response is not None:
            settings["response"] = str(self.response)
        settings = json.dumps(settings, sort_keys=True)
        return self.prior_cache_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', scene)}-{zlib.crc32(settings.encode()):08x}.npz"

    def scene_prior(self, decoded: dict) -> tuple[np.ndarray, np.ndarray, list[float], float]:
        """The aligned conditioning and prior of a whole scene (float16), the exposures they were built with
        (after the camera model's correction) and the ground truth's :func:`prior_units_scale` (1 without a ground
        truth), computed on first use and kept with the prior."""
        scene = decoded["scene"]
        if scene in self._priors:
            return self._priors[scene]
        path = self._cache_path(scene)
        if path is not None and path.is_file():
            stored = read_prior_cache(path)
            exposures = stored["exposures"].tolist() if "exposures" in stored else decoded["exposures"]
            scale = float(stored["units_scale"]) if "units_scale" in stored else None
            arrays = (stored["conditioning"], stored["prior"], exposures)
        else:
            from ..prior import prior_conditioning

            images, exposures = decoded["images"], decoded["exposures"]
            if self.response is not None:
                from ..camera import apply_camera

                images, camera = apply_camera(images, exposures, self.response, gamma=self.gamma)
                exposures = [float(ev) for ev in camera.exposures]
            prepared = prior_conditioning(images, exposures, self.alignment, self.gamma, mu=self.mu,
                                          exposure_planes=self.exposure_planes)
            arrays = (prepared.conditioning.astype(np.float16), prepared.prior.astype(np.float16), exposures)
            scale = self._units_scale(decoded, arrays[1], exposures)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                # The ground truth rides along, so that a cached scene's crops decode nothing at all.
                truth = {} if decoded.get("radiance") is None else {"radiance": decoded["radiance"]}
                with atomic_path(path, overwrite=True) as temporary:
                    np.savez(temporary, conditioning=arrays[0], prior=arrays[1], exposures=np.asarray(exposures),
                             units_scale=scale, **truth)
        if scale is None:  # a cache file written before the scale was kept
            scale = self._units_scale(decoded, arrays[1], arrays[2])
        self._priors[scene] = (*arrays, scale)
        return self._priors[scene]

    def _units_scale(self, decoded: dict, prior: np.ndarray, exposures: list[float]) -> float:
        radiance = decoded.get("radiance")
        return 1.0 if radiance is None else prior_units_scale(prior, to_model_units(radiance, exposures), self.mu)

    def transform_scene(self, decoded: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop and augment one decoded scene (see :func:`decode_scene`); return (conditioning, target)."""
        scene, radiance = decoded["scene"], decoded["radiance"]
        if radiance is None:
            raise DatasetError(f"scene {scene}: has no ground truth (HDRImg.hdr); training needs it.")
        height, width = radiance.shape[:2]
        size = self.crop_size
        if height < size or width < size:
            raise CropSizeError(f"scene {scene}: is {width}x{height}, smaller than the training crop of {size} "
                                f"pixels; {SMALLER_CROP}.")
        top = int(rng.integers(0, height - size + 1))
        left = int(rng.integers(0, width - size + 1))
        flip, turns = bool(rng.random() < 0.5), int(rng.integers(4))
        window = (slice(top, top + size), slice(left, left + size))
        if self.alignment is None:
            target = mu_law(to_model_units(radiance[window], decoded["exposures"]), self.mu).astype(np.float32)
            conditioning = make_conditioning(
                [image[window] for image in decoded["images"]], decoded["exposures"], self.gamma
            )
        else:
            *arrays, exposures, units_scale = self.scene_prior(decoded)
            conditioning, prior = (array[window].astype(np.float32) for array in arrays)
            target = to_model_units(radiance[window], exposures)
            if self.target_units == "prior":
                target = target * units_scale
            target = mu_law(target, self.mu).astype(np.float32) - prior
            if self.correction_gate is not None:  # the pipeline keeps the prior where the gate is 0: learn zero there
                target *= correction_gate(reference_planes(conditioning, len(exposures)), *self.correction_gate)
        stacked = np.concatenate([conditioning, target], axis=2)
        if self.augment:
            stacked = dihedral(stacked, flip, turns)
        channels = conditioning.shape[2]
        return _to_chw(stacked[..., :channels]), _to_chw(stacked[..., channels:])

    def _decode(self, row: Mapping) -> dict:
        """:func:`decode_scene`, without the LDR frames when the scene's prior is cached: the cache holds them
        aligned, and the ground truth too (memory-mapped) when it was written with it."""
        scene, path = row["scene"], self._cache_path(row["scene"])
        on_disk = self.alignment is not None and path is not None and path.is_file()
        if on_disk and "radiance" in (stored := read_prior_cache(path)):
            return {"scene": scene, "images": None, "exposures": [float(ev) for ev in row["exposures"]],
                    "radiance": stored["radiance"]}
        return decode_scene(row, frames=not (on_disk or (self.alignment is not None and scene in self._priors)))

    def __call__(self, batch: Mapping) -> dict:
        rows, batched = _rows(batch)
        output = {"scene": [], "conditioning": [], "target": []}
        for row in rows:
            decoded = self._decode(row)
            conditioning, target = self.transform_scene(decoded, self.rng(decoded["scene"]))
            output["scene"].append(decoded["scene"])
            output["conditioning"].append(conditioning)
            output["target"].append(target)
        return output if batched else {key: values[0] for key, values in output.items()}


class EvaluationTransform:
    """Full-size views for evaluation: use as ``dataset.with_transform(EvaluationTransform())``.

    Each row becomes ``scene``, ``images`` (float32 (H, W, 3) arrays, short to long) and ``exposures``
    (EV) for the pipeline, ``conditioning`` (float32 tensor (6 * N, H, W)), and ``radiance`` (float32
    tensor (3, H, W), linear ground truth) or ``None`` when the scene has no ground truth.
    """

    def __init__(self, gamma: float = GAMMA):
        self.gamma = gamma

    def __call__(self, batch: Mapping) -> dict:
        rows, batched = _rows(batch)
        output = {"scene": [], "images": [], "exposures": [], "conditioning": [], "radiance": []}
        for row in rows:
            decoded = decode_scene(row)
            output["scene"].append(decoded["scene"])
            output["images"].append(decoded["images"])
            output["exposures"].append(decoded["exposures"])
            output["conditioning"].append(
                _to_chw(make_conditioning(decoded["images"], decoded["exposures"], self.gamma))
            )
            radiance = decoded["radiance"]
            output["radiance"].append(None if radiance is None else _to_chw(radiance))
        return output if batched else {key: values[0] for key, values in output.items()}
