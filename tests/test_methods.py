"""The merge-method layer (``diffhdr_diffusers.methods``) and the front ends that share it: the camera response
applied once and recorded, any number of frames, the reference frame, presets, and one ensemble for CLI and app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from merge_support import bracket_arrays, run_cli, single_error_line, tiny_pipeline

from diffhdr_diffusers.camera import Response, apply_camera
from diffhdr_diffusers.commands.options import CLASSICAL
from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.io import check_output_path, read_radiance, write_ldr
from diffhdr_diffusers.io.radiance import read_radiance_metadata
from diffhdr_diffusers.merging import flow_merge_radiance
from diffhdr_diffusers.methods import CLASSICAL as METHOD_NAMES
from diffhdr_diffusers.methods import FrameCountError, fast_preset, load_method


def _bracket(evs, size=(48, 64), seed=2):
    scene = synthesize_scene(seed=seed, index=0, size=size, ev_sets=[tuple(evs)])
    return scene.images, list(evs)


def _write(folder, images, suffix=".tif"):
    folder.mkdir(parents=True, exist_ok=True)
    return [write_ldr(folder / f"{index}{suffix}", image) for index, image in enumerate(images)]


def test_the_cli_knows_the_classical_methods_of_the_layer():
    assert CLASSICAL == METHOD_NAMES


def test_a_method_applies_the_response_once_then_merges_the_canonical_frames():
    images, evs = _bracket((-2.0, 0.0, 2.0))
    srgb = Response.srgb()
    frames = [srgb.encode(np.asarray(image, np.float32) ** 2.2) for image in images]  # an sRGB camera
    result = load_method("flow-merge", response="srgb")(frames, evs)
    canonical, camera = apply_camera(frames, evs, "srgb")
    np.testing.assert_array_equal(result.radiance, flow_merge_radiance(canonical, camera.exposures))
    assert result.camera.response.name == "srgb" and result.metadata()["camera"]["response"] == "srgb"
    assert not result.rejected and result.seconds >= result.timing["merge"] > 0
    # A gamma-2.2 response leaves the frames as they are: the merge of the frames themselves.
    plain = load_method("flow-merge", response="gamma:2.2")(images, evs)
    np.testing.assert_array_equal(plain.radiance, flow_merge_radiance(images, evs))


def test_reference_index_reaches_the_merge():
    images, evs = _bracket((-2.0, 0.0, 2.0))
    method = load_method("flow-merge", response="gamma:2.2")
    shorter = method(images, evs, reference_index=0)
    assert shorter.reference_index == 0 and method(images, evs).reference_index == 1
    np.testing.assert_array_equal(shorter.radiance, flow_merge_radiance(images, evs, reference_index=0))
    assert not np.array_equal(shorter.radiance, method(images, evs).radiance)
    with pytest.raises(InputError, match="reference index 3"):
        method(images, evs, reference_index=3)


@pytest.mark.parametrize("count", [2, 5])
def test_brackets_of_other_sizes_merge_through_the_cli(count, tmp_path, capfd):
    evs = [2.0 * i - 2.0 * (count // 2) for i in range(count)]
    images, _ = _bracket(evs)
    paths = _write(tmp_path / "scene", images)
    (tmp_path / "scene" / "exposure.txt").write_text("".join(f"{ev:g}\n" for ev in evs))
    code, out, err = run_cli(["merge", tmp_path / "scene", "--method", "flow-merge", "--response", "gamma:2.2",
                              "-o", tmp_path / "folder.exr"], capfd)
    assert code == 0, err
    assert out.startswith(f"Merging scene with flow-merge: {count} exposures")
    code, _, err = run_cli(["merge", *paths, "--method", "flow-merge", "--response", "gamma:2.2",
                            "--exposures", ",".join(map(str, evs)), "-o", tmp_path / "files.exr"], capfd)
    assert code == 0, err
    merged = read_radiance(tmp_path / "files.exr")
    np.testing.assert_array_equal(merged, read_radiance(tmp_path / "folder.exr"))
    np.testing.assert_array_equal(merged, flow_merge_radiance(images, evs, count // 2))


def test_the_model_needs_its_frame_count_and_says_what_merges_other_brackets(tmp_path, capfd, model_dir):
    method = load_method(tiny_pipeline(), response="gamma:2.2")
    images = bracket_arrays((16, 24))
    with pytest.raises(FrameCountError, match="exactly 3 frames"):
        method(images[:2], [0.0, 2.0])
    paths = _write(tmp_path / "two", images[:2])
    code, _, err = run_cli(["merge", *paths, "--exposures", "0,2", "--model", model_dir, "-o", tmp_path / "m.exr"],
                           capfd)
    assert code == 2
    line = single_error_line(err)
    assert "exactly 3 frames" in line and "--method flow-merge" in line
    assert not (tmp_path / "m.exr").exists()
    # The app passes the bundled pipeline loaded: its errors name it as such, not by its folder inside the package.
    bundled = load_method(load_method(None).pipeline)
    assert bundled.exposure_counts == (2, 9)  # one set of weights for any bracket size
    with pytest.raises(InputError, match="^reference index 0: the bundled model merges onto frame 1 .the middle one."):
        bundled(images, [0.0, 2.0, 4.0], reference_index=0)
    with pytest.raises(FrameCountError, match="merges exactly 3 frames, but this bracket has 10; every method merges "
                                              "2 to 9: leave frames out"):  # flow-merge would refuse it too
        method(images * 3 + images[:1], [float(ev) for ev in range(10)])


def test_the_batch_settings_name_the_weights_and_record_fast_only_where_it_changes_something():
    one, other = load_method(tiny_pipeline(seed=0)), load_method(tiny_pipeline(seed=1))
    assert len(one.settings["model_weights"]) == 12
    assert one.settings["model_weights"] == load_method(tiny_pipeline(seed=0)).settings["model_weights"]
    assert one.settings["model_weights"] != other.settings["model_weights"]  # a rerun after new weights is no "same"
    assert (one.settings["model"], other.settings["model"]) == ("pipeline", "pipeline")
    assert load_method(tiny_pipeline(steps=2), fast=True).settings["fast"]  # 2 steps -> 1
    one_step = load_method(tiny_pipeline(steps=1), fast=True)  # its fast preset is its default
    assert not one_step.settings["fast"] and one_step.settings == load_method(tiny_pipeline(steps=1)).settings


def test_the_output_records_the_response_used(tmp_path, capfd):
    images, evs = _bracket((-2.0, 0.0, 2.0))
    paths = _write(tmp_path / "in", images)
    code, out, err = run_cli(["merge", *paths, "--exposures", "-2,0,2", "--method", "flow-merge", "--response", "srgb",
                              "-o", tmp_path / "m.exr"], capfd)
    assert code == 0, err
    assert "camera response srgb, exposures EV -2, 0, +2" in out
    camera = json.loads(read_radiance_metadata(tmp_path / "m.exr")["camera"])
    assert camera["response"] == "srgb" and camera["exposures"] == [-2.0, 0.0, 2.0] and not camera["fallback"]


def test_auto_response_falls_back_with_a_warning_never_silently(tmp_path, capfd):
    images, evs = _bracket((-2.0, 0.0, 2.0))
    paths = _write(tmp_path / "in", images)
    code, out, err = run_cli(["merge", *paths, "--exposures", "-2,0,2", "--method", "naive-merge",
                              "-o", tmp_path / "m.exr"], capfd)
    assert code == 0, err
    camera = json.loads(read_radiance_metadata(tmp_path / "m.exr")["camera"])
    assert camera["source"].startswith("auto")
    # Whatever the estimator decides, a fallback is recorded and warned about; an estimate is neither.
    warned = "camera response not estimable" in err
    assert warned == camera["fallback"]


def test_a_bad_response_fails_before_any_work(tmp_path, capfd):
    images, _ = _bracket((-2.0, 0.0, 2.0))
    paths = _write(tmp_path / "in", images)
    (tmp_path / "bad.json").write_text('{"format": "diffhdr-camera-response", "version": 1, "name": "x", '
                                       '"codes": [0, 0.5, 1], "inverse": [[0, 0.7, 1], [0, 0.2, 1], [0, 0.9, 0.5]]}')
    for response, message in (("gamma:x", "gamma:G"), (tmp_path / "bad.json", "not monotone")):
        code, _, err = run_cli(["merge", *paths, "--exposures", "-2,0,2", "--method", "flow-merge", "--response",
                                response, "-o", tmp_path / "m.exr"], capfd)
        assert code == 2 and message in single_error_line(err) and "--response" in err
    assert not (tmp_path / "m.exr").exists()


def test_the_fast_preset_is_never_slower_than_the_default():
    from diffhdr_diffusers.pipelines.presets import window_passes

    bundled = load_method(None).pipeline.config  # one step on small windows by default: nothing is cheaper
    assert fast_preset(bundled) == {}
    four_steps = {**bundled, "default_num_inference_steps": 4}  # the previous bundled model's default
    fast = fast_preset(four_steps)
    assert fast == {"num_inference_steps": 2} and window_passes(four_steps, fast) <= 0.5 * window_passes(four_steps)


def test_sampling_options_are_refused_by_a_classical_method():
    with pytest.raises(InputError, match="num_inference_steps"):
        load_method("flow-merge", num_inference_steps=3)
    with pytest.raises(InputError, match="unknown sampling option"):
        load_method("flow-merge", steps=3)


def test_the_apps_ensemble_is_the_clis(model_dir, scene, tmp_path, capfd):
    from diffhdr_diffusers.app import session
    from diffhdr_diffusers.methods.frames import read_bracket

    code, _, err = run_cli(["merge", scene, "-o", tmp_path / "cli.exr", "--model", model_dir, "--seed", "3",
                            "--ensemble", "2", "--fast", "--response", "gamma:2.2", "--device", "cpu"], capfd)
    assert code == 0, err
    settings = session.MergeSettings(method=session.METHOD_CUSTOM, model=str(model_dir), fast=True, seed=3,
                                     ensemble=2, response="gamma:2.2")
    result = session.merge(read_bracket(scene), settings)
    np.testing.assert_array_equal(result.radiance, read_radiance(tmp_path / "cli.exr"))
    assert result.uncertainty is not None and result.camera["response"] == "gamma:2.2"


def test_library_errors_name_no_command_line_flag(tmp_path, capfd):
    target = tmp_path / "m.exr"
    target.write_bytes(b"x")
    with pytest.raises(Exception) as error:
        check_output_path(target, overwrite=False)
    assert "--" not in str(error.value) and "overwriting" in str(error.value)
    images, _ = _bracket((-2.0, 0.0, 2.0))
    paths = _write(tmp_path / "in", images)
    code, _, err = run_cli(["merge", *paths, "--exposures", "-2,0,2", "--method", "flow-merge", "-o", target], capfd)
    assert code != 0 and "--overwrite" in single_error_line(err)  # the CLI words the remedy as its flag


def test_a_folder_of_scene_folders_without_out_says_how_to_merge_a_shoot(tmp_path, capfd):
    images, _ = _bracket((-2.0, 0.0, 2.0), size=(32, 48))
    for scene in ("beach", "hall"):
        _write(tmp_path / "shoot" / scene, images)
    code, _, err = run_cli(["merge", tmp_path / "shoot", "--method", "flow-merge", "-o", tmp_path / "m.jpg"], capfd)
    line = single_error_line(err)
    assert code == 2 and "holds scene folders (beach, hall)" in line and "--out DIR" in line  # before: "found 0"
    assert not (tmp_path / "m.jpg").exists()
    code, out, _ = run_cli(["merge", tmp_path / "shoot", "--out", tmp_path / "out", "--dry-run"], capfd)
    assert code == 0 and "2. hall: 3 frames (folder hall): " in out  # before: "1 folder: hall", no frames
    _write(tmp_path / "shoot" / "solo", images[:1])
    code, out, _ = run_cli(["merge", tmp_path / "shoot", "--out", tmp_path / "out", "--dry-run"], capfd)
    assert code == 0 and "solo: 1 frame (a bracket needs at least 2: it will fail) (folder solo)" in out


def test_calibrate_writes_a_response_file_or_says_why_not(tmp_path, capfd):
    images, _ = _bracket((-2.0, 0.0, 2.0), size=(64, 96))
    _write(tmp_path / "scene", images)
    (tmp_path / "scene" / "exposure.txt").write_text("-2\n0\n2\n")
    output = tmp_path / "camera.json"
    code, out, err = run_cli(["calibrate", tmp_path / "scene", "-o", output], capfd)
    if code == 0:  # an estimate: a file that --response takes
        assert f"wrote {output}" in out and Response.load(output).table.shape[1] == 3
        code, out, err = run_cli(["merge", tmp_path / "scene", "--method", "flow-merge", "--response", output,
                                  "-o", tmp_path / "m.exr"], capfd)
        assert code == 0, err
        assert f"({output})," in out or f"camera response {output}," in out  # the file is named, not "auto"
        assert json.loads(read_radiance_metadata(tmp_path / "m.exr")["camera"])["source"] == str(output)
    else:  # every estimate fell back: one error line with the reason, and no file
        assert code == 2 and "no bracket gave a response estimate" in err.splitlines()[-1]
        assert not output.exists()


def test_the_readme_python_snippet_runs_twice(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    snippet = re.findall(r"## Python API\n\n```python\n(.*?)\n```", readme, flags=re.S)[0]
    assert 'load_method(None, seed=0)' in snippet  # the README shows the bundled model; flow-merge here is faster
    snippet = snippet.replace('load_method(None, seed=0)', 'load_method("flow-merge")')
    snippet = snippet.replace('"examples/', f'"{root}/examples/')
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # a second run replaces the outputs: no "already exists"
        exec(compile(snippet, "README.md", "exec"), {})
    assert json.loads(read_radiance_metadata(tmp_path / "merged.exr")["camera"])["response"]


@pytest.mark.slow
def test_a_frame_of_another_scene_does_not_spoil_the_response_for_the_others(shared_data):
    """sculpture_garden's short and middle frames with horse's long frame in place of its own (a card grouped
    wrongly): estimated with the stranger, the response refused the good short frame too (14 % consistent where
    15 % is needed) and the merge was the middle frame alone. Estimated again without the frame that matched
    nothing, the short frame is merged and says why the estimate left the other out."""
    import cv2

    from diffhdr_diffusers.io import load_bracket

    garden, horse = (load_bracket(shared_data / "real_brackets" / name) for name in ("sculpture_garden", "horse"))
    height, width = garden.images[0].shape[:2]
    frames = [*garden.images[:2], cv2.resize(horse.images[2], (width, height), interpolation=cv2.INTER_AREA)]
    result = load_method("flow-merge")(frames, garden.exposures)
    assert [frame.index for frame in result.rejected] == [2]
    assert "frame 3: refused under the first estimate; estimated again without it, the merge uses 1 more frame" \
        in result.camera.warnings
    names = ["1.tif", "3.tif", "stranger.png"]
    assert any(line.startswith("camera response: stranger.png: refused under") for line in result.warnings(names))
    assert len(result.camera.exposures) == 3 and result.radiance.max() > 3.0  # the short frame's highlights
