"""The bracket synthesiser: physics of the camera model, motion, determinism, files and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from diffhdr_diffusers.camera import CURVES, Response
from diffhdr_diffusers.cli import build_parser, main
from diffhdr_diffusers.data import DEFAULT_EV_SETS, synthesize_scene, synthesize_scenes, write_scene
from diffhdr_diffusers.data.camera import CODES_16BIT, CameraMix
from diffhdr_diffusers.data.motion import OLD_CAMERA, displacement, draw_motion, draw_objects
from diffhdr_diffusers.data.procedural import procedural_radiance
from diffhdr_diffusers.data.splits import HELDOUT_MAPS, is_heldout, split_radiance_maps
from diffhdr_diffusers.data.synth import find_radiance_maps
from diffhdr_diffusers.errors import InputError, OutputError
from diffhdr_diffusers.io import read_exposure_txt, read_ldr, read_radiance
from diffhdr_diffusers.io.exposures import exposures_from_exif
from diffhdr_diffusers.io.scene import scan_scene
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units

SIZE = (64, 96)
REPOSITORY = Path(__file__).resolve().parents[1]
OLD_OBJECT_SPEED = 0.08  # the old largest object speed, fraction of the width per frame step


def merge_with_known_response(images, exposures, gamma=2.2):
    """Debevec-style merge: hat-weighted mean of ldr**gamma / 2**ev (literal EVs), saturated samples excluded."""
    evs = np.asarray(exposures, dtype=np.float64)
    numerator = np.zeros_like(images[0], dtype=np.float64)
    denominator = np.zeros_like(numerator)
    for image, ev in zip(images, evs):
        weight = np.clip(1.0 - np.abs(2.0 * image - 1.0), 0.0, None)
        weight[image >= 1.0] = 0.0
        numerator += weight * image.astype(np.float64) ** gamma / 2.0**ev
        denominator += weight
    fallback = images[0].astype(np.float64) ** gamma / 2.0 ** evs[0]  # saturated everywhere: the short frame's clip
    return np.where(denominator > 0, numerator / np.maximum(denominator, 1e-12), fallback)


@pytest.mark.parametrize("index", range(4))
def test_static_bracket_remerges_to_ground_truth(index):
    clean = synthesize_scene(7, index, SIZE, motion=False, noise=False)
    merged = merge_with_known_response(clean.images, clean.exposures)
    # Without noise only 16-bit quantisation separates the merge from the ground truth.
    assert np.max(np.abs(merged - clean.radiance) / np.maximum(clean.radiance, 2e-3)) < 2e-2
    model = [to_model_units(radiance, clean.exposures) for radiance in (merged, clean.radiance)]
    assert 10 * np.log10(1 / np.mean((mu_law(model[0]) - mu_law(model[1])) ** 2)) > 70

    noisy = synthesize_scene(7, index, SIZE, motion=False, noise=True)
    np.testing.assert_array_equal(noisy.radiance, clean.radiance)  # noise never touches the ground truth
    merged = merge_with_known_response(noisy.images, noisy.exposures)
    relative = np.abs(merged - noisy.radiance) / np.maximum(noisy.radiance, 1e-4)
    assert 0.001 < np.median(relative) < 0.05  # within the shot and read noise, but not noise-free
    # Each frame's noise is zero-mean in the linear domain wherever it is far from the clip levels.
    for image, ev in zip(noisy.images, noisy.exposures):
        signal = noisy.radiance * 2.0**ev  # literal EVs: the sensor signal in [0, 1]
        usable = (signal > 0.01) & (signal < 0.8)
        bias = np.mean(image[usable].astype(np.float64) ** 2.2 - signal[usable]) / np.mean(signal[usable])
        assert abs(bias) < 0.005


@pytest.mark.parametrize("index", range(4))
def test_saturation_fractions_follow_the_ev_set(index):
    scene = synthesize_scene(3, index, SIZE, motion=False, noise=False)
    evs = np.asarray(scene.exposures)  # literal: radiance * 2**ev is the sensor signal
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
    for static_frame, reference_frame in zip(static.codes, [moving.codes[reference]] * 3):
        assert static_frame.shape == reference_frame.shape  # every static frame shows the reference content
    assert static.params["objects"][0]["center"] == moving.params["objects"][0]["center"]


@pytest.mark.parametrize("ev_set", DEFAULT_EV_SETS)
def test_radiance_is_in_literal_ev_units(ev_set):
    """R * 2**ev_ref ~= ldr_ref**2.2 on well-exposed reference pixels, for every default EV set."""
    for index in range(3):
        scene = synthesize_scene(9, index, SIZE, ev_sets=[ev_set], noise=False)
        reference = scene.params["reference_index"]
        ldr = scene.images[reference].astype(np.float64)
        well = (ldr > 0.1) & (ldr < 0.9)
        assert well.mean() > 0.05
        predicted = scene.radiance.astype(np.float64) * 2.0 ** scene.exposures[reference]
        np.testing.assert_allclose(predicted[well], ldr[well] ** 2.2, rtol=1e-3, atol=1e-5)
    # Shifting every EV by -2 (0/2/4 -> -2/0/2) scales the radiance of the same scene by exactly 4.
    low = synthesize_scene(9, 0, SIZE, ev_sets=[(-2.0, 0.0, 2.0)], noise=False)
    high = synthesize_scene(9, 0, SIZE, ev_sets=[(0.0, 2.0, 4.0)], noise=False)
    np.testing.assert_allclose(low.radiance, 4.0 * high.radiance, rtol=1e-6)


def _motion_stats(strength: tuple[float, float], scenes: int = 24, size=(32, 48)) -> tuple[np.ndarray, np.ndarray]:
    """Camera mean displacement and object displacement per frame step, as fractions of the width."""
    camera, objects = [], []
    for index in range(scenes):
        params = synthesize_scene(0, index, size, motion_strength=strength, noise=False).params
        camera += [frame["camera"]["mean_displacement_px"] / size[1] for frame in params["frames"] if frame["camera"]]
        objects += [item["max_displacement_px"] / size[1] for item in params["objects"]]
    return np.asarray(camera), np.asarray(objects)


def test_harder_motion_moves_more_than_the_old_ranges():
    old = np.eye(3)
    old[:2] = cv2.getRotationMatrix2D((SIZE[1] / 2, SIZE[0] / 2), OLD_CAMERA["angle"], 1 + OLD_CAMERA["zoom"])
    old[:2, 2] += OLD_CAMERA["shift"] * SIZE[1]
    old_camera = displacement(old, SIZE)[0] / SIZE[1]  # the old jitter at its extremes (scale-free)
    easy_camera, easy_objects = _motion_stats((0.0, 0.0))
    assert easy_camera.max() <= old_camera * 1.01 and easy_objects.max() <= OLD_OBJECT_SPEED * 1.01
    camera, objects = _motion_stats((0.0, 1.0))  # the default: easy to hard
    assert np.percentile(camera, 75) > old_camera and camera.max() > 2.5 * old_camera
    assert np.percentile(objects, 75) > 1.3 * OLD_OBJECT_SPEED and objects.max() > 2.5 * OLD_OBJECT_SPEED
    hard_camera, hard_objects = _motion_stats((1.0, 1.0))
    assert np.median(hard_camera) > 1.5 * old_camera and np.median(hard_objects) > 1.5 * OLD_OBJECT_SPEED
    # The homographies carry a perspective part, and the rendered frames change more.
    params = synthesize_scene(0, 0, SIZE, motion_strength=(1.0, 1.0)).params
    assert any(abs(frame["camera"]["homography"][2][0]) > 1e-6 for frame in params["frames"] if frame["camera"])
    changed = []
    for strength in ((0.0, 0.0), (1.0, 1.0)):
        total = 0.0
        for index in range(6):
            still = synthesize_scene(1, index, SIZE, motion=False, noise=False)
            moved = synthesize_scene(1, index, SIZE, motion_strength=strength, noise=False)
            total += sum(np.abs(a - b).mean() for a, b in zip(moved.images, still.images))
        changed.append(total)
    assert changed[1] > 1.5 * changed[0]


def test_objects_deform_non_rigidly():
    residuals, changes, joints = [], [], 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        objects = draw_objects(rng, SIZE, 4)
        draw_motion(rng, SIZE, objects, 3, strength=1.0)
        for item in objects:
            assert item.deformation(0) is None  # the reference pose is undeformed
            map_x, map_y = item.deformation(1)
            inside = item.mask > 0.5
            y, x = np.nonzero(inside)
            design = np.stack([x, y, np.ones_like(x)], axis=1).astype(np.float64)
            target = np.stack([map_x[inside], map_y[inside]], axis=1).astype(np.float64)
            fit, *_ = np.linalg.lstsq(design, target, rcond=None)  # the best affine (rigid) explanation
            residuals.append(np.sqrt(np.mean(np.sum((design @ fit - target) ** 2, axis=1))) / item.radius)
            joints += item.joint is not None
            canvas = item.canvas(1)
            assert canvas.shape == (*item.mask.shape, 4)
            changes.append(np.abs(canvas[..., 3] - item.mask).max())
    residuals = np.asarray(residuals)
    assert np.median(residuals) > 0.02  # a displacement no affine map explains, relative to the object's size
    assert np.median(changes) > 0.5  # the outline itself moves
    assert joints >= 3  # some objects have an articulated part


def test_static_scene_has_no_motion_in_params():
    params = synthesize_scene(3, 1, SIZE, motion=False).params
    assert params["motion_strength"] == 0.0
    assert all(frame["camera"] is None for frame in params["frames"])
    assert all(item["max_displacement_px"] == 0.0 for item in params["objects"])
    assert 1 <= len(params["objects"]) <= 5


def test_synthesis_is_deterministic_by_seed_and_index():
    first = synthesize_scene(5, 2, SIZE)
    again = synthesize_scene(5, 2, SIZE)
    for a, b in zip(first.codes, again.codes):
        np.testing.assert_array_equal(a, b)
    assert first.params == again.params
    assert json.loads(json.dumps(first.params)) == first.params  # scene.json holds everything
    assert {"homography", "mean_displacement_px"} <= set(first.params["frames"][0]["camera"])
    assert {"velocity", "spin", "zoom", "elastic_px_per_step", "joint"} <= set(first.params["objects"][0])
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
        ({"ev_sets": [(0,)]}, "2 to 9 increasing values"),
        ({"ev_sets": [tuple(range(10))]}, "2 to 9 increasing values"),
        ({"ev_sets": [(4, 2, 0)]}, "2 to 9 increasing values"),
        ({"camera_mix": "phone"}, "--camera phone"),
        ({"camera_mix": CameraMix(formats=("dng",)), "size": (33, 48)}, "even sides"),
        ({"radiance_dir": "/nonexistent/maps"}, "not a folder"),
        ({"procedural_fraction": 1.5}, r"\[0, 1\]"),
        ({"split": "train"}, "needs --radiance-dir"),
        ({"split": "validation"}, "use one of"),
        ({"motion_strength": (0.5, 2.0)}, "motion-strength"),
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


def test_cli_parses_negative_ev_sets_as_typed(tmp_path, capsys):
    parser = build_parser()
    for argv in (["--ev-sets", "-2,0,2;0,2,4"], ["--ev-sets=-2,0,2;0,2,4"], ["--ev-sets", "-2,0,2", "--ev-sets", "0,2,4"]):
        args = parser.parse_args(["synth", "--out", str(tmp_path), *argv])  # without cli.main's argv rewriting
        assert args.ev_sets == [(-2.0, 0.0, 2.0), (0.0, 2.0, 4.0)]
    args = parser.parse_args(["synth", "--out", str(tmp_path), "--motion-strength", "0.8,1", "--split", "heldout"])
    assert args.motion_strength == (0.8, 1.0) and args.split == "heldout"
    out = tmp_path / "negative"
    arguments = ["synth", "--out", str(out), "--scenes", "6", "--size", "32x48", "--seed", "1", "--workers", "1"]
    assert main(arguments + ["--ev-sets", "-2,0,2;0,2,4"]) == 0
    sets = {tuple(read_exposure_txt(folder / "exposure.txt")) for folder in sorted(out.iterdir())}
    assert sets == {(-2.0, 0.0, 2.0), (0.0, 2.0, 4.0)}
    assert "motion strength:" in capsys.readouterr().out


def test_split_radiance_maps_without_shared_data():
    paths = [Path("a/Desk.exr"), Path("b/crystal_falls_1k.hdr"), Path("b/CRYSTAL_FALLS_1k.exr"), Path("c/new_map.hdr")]
    assert split_radiance_maps(paths, "heldout") == paths[1:3]  # by stem, any case or format
    assert split_radiance_maps(paths, "train") == [paths[0], paths[3]]  # everything else is train
    assert split_radiance_maps(paths, "all") == paths
    with pytest.raises(ValueError, match="split"):
        split_radiance_maps(paths, "test")


def _shared_maps(shared_data: Path) -> list[Path]:
    return find_radiance_maps([shared_data / "real_hdr", shared_data / "real_hdr_more"])


def test_heldout_split_is_fixed_disjoint_and_covers_the_shared_maps(shared_data):
    maps = _shared_maps(shared_data)
    train, heldout = split_radiance_maps(maps, "train"), split_radiance_maps(maps, "heldout")
    assert not set(train) & set(heldout) and sorted(train + heldout) == sorted(maps)
    assert sorted(path.name for path in heldout) == sorted(HELDOUT_MAPS)  # every listed map exists
    assert 0.15 <= len(heldout) / len(maps) <= 0.25
    for kind in ("outdoor sun", "overcast", "urban", "forest", "night", "interior"):
        assert any(kind in description for description in HELDOUT_MAPS.values()), kind
    example_sources = {json.loads(path.read_text())["source"]["file"] for path in REPOSITORY.glob("examples/*/scene.json")}
    assert example_sources == {"Desk.exr", "StillLife.exr", "MtTamWest.exr"}  # the bundled examples' sources ...
    assert not any(is_heldout(name) for name in example_sources)  # ... are train maps


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_cli_split_uses_only_that_split(shared_data, tmp_path, capsys, split):
    out = tmp_path / split
    arguments = ["synth", "--out", str(out), "--scenes", "10", "--size", "32x48", "--seed", "5", "--workers", "1"]
    arguments += ["--radiance-dir", str(shared_data / "real_hdr"), "--radiance-dir", str(shared_data / "real_hdr_more")]
    extra = ["--procedural-fraction", "0"] if split == "train" else []  # heldout defaults to real maps only
    assert main(arguments + ["--split", split] + extra) == 0
    sources = [json.loads((folder / "scene.json").read_text())["source"] for folder in sorted(out.iterdir())]
    assert len(sources) == 10 and all(source["kind"] == "real" for source in sources)
    assert all(source["split"] == split for source in sources)
    assert all(is_heldout(source["file"]) == (split == "heldout") for source in sources)
    assert all((source["file"] in HELDOUT_MAPS) == (split == "heldout") for source in sources)
    assert f"10 {split} scenes" in capsys.readouterr().out


# -- realistic cameras (issue 22) ---------------------------------------------------------------------------------


def _well_exposed_ratio(scene, frame: int, response: Response, band=(0.05, 0.7)) -> np.ndarray:
    """Per channel, the median of linearised frame / (radiance * 2**nominal_ev) where the signal lies in ``band``."""
    linear = response.linearize(scene.images[frame]).astype(np.float64)
    signal = scene.radiance.astype(np.float64) * 2.0 ** scene.exposures[frame]
    well = (signal > band[0]) & (signal < band[1])
    assert well.mean() > 0.02
    return np.array([np.median(linear[..., c][well[..., c]] / signal[..., c][well[..., c]]) for c in range(3)])


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_each_curve_encodes_the_signal_and_its_inverse_recovers_it(curve):
    mix = CameraMix(curves=(curve,))
    scene = synthesize_scene(4, 0, SIZE, ev_sets=[(-2.0, 0.0, 2.0)], motion=False, noise=False, camera_mix=mix)
    assert scene.params["camera"]["curve"] == curve and scene.params["camera"]["response"] in ("gamma:2.2", curve)
    true = Response.from_curve(curve)
    for frame in range(3):
        np.testing.assert_allclose(_well_exposed_ratio(scene, frame, true), 1.0, atol=3e-3)
    if curve != "gamma2.2":  # linearised as gamma 2.2, the other cameras' shadows or highlights are > 20 % off
        gamma = Response.from_gamma(2.2)
        ratios = np.concatenate([_well_exposed_ratio(scene, 1, gamma, band) for band in ((0.005, 0.03), (0.3, 0.7))])
        assert np.max(np.abs(np.log(ratios))) > 0.2, ratios


def test_true_exposures_and_white_balance_differ_from_the_nominal_by_a_few_percent():
    mix = CameraMix(exposure_error=0.05, white_balance_error=0.04)
    scene = synthesize_scene(2, 3, SIZE, ev_sets=[(-4.0, -2.0, 0.0, 2.0, 4.0)], motion=False, noise=False,
                             camera_mix=mix)
    camera, reference = scene.params["camera"], scene.params["reference_index"]
    factors, gains = np.array(camera["exposure_factors"]), np.array(camera["white_balance"])
    assert factors[reference] == 1.0 and np.all(gains[reference] == 1.0)
    assert np.all(np.abs(factors - 1) <= 0.05) and np.any(np.abs(factors - 1) > 0.005)
    assert np.all(np.abs(gains - 1) <= 0.04) and np.any(np.abs(gains - 1) > 0.005)
    np.testing.assert_allclose(scene.params["true_exposures"], np.array(scene.exposures) + np.log2(factors))
    gamma = Response.from_gamma(2.2)
    for frame in (1, 2, 3):  # the frames with enough well-exposed pixels
        np.testing.assert_allclose(_well_exposed_ratio(scene, frame, gamma), factors[frame] * gains[frame], atol=2e-3)


@pytest.mark.parametrize("ev_set", [(-1.0, 1.0), (-4.0, -2.0, 0.0, 2.0, 4.0), tuple(float(ev) for ev in range(-4, 5))])
def test_any_number_of_frames_from_2_to_9(tmp_path, ev_set):
    scene = synthesize_scene(1, 0, SIZE, ev_sets=[ev_set], camera_mix="realistic")
    count = len(ev_set)
    assert len(scene.codes) == count and scene.params["num_frames"] == count
    assert scene.params["reference_index"] == count // 2
    fractions = [frame["saturated_fraction"] for frame in scene.params["frames"]]
    assert fractions[-1] > fractions[0]
    folder = write_scene(scene, tmp_path / "scene")
    scan = scan_scene(folder, count)
    suffix = scene.params["camera"]["format"]
    assert [path.name for path in scan.images] == [f"input_{i}.{suffix}" for i in range(1, count + 1)]
    assert read_exposure_txt(folder / "exposure.txt") == list(ev_set)
    assert [read_ldr(path).shape for path in scan.images] == [(*SIZE, 3)] * count


def test_png_and_jpeg_files_hold_8_bit_codes_and_jpegs_real_exif(tmp_path):
    nominal = (-2.0, 0.0, 2.0)
    for file_format in ("png", "jpg"):
        scene = synthesize_scene(5, 1, SIZE, ev_sets=[nominal], camera_mix=CameraMix(formats=(file_format,)))
        folder = write_scene(scene, tmp_path / file_format)
        paths = [folder / name for name in scene.file_names]
        assert all(codes.dtype == np.uint8 for codes in scene.codes)
        for path, image in zip(paths, scene.images):
            error = np.abs(read_ldr(path) - image)
            if file_format == "png":
                assert error.max() == 0  # lossless
            else:
                assert 0 < error.mean() < 0.02  # JPEG's loss, a few codes
    quality = scene.params["camera"]["jpeg_quality"]
    assert 85 <= quality <= 95
    assert exposures_from_exif(paths) == pytest.approx(list(nominal), abs=1e-6)  # EXIF times match exposure.txt
    with Image.open(paths[0]) as image:
        exif = image.getexif().get_ifd(0x8769)
    assert float(exif[0x829A]) == pytest.approx(scene.params["frames"][0]["exposure_time_s"], rel=1e-5)
    assert float(exif[0x9204]) == pytest.approx(-2.0) and exif[0x8827] == scene.params["camera"]["iso"]


def test_dng_brackets_are_linear_bayer_mosaics_that_libraw_reads(tmp_path):
    rawpy = pytest.importorskip("rawpy")
    scene = synthesize_scene(6, 0, SIZE, ev_sets=[(-2.0, 0.0, 2.0)], motion=False, noise=False,
                             camera_mix=CameraMix(formats=("dng",), exposure_error=0.03))
    camera = scene.params["camera"]
    assert camera["curve"] == "linear" and camera["response"] == "linear"
    folder = write_scene(scene, tmp_path / "dng")
    neutral = np.array(camera["as_shot_neutral"])
    compared = 0
    for frame, name in enumerate(scene.file_names):
        with rawpy.imread(str(folder / name)) as raw:
            np.testing.assert_array_equal(raw.raw_image, scene.codes[frame])
            assert raw.white_level == 16383 and list(raw.black_level_per_channel) == [512] * 4
            assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]]  # RGGB
            np.testing.assert_allclose(1.0 / np.array(raw.camera_whitebalance[:3]), neutral, rtol=1e-3)
            rgb = raw.postprocess(gamma=(1, 1), no_auto_bright=True, output_bps=16, user_wb=[1, 1, 1, 1],
                                  output_color=rawpy.ColorSpace.raw, half_size=True)
        # White-balanced by the as-shot neutral, the linear data is the radiance at the frame's true exposure.
        linear = rgb.astype(np.float64) / 65535 / neutral
        true_ev = scene.params["true_exposures"][frame]
        signal = cv2.resize(scene.radiance, (SIZE[1] // 2, SIZE[0] // 2), interpolation=cv2.INTER_AREA) * 2.0**true_ev
        well = (signal > 0.05) & (signal < 0.5)
        if well.mean() > 0.05:
            assert np.median(linear[well] / signal[well]) == pytest.approx(1.0, abs=0.02)
            compared += 1
        with tifffile.TiffFile(folder / name) as tiff:
            time = tiff.pages[0].tags[33434].value
        assert time[0] / time[1] == pytest.approx(scene.params["frames"][frame]["exposure_time_s"])
    assert compared >= 2


def test_motion_blur_streaks_only_the_frames_longer_than_the_reference():
    arguments = dict(ev_sets=[(-4.0, -2.0, 0.0, 2.0, 4.0)], noise=False, motion_strength=(1.0, 1.0))
    sharp = synthesize_scene(3, 2, SIZE, camera_mix=CameraMix(), **arguments)
    blurred = synthesize_scene(3, 2, SIZE, camera_mix=CameraMix(motion_blur=2.0), **arguments)
    steps = blurred.params["camera"]["blur_steps"]
    assert steps[:3] == [0.0, 0.0, 0.0] and 0 < steps[3] < steps[4] and steps[4] > 0.3
    for frame in range(3):
        np.testing.assert_array_equal(blurred.codes[frame], sharp.codes[frame])
    detail = lambda image: np.abs(cv2.Laplacian(image, cv2.CV_32F)).mean()  # noqa: E731
    assert detail(blurred.images[4]) < 0.9 * detail(sharp.images[4])
    static = synthesize_scene(3, 2, SIZE, camera_mix=CameraMix(motion_blur=2.0), motion=False, **arguments)
    assert static.params["camera"]["blur_steps"] == [0.0] * 5  # a static bracket stays sharp


def test_cli_realistic_balanced_set_is_deterministic_and_records_the_camera(tmp_path, capsys):
    arguments = ["synth", "--scenes", "8", "--size", "32x48", "--seed", "2", "--camera", "realistic", "--balanced",
                 "--curves", "srgb,filmic", "--formats", "png,jpg", "--ev-sets", "-2,0;-4,-2,0,2,4"]
    assert main(arguments + ["--out", str(tmp_path / "serial"), "--workers", "1"]) == 0
    summary = capsys.readouterr().out
    assert "frames per bracket: 2 x4, 5 x4" in summary and "filmic jpg x2" in summary
    assert main(arguments + ["--out", str(tmp_path / "parallel"), "--workers", "2"]) == 0
    combos = set()
    for serial in sorted((tmp_path / "serial").iterdir()):
        params = json.loads((serial / "scene.json").read_text())
        camera = params["camera"]
        combos.add((camera["curve"], camera["format"], params["num_frames"]))
        assert {"exposure_factors", "white_balance", "exposure_times_s", "blur_steps", "iso", "f_number"} <= set(camera)
        assert len(params["true_exposures"]) == len(params["exposures"]) == params["num_frames"]
        for path in serial.iterdir():
            assert path.read_bytes() == (tmp_path / "parallel" / serial.name / path.name).read_bytes()
    assert len(combos) == 8  # every curve x format x EV set once
