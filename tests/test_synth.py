"""The bracket synthesiser: physics of the camera model, motion, determinism, files and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from diffhdr_diffusers.cli import main
from diffhdr_diffusers.data import synthesize_scene, synthesize_scenes, write_scene
from diffhdr_diffusers.data.camera import CODES_16BIT
from diffhdr_diffusers.data.procedural import procedural_radiance
from diffhdr_diffusers.errors import InputError, OutputError
from diffhdr_diffusers.io import read_exposure_txt, read_ldr, read_radiance
from diffhdr_diffusers.hdr_domain import mu_law

SIZE = (64, 96)


def merge_with_known_response(images, exposures, gamma=2.2):
    """Debevec-style merge: hat-weighted mean of ldr**gamma / 2**ev, saturated samples excluded."""
    evs = np.asarray(exposures) - min(exposures)
    numerator = np.zeros_like(images[0], dtype=np.float64)
    denominator = np.zeros_like(numerator)
    for image, ev in zip(images, evs):
        weight = np.clip(1.0 - np.abs(2.0 * image - 1.0), 0.0, None)
        weight[image >= 1.0] = 0.0
        numerator += weight * image.astype(np.float64) ** gamma / 2.0**ev
        denominator += weight
    fallback = images[0].astype(np.float64) ** gamma  # saturated everywhere: the short frame's clip level
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), fallback)


@pytest.mark.parametrize("index", range(4))
def test_static_bracket_remerges_to_ground_truth(index):
    clean = synthesize_scene(7, index, SIZE, motion=False, noise=False)
    merged = merge_with_known_response(clean.images, clean.exposures)
    # Without noise only 16-bit quantisation separates the merge from the ground truth.
    assert np.max(np.abs(merged - clean.radiance) / np.maximum(clean.radiance, 2e-3)) < 2e-2
    assert 10 * np.log10(1 / np.mean((mu_law(merged) - mu_law(clean.radiance)) ** 2)) > 70

    noisy = synthesize_scene(7, index, SIZE, motion=False, noise=True)
    np.testing.assert_array_equal(noisy.radiance, clean.radiance)  # noise never touches the ground truth
    merged = merge_with_known_response(noisy.images, noisy.exposures)
    relative = np.abs(merged - noisy.radiance) / np.maximum(noisy.radiance, 1e-4)
    assert 0.001 < np.median(relative) < 0.05  # within the shot and read noise, but not noise-free
    # Each frame's noise is zero-mean in the linear domain wherever it is far from the clip levels.
    for image, ev in zip(noisy.images, np.asarray(noisy.exposures) - min(noisy.exposures)):
        signal = noisy.radiance * 2.0**ev
        usable = (signal > 0.01) & (signal < 0.8)
        bias = np.mean(image[usable].astype(np.float64) ** 2.2 - signal[usable]) / np.mean(signal[usable])
        assert abs(bias) < 0.005


@pytest.mark.parametrize("index", range(4))
def test_saturation_fractions_follow_the_ev_set(index):
    scene = synthesize_scene(3, index, SIZE, motion=False, noise=False)
    evs = np.asarray(scene.exposures) - min(scene.exposures)
    fractions = [frame["saturated_fraction"] for frame in scene.params["frames"]]
    # Static and noise-free: a pixel saturates exactly where radiance * 2**ev reaches the clip level.
    peak = scene.radiance.max(axis=2)
    expected = [float(np.mean(peak * 2.0**ev >= (CODES_16BIT - 0.5) / CODES_16BIT)) for ev in evs]
    np.testing.assert_allclose(fractions, expected, atol=2e-3)
    assert fractions[0] <= fractions[1] <= fractions[2]
    assert fractions[0] < 0.03  # the short exposure barely saturates
    assert fractions[2] > fractions[0]


def test_procedural_radiance_spans_at_least_12_stops():
    for seed in range(6):
        radiance, params = procedural_radiance(np.random.default_rng(seed), SIZE)
        luminance = radiance.mean(axis=2)
        assert np.log2(luminance.max() / np.percentile(luminance, 0.1)) >= 12
        assert params["emitters"] and radiance.max() > 1.5  # emitters well above the lit surfaces


def test_motion_moves_pixels_but_not_the_reference():
    static = synthesize_scene(11, 0, SIZE, motion=False)
    moving = synthesize_scene(11, 0, SIZE, motion=True)
    reference = moving.params["reference_index"]
    np.testing.assert_array_equal(moving.codes[reference], static.codes[reference])
    np.testing.assert_array_equal(moving.radiance, static.radiance)
    for frame in range(3):
        if frame == reference:
            continue
        changed = np.abs(moving.images[frame] - static.images[frame]).max(axis=2) > 0.05
        assert changed.mean() > 0.05, f"frame {frame} barely moved"
        assert moving.params["frames"][frame]["camera"] is not None
    assert all(np.hypot(*item["velocity"]) > 0 for item in moving.params["objects"])


def test_synthesis_is_deterministic_by_seed_and_index():
    first = synthesize_scene(5, 2, SIZE)
    again = synthesize_scene(5, 2, SIZE)
    for a, b in zip(first.codes, again.codes):
        np.testing.assert_array_equal(a, b)
    assert first.params == again.params
    other = synthesize_scene(6, 2, SIZE)
    assert not np.array_equal(first.radiance, other.radiance)


def test_written_scene_layout_reads_back(tmp_path):
    scene = synthesize_scene(0, 0, SIZE)
    folder = write_scene(scene, tmp_path / "001")
    assert sorted(path.name for path in folder.iterdir()) == [
        "HDRImg.hdr",
        "exposure.txt",
        "input_1.tif",
        "input_2.tif",
        "input_3.tif",
        "scene.json",
    ]
    for index, codes in enumerate(scene.codes, start=1):
        stored = tifffile.imread(folder / f"input_{index}.tif")
        assert stored.dtype == np.uint16
        np.testing.assert_array_equal(stored, codes)
        np.testing.assert_array_equal(read_ldr(folder / f"input_{index}.tif"), scene.images[index - 1])
    assert read_exposure_txt(folder / "exposure.txt") == scene.exposures
    ground_truth = read_radiance(folder / "HDRImg.hdr")
    # RGBE shares one exponent per pixel: about 8 bits relative to the pixel's largest channel.
    peak = np.maximum(scene.radiance.max(axis=2, keepdims=True), 1e-6)
    assert np.max(np.abs(ground_truth - scene.radiance) / peak) < 0.01
    assert json.loads((folder / "scene.json").read_text())["exposures"] == scene.exposures
    with pytest.raises(OutputError, match="already exists"):
        write_scene(scene, folder)
    assert [path.name for path in tmp_path.iterdir()] == ["001"]  # no staging folder left behind


def test_scenes_do_not_depend_on_worker_count(tmp_path):
    serial = synthesize_scenes(tmp_path / "serial", 3, size=(32, 48), seed=4, num_workers=1)
    parallel = synthesize_scenes(tmp_path / "parallel", 3, size=(32, 48), seed=4, num_workers=2)
    for a, b in zip(serial, parallel):
        for name in ("input_1.tif", "input_2.tif", "input_3.tif", "HDRImg.hdr", "scene.json"):
            assert (a / name).read_bytes() == (b / name).read_bytes()


def test_real_radiance_backgrounds(shared_data, tmp_path):
    maps = sorted((shared_data / "real_hdr").glob("*.exr"))[:2]
    for path in maps:
        (tmp_path / path.name).symlink_to(path)
    kinds = set()
    for index in range(4):
        scene = synthesize_scene(
            0, index, SIZE, radiance_maps=sorted(tmp_path.iterdir()), procedural_fraction=0.0, noise=False, motion=False
        )
        source = scene.params["source"]
        kinds.add(source["file"])
        assert source["kind"] == "real"
        assert scene.params["frames"][0]["saturated_fraction"] < 0.01  # scaled so the short frame barely saturates
        assert 0.5 < scene.radiance.max() <= 1.0
    assert kinds <= {path.name for path in maps}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_scenes": 0}, "at least 1 scene"),
        ({"size": (8, 8)}, "at least 16 pixels"),
        ({"ev_sets": [(0, 2)]}, "3 increasing values"),
        ({"ev_sets": [(4, 2, 0)]}, "3 increasing values"),
        ({"radiance_dir": "/nonexistent/maps"}, "not a folder"),
        ({"procedural_fraction": 1.5}, r"\[0, 1\]"),
    ],
)
def test_synthesize_scenes_rejects_bad_arguments(tmp_path, kwargs, message):
    arguments = {"num_scenes": 1, "size": (32, 48)} | kwargs
    with pytest.raises(InputError, match=message):
        synthesize_scenes(tmp_path / "out", **arguments)


def test_cli_synth_writes_scenes_and_summary(tmp_path, capsys):
    out = tmp_path / "synthetic"
    arguments = [
        "synth",
        "--out",
        str(out),
        "--scenes",
        "2",
        "--size",
        "32x48",
        "--seed",
        "3",
        "--workers",
        "1",
        "--ev-sets=-2,0,2",
    ]
    assert main(arguments) == 0
    summary = capsys.readouterr().out
    assert "wrote 2 scenes of 32x48" in summary and "(-2,0,2) x2" in summary
    assert sorted(path.name for path in out.iterdir()) == ["00000", "00001"]
    assert read_exposure_txt(out / "00001" / "exposure.txt") == [-2.0, 0.0, 2.0]
    assert main(arguments) == 2  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(arguments + ["--overwrite"]) == 0
