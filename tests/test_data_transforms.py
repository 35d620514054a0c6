"""Training and evaluation views of the dataset, and precomputed crops."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from diffhdr_diffusers.hdr_domain import make_conditioning
from diffhdr_diffusers.data import (
    CROP_FEATURES,
    EvaluationTransform,
    TrainingTransform,
    decode_scene,
    load_kalantari,
    prepare_crops,
    synthesize_scene,
    write_scene,
)
from diffhdr_diffusers.data.transforms import dihedral
from diffhdr_diffusers.errors import CropSizeError, DatasetError
from diffhdr_diffusers.hdr_domain import inverse_mu_law, mu_law

CROP = 32


@pytest.fixture(scope="module")
def dataset(synthetic_scenes, tmp_path_factory):
    return load_kalantari(synthetic_scenes, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def static_dataset(tmp_path_factory):
    """One noise-free static scene: the medium frame's linearisation equals the ground truth where unclipped."""
    root = tmp_path_factory.mktemp("static")
    write_scene(synthesize_scene(2, 0, (64, 96), motion=False, noise=False), root / "static")
    return load_kalantari(root, cache_dir=root / "cache")


def test_training_batches_have_the_documented_shapes_and_ranges(dataset):
    batch = dataset.with_transform(TrainingTransform(CROP, seed=0))[:3]
    assert batch["scene"] == ["00000", "00001", "00002"]
    for conditioning, target in zip(batch["conditioning"], batch["target"]):
        assert conditioning.shape == (18, CROP, CROP) and conditioning.dtype == torch.float32
        assert target.shape == (3, CROP, CROP) and target.dtype == torch.float32
        assert 0 <= conditioning.min() and conditioning.max() <= 1
        assert 0 <= target.min() and target.max() <= 1 and target.std() > 0
        # Channels per exposure: [ldr, ldr**2.2 / 2**ev]; the linearised copy never exceeds the LDR.
        for exposure in range(3):
            ldr, linear = (
                conditioning[6 * exposure : 6 * exposure + 3],
                conditioning[6 * exposure + 3 : 6 * exposure + 6],
            )
            assert torch.all(linear <= ldr + 1e-6)
    loader = torch.utils.data.DataLoader(dataset.with_transform(TrainingTransform(CROP, seed=0)), batch_size=2)
    first = next(iter(loader))
    assert first["conditioning"].shape == (2, 18, CROP, CROP) and first["target"].shape == (2, 3, CROP, CROP)


def test_crops_are_reproducible_and_independent_of_batching(dataset):
    transform = TrainingTransform(CROP, seed=1)
    together = dataset.with_transform(transform)[:3]
    alone = dataset.with_transform(transform)[2]
    assert torch.equal(together["conditioning"][2], alone["conditioning"])
    again = dataset.with_transform(TrainingTransform(CROP, seed=1))[:3]
    assert all(torch.equal(a, b) for a, b in zip(together["target"], again["target"]))
    transform.set_epoch(1)
    next_epoch = dataset.with_transform(transform)[:3]
    assert not all(torch.equal(a, b) for a, b in zip(together["target"], next_epoch["target"]))
    transform.set_epoch(0)
    assert torch.equal(dataset.with_transform(transform)[0]["target"], together["target"][0])  # epoch 0 again


def test_augmentation_applies_one_symmetry_to_conditioning_and_target(dataset):
    """With the same seed the crop position is the same; augmentation then picks one of the 8
    symmetries of the square, and the target must have received exactly the conditioning's one."""
    seen = set()
    for seed in range(16):
        plain = dataset.with_transform(TrainingTransform(CROP, augment=False, seed=seed))[0]
        augmented = dataset.with_transform(TrainingTransform(CROP, augment=True, seed=seed))[0]
        matches = [
            (flip, turns)
            for flip in (False, True)
            for turns in range(4)
            if np.array_equal(
                dihedral(plain["conditioning"].numpy().transpose(1, 2, 0), flip, turns),
                augmented["conditioning"].numpy().transpose(1, 2, 0),
            )
        ]
        assert len(matches) >= 1
        flip, turns = matches[0]
        expected_target = dihedral(plain["target"].numpy().transpose(1, 2, 0), flip, turns)
        np.testing.assert_array_equal(expected_target, augmented["target"].numpy().transpose(1, 2, 0))
        seen.add(matches[0])
    assert len(seen) >= 5  # flips and rotations are actually drawn


def test_target_is_aligned_with_the_conditioning(static_dataset):
    """On a noise-free static scene, the medium exposure's linearised channels equal the ground truth
    wherever the medium frame is well exposed: crops and symmetries must hit both alike."""
    for seed in range(4):
        sample = static_dataset.with_transform(TrainingTransform(CROP, seed=seed))[0]
        ldr, linear = sample["conditioning"][6:9], sample["conditioning"][9:12]
        radiance_from_medium = linear  # ldr**2.2 / 2**ev undoes the camera: it is the radiance
        radiance = inverse_mu_law(sample["target"])
        usable = (ldr > 0.1) & (ldr < 0.9)
        assert usable.float().mean() > 0.1
        relative = (radiance_from_medium[usable] - radiance[usable]).abs() / radiance[usable]
        assert relative.max() < 0.02  # RGBE ground truth + float32 mu-law round trip


def test_training_transform_errors(dataset, synthetic_scenes, tmp_path):
    with pytest.raises(CropSizeError, match="smaller than the training crop of 128 pixels; use a training crop no"):
        dataset.with_transform(TrainingTransform(128, seed=0))[0]
    no_truth = load_kalantari(synthetic_scenes, require_hdr=False, cache_dir=tmp_path).map(lambda row: {"hdr": None})
    with pytest.raises(DatasetError, match="no ground truth"):
        no_truth.with_transform(TrainingTransform(CROP, seed=0))[0]


def test_evaluation_transform_gives_full_images(dataset):
    sample = dataset.with_transform(EvaluationTransform())[1]
    decoded = decode_scene(dataset[1])
    assert sample["conditioning"].shape == (18, 64, 96) and sample["radiance"].shape == (3, 64, 96)
    expected = make_conditioning(decoded["images"], decoded["exposures"]).transpose(2, 0, 1)
    np.testing.assert_array_equal(sample["conditioning"].numpy(), expected)
    np.testing.assert_array_equal(sample["radiance"].numpy(), decoded["radiance"].transpose(2, 0, 1))
    assert sample["exposures"] == decoded["exposures"] and len(sample["images"]) == 3


def test_prepare_crops_cuts_like_gen_crop_data(dataset, tmp_path):
    crops = prepare_crops(dataset, crop_size=CROP, stride=16)
    # (64 - 32) / 16 + 1 = 3 rows, (96 - 32) / 16 + 1 = 5 columns, for each of 3 scenes.
    assert len(crops) == 3 * 3 * 5 and crops.features == CROP_FEATURES
    crops.save_to_disk(tmp_path / "crops")
    crops = datasets.load_from_disk(tmp_path / "crops")
    row = crops[7]
    assert row["scene"] == "00000/y0016_x0032" and (row["top"], row["left"]) == (16, 32)
    full, crop = decode_scene(dataset[0]), decode_scene(row)
    window = (slice(16, 16 + CROP), slice(32, 32 + CROP))
    for image, cropped in zip(full["images"], crop["images"]):
        np.testing.assert_array_equal(cropped, image[window])  # 16-bit exact
    np.testing.assert_array_equal(crop["radiance"], full["radiance"][window])
    sample = crops.with_transform(TrainingTransform(CROP, augment=False, seed=0))[7]
    np.testing.assert_array_equal(sample["target"].numpy(), mu_law(full["radiance"][window]).transpose(2, 0, 1))
