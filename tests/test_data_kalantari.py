"""Kalantari-layout scenes through HF datasets: discovery, ordering, exactness, persistence, errors."""

from __future__ import annotations

import logging
import shutil

import datasets
import numpy as np
import pytest
import tifffile

from diffhdr_diffusers.data import FEATURES, check_brightness_order, decode_scene, load_kalantari
from diffhdr_diffusers.errors import DatasetError
from diffhdr_diffusers.io import read_ldr, read_radiance


@pytest.fixture
def dataset_copy(synthetic_scenes, tmp_path):
    """A writable copy of the session's synthetic dataset root (``Training/00000..00002``)."""
    root = tmp_path / "kalantari"
    shutil.copytree(synthetic_scenes, root)
    return root


def load(root, **kwargs):
    return load_kalantari(root, cache_dir=root.parent / "hf_cache", **kwargs)


def test_loads_scenes_with_bytes_and_exposures(synthetic_scenes, tmp_path):
    dataset = load_kalantari(synthetic_scenes, "train", cache_dir=tmp_path / "cache")
    assert dataset.features == FEATURES
    assert dataset["scene"] == ["00000", "00001", "00002"]
    row = dataset[1]
    folder = synthetic_scenes / "Training" / "00001"
    assert row["ldr_names"] == ["input_1.tif", "input_2.tif", "input_3.tif"]
    assert row["ldr"][2] == (folder / "input_3.tif").read_bytes()
    assert row["hdr"] == (folder / "HDRImg.hdr").read_bytes() and row["hdr_name"] == "HDRImg.hdr"
    assert row["exposures"] == [float(line) for line in (folder / "exposure.txt").read_text().split()]
    assert (row["height"], row["width"]) == (64, 96)


def test_decoding_is_exact_to_16_bits_through_save_to_disk(synthetic_scenes, tmp_path):
    dataset = load_kalantari(synthetic_scenes, cache_dir=tmp_path / "cache")
    dataset.save_to_disk(tmp_path / "saved")
    reloaded = datasets.load_from_disk(tmp_path / "saved")
    assert reloaded.features == FEATURES and reloaded["scene"] == dataset["scene"]
    decoded = decode_scene(reloaded[0])
    folder = synthetic_scenes / "Training" / "00000"
    for index, image in enumerate(decoded["images"], start=1):
        codes = tifffile.imread(folder / f"input_{index}.tif")
        assert image.dtype == np.float32
        np.testing.assert_array_equal(np.round(image * 65535).astype(np.uint16), codes)
        np.testing.assert_array_equal(image, read_ldr(folder / f"input_{index}.tif"))
        assert np.any(codes % 257 != 0)  # genuinely 16-bit data, not 8-bit values scaled up
    np.testing.assert_array_equal(decoded["radiance"], read_radiance(folder / "HDRImg.hdr"))
    assert decoded["exposures"] == reloaded[0]["exposures"]


def test_short_medium_long_names_are_ordered_by_exposure(dataset_copy):
    folder = dataset_copy / "Training" / "00000"
    for old, new in zip(("input_1", "input_2", "input_3"), ("short", "medium", "long")):
        (folder / f"{old}.tif").rename(folder / f"{new}.tif")
    row = load(dataset_copy)[0]
    assert row["ldr_names"] == ["short.tif", "medium.tif", "long.tif"]
    assert row["ldr"][0] == (folder / "short.tif").read_bytes()


def test_nested_groupings_and_split_folder_names(synthetic_scenes, tmp_path):
    root = tmp_path / "sig17"
    source = synthetic_scenes / "Training"
    shutil.copytree(source / "00000", root / "TEST" / "PAPER" / "BarbequeDay")
    shutil.copytree(source / "00001", root / "TEST" / "EXTRA" / "001")
    shutil.copytree(source / "00002", root / "training" / "10")
    shutil.copytree(source / "00000", root / "training" / "9")
    (root / "TEST" / "PAPER" / "BarbequeDay" / "HDRImg.hdr").unlink()  # a test set may lack ground truth
    test = load_kalantari(root, "test", cache_dir=tmp_path / "cache")
    assert test["scene"] == ["EXTRA/001", "PAPER/BarbequeDay"]
    assert test[1]["hdr"] is None and decode_scene(test[1])["radiance"] is None
    assert load_kalantari(root, "train", cache_dir=tmp_path / "cache")["scene"] == ["9", "10"]  # natural order
    shutil.rmtree(root / "TEST")
    with pytest.raises(DatasetError, match="no folder for split 'test'"):
        load_kalantari(root, "test", cache_dir=tmp_path / "cache")


def test_a_plain_folder_of_scenes_is_a_dataset(synthetic_scenes, tmp_path):
    dataset = load_kalantari(synthetic_scenes / "Training", split="test", cache_dir=tmp_path / "cache")
    assert dataset["scene"] == ["00000", "00001", "00002"]


def test_changed_files_are_not_served_from_the_cache(dataset_copy):
    first = load(dataset_copy)
    exposure = dataset_copy / "Training" / "00002" / "exposure.txt"
    exposure.write_text("0\n2.5\n4\n")
    assert load(dataset_copy)[2]["exposures"] == [0.0, 2.5, 4.0] != first[2]["exposures"]


def test_brightness_order_disagreement_is_logged(dataset_copy, caplog):
    folder = dataset_copy / "Training" / "00001"
    with caplog.at_level(logging.WARNING, logger="diffhdr_diffusers.data.kalantari"):
        load(dataset_copy)
    assert not caplog.records  # correctly ordered scenes are quiet
    short, long = folder / "input_1.tif", folder / "input_3.tif"
    short_bytes = short.read_bytes()
    short.write_bytes(long.read_bytes())
    long.write_bytes(short_bytes)
    with caplog.at_level(logging.WARNING, logger="diffhdr_diffusers.data.kalantari"):
        load(dataset_copy)
    messages = [record.getMessage() for record in caplog.records]
    assert any("scene 00001" in message and "out of order" in message for message in messages), messages


def _remove(name):
    return lambda folder: (folder / name).unlink()


def _write(name, text):
    return lambda folder: (folder / name).write_text(text)


def _shrink(name):
    def change(folder):
        tifffile.imwrite(folder / name, tifffile.imread(folder / name)[:32], photometric="rgb")

    return change


ERROR_CASES = [
    # One scanner for merge and datasets (io.scene): its messages, EXIF as the fallback for exposures.
    ("missing exposure.txt", _remove("exposure.txt"), ["no exposure.txt", "no usable EXIF"]),
    ("missing LDR", _remove("input_2.tif"), ["expected 3 LDR images", "found 2: input_1.tif, input_3.tif"]),
    ("extra LDR", lambda f: shutil.copy(f / "input_1.tif", f / "input_4.tif"), ["found 4: ", "input_4.tif"]),
    ("unparsable exposure.txt", _write("exposure.txt", "0\nbright\n4\n"), ["exposure.txt", "'bright'"]),
    ("too few exposures", _write("exposure.txt", "0\n2\n"), ["exposure.txt", "2 exposures for 3 images"]),
    ("size mismatch", _shrink("input_3.tif"), ["input_3.tif", "96x32", "same size"]),
    ("missing ground truth", _remove("HDRImg.hdr"), ["HDRImg.hdr", "require_hdr=False"]),
    ("corrupt LDR", _write("input_2.tif", "not a tiff"), ["input_2.tif", "corrupt"]),
]


@pytest.mark.parametrize("change, fragments", [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES])
def test_broken_scenes_raise_errors_naming_scene_and_file(dataset_copy, change, fragments):
    change(dataset_copy / "Training" / "00001")
    with pytest.raises(DatasetError) as raised:
        load(dataset_copy)
    message = str(raised.value)
    assert "scene 00001" in message or "00001" in message
    for fragment in fragments:
        assert fragment in message, message


def test_missing_root_and_empty_root(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_kalantari(tmp_path / "absent")
    (tmp_path / "empty" / "Training").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no scene folders"):
        load_kalantari(tmp_path / "empty")


def test_brightness_order_holds_for_any_camera_curve():
    """A filmic camera's correctly ordered bracket is quiet (a gamma-2.2 ratio check called this one 3.69 stops
    where 2 were given); the same frames swapped are flagged."""
    from diffhdr_diffusers.data.synth import synthesize_scene

    scene = synthesize_scene(seed=5, index=17, size=(96, 128), ev_sets=[[-2.0, 0.0, 2.0]], camera_mix="realistic",
                             procedural_fraction=1.0)
    assert scene.params["camera"]["curve"] == "filmic"
    names, images, evs = [str(name) for name in scene.file_names], list(scene.images), list(scene.exposures)
    assert check_brightness_order("s", names, images, evs) == []
    messages = check_brightness_order("s", names[::-1], images[::-1], evs)
    assert messages and all("out of order" in message for message in messages)
