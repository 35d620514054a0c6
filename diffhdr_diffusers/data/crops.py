"""Precomputed training crops, like the authors' ``gen_crop_data.py`` (crop 128, stride 64), as a dataset.

Decoding a 1000x1500 16-bit scene for every 128-pixel training crop is slow; this cuts every scene
once into overlapping crops. Crops keep the row layout of :func:`load_kalantari` (LDR crops as
lossless TIFF bytes at their original bit depth, the ground truth as float32 TIFF bytes), so the
same transforms apply. Flips and rotations are left to :class:`TrainingTransform`, which draws them
per epoch instead of storing five copies.

:class:`SeededCropDataset` and :func:`collate_samples` serve a training stream's samples
(:class:`~diffhdr_diffusers.data.sampling.StreamBatchSampler`) with crops seeded from their position.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

import datasets
import numpy as np
import torch

from ..errors import CropSizeError, DatasetError, DiffHDRError

from .decode import decode_ldr_codes, decode_radiance, encode_tiff
from .kalantari import FEATURES
from .sampling import crop_seed

logger = logging.getLogger(__name__)

CROP_FEATURES = datasets.Features(
    {
        **FEATURES,
        "source_scene": datasets.Value("string"),
        "top": datasets.Value("int32"),
        "left": datasets.Value("int32"),
    }
)
"""The columns of :data:`FEATURES` plus the source scene and the crop's position in it."""


def crop_positions(length: int, crop_size: int, stride: int) -> list[int]:
    """Start offsets ``0, stride, 2 * stride, ...`` of the crops that fit in ``length`` (as the original)."""
    return list(range(0, length - crop_size + 1, stride))


def _crop_batch(batch: dict, crop_size: int, stride: int) -> dict:
    output = {name: [] for name in CROP_FEATURES}
    for index, scene in enumerate(batch["scene"]):
        names = batch["ldr_names"][index]
        codes = [decode_ldr_codes(data, f"{scene}/{name}") for data, name in zip(batch["ldr"][index], names)]
        hdr = batch["hdr"][index]
        radiance = None if hdr is None else decode_radiance(hdr, f"{scene}/{batch['hdr_name'][index]}")
        height, width = codes[0].shape[:2]
        tops, lefts = crop_positions(height, crop_size, stride), crop_positions(width, crop_size, stride)
        if not tops or not lefts:
            logger.warning(
                "scene %s: %dx%d is smaller than the %d-pixel crop; skipped.", scene, width, height, crop_size
            )
        crop_names = [str(PurePosixPath(name).with_suffix(".tif")) for name in names]
        for top in tops:
            for left in lefts:
                window = (slice(top, top + crop_size), slice(left, left + crop_size))
                output["scene"].append(f"{scene}/y{top:04d}_x{left:04d}")
                output["ldr"].append([encode_tiff(frame[window]) for frame in codes])
                output["ldr_names"].append(crop_names)
                output["exposures"].append(batch["exposures"][index])
                output["hdr"].append(None if radiance is None else encode_tiff(radiance[window]))
                output["hdr_name"].append(None if radiance is None else "HDRImg.tif")
                output["height"].append(crop_size)
                output["width"].append(crop_size)
                output["source_scene"].append(scene)
                output["top"].append(top)
                output["left"].append(left)
    return output


def prepare_crops(
    dataset: datasets.Dataset, crop_size: int = 128, stride: int = 64, num_proc: int | None = None
) -> datasets.Dataset:
    """Cut every scene of ``dataset`` (from :func:`load_kalantari`) into ``crop_size`` crops every ``stride`` pixels.

    Returns a dataset with the columns of :data:`CROP_FEATURES`, one row per crop, scene ids
    ``<scene>/y<top>_x<left>``; the result is cached by ``datasets`` like any ``map``. Use it with
    ``TrainingTransform(crop_size)`` (which then only flips and rotates) and ``save_to_disk``.
    """
    if crop_size < 1 or stride < 1:
        raise ValueError(f"crop_size={crop_size}, stride={stride}: both must be positive numbers of pixels.")
    return dataset.map(
        _crop_batch,
        batched=True,
        batch_size=1,
        fn_kwargs={"crop_size": crop_size, "stride": stride},
        remove_columns=dataset.column_names,
        features=CROP_FEATURES,
        num_proc=num_proc,
        desc=f"Cropping {crop_size}px every {stride}px",
    )


class SeededCropDataset(torch.utils.data.Dataset):
    """Map ``(scene_index, position)`` to one training sample, cropped with a seed derived from ``position``.

    ``make_transform(seed)`` must return a ``Dataset.with_transform``-style callable (a batch dict of
    lists in, a dict with ``conditioning`` and ``target`` lists out), e.g.
    ``lambda seed: TrainingTransform(crop_size, augment, seed)``. A scene that fails to decode, or decodes
    to non-finite values, raises ``DatasetError`` naming it (``on_bad_scene="stop"``) or is replaced by the
    next good scene of the stream (``"skip"``); the sample then carries the skipped scene names in
    ``skipped`` so that the training loop can count and report them.
    """

    def __init__(self, scenes, make_transform, seed: int, on_bad_scene: str = "stop"):
        if on_bad_scene not in ("stop", "skip"):
            raise ValueError(f"on_bad_scene must be 'stop' or 'skip', got {on_bad_scene!r}")
        self.scenes, self.make_transform, self.seed, self.on_bad_scene = scenes, make_transform, seed, on_bad_scene

    def __len__(self) -> int:
        return len(self.scenes)

    def _sample(self, index: int, position: int) -> dict:
        row = self.scenes[index]
        batch = self.make_transform(crop_seed(self.seed, position))({key: [value] for key, value in row.items()})
        conditioning = torch.as_tensor(np.asarray(batch["conditioning"][0]), dtype=torch.float32)
        target = torch.as_tensor(np.asarray(batch["target"][0]), dtype=torch.float32)
        if not (torch.isfinite(conditioning).all() and torch.isfinite(target).all()):
            raise ValueError("decoded to NaN or inf values")
        return {"conditioning": conditioning, "target": target}

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, position = key
        skipped: list[str] = []
        for attempt in range(len(self.scenes)):
            candidate = (index + attempt) % len(self.scenes)
            try:
                sample = self._sample(candidate, position)
                sample["skipped"] = skipped
                return sample
            except CropSizeError:  # a setting to change, which skipping scenes would not fix
                raise
            except (DiffHDRError, OSError, ValueError, KeyError, TypeError) as error:
                name = self.scene_name(candidate)
                if self.on_bad_scene == "stop":
                    raise DatasetError(f"training scene {name!r} is unusable: {error}. Fix or remove it, or pass "
                                       "--on_bad_scene skip to train without it.") from error
                skipped.append(f"{name} ({error})")
        raise DatasetError(f"no usable training scene: every scene failed to decode, e.g. {skipped[0]}.")

    def scene_name(self, index: int) -> str:
        try:
            return str(self.scenes[index]["scene"])
        except Exception:  # noqa: BLE001 - the name is only for the message
            return f"#{index}"


def collate_samples(samples: list[dict]) -> dict:
    """Stack ``conditioning`` and ``target``; concatenate the ``skipped`` scene reports.

    Samples of brackets of different sizes (a frame-count-independent model's data) are ordered by their number of
    conditioning planes (stable), and ``conditioning`` is then a list with one stacked tensor per size, in that
    order (what :class:`~diffhdr_diffusers.models.ConditionEncoder` takes); ``target`` follows the same order.
    """
    skipped = [name for sample in samples for name in sample["skipped"]]
    sizes = [sample["conditioning"].shape[0] for sample in samples]
    if len(set(sizes)) > 1:
        samples = sorted(samples, key=lambda sample: sample["conditioning"].shape[0])
        groups = {}
        for sample in samples:
            groups.setdefault(sample["conditioning"].shape[0], []).append(sample["conditioning"])
        conditioning = [torch.stack(group) for group in groups.values()]
    else:
        conditioning = torch.stack([sample["conditioning"] for sample in samples])
    return {"conditioning": conditioning, "target": torch.stack([sample["target"] for sample in samples]),
            "skipped": skipped}
