"""One scene scanner (io.scene) for merge, evaluate and the datasets; one atomic-write API."""

from __future__ import annotations

import numpy as np
import pytest

from diffhdr_diffusers.data.scenes import check_scene
from diffhdr_diffusers.errors import InputError, OutputError
from diffhdr_diffusers.evaluation import discover_scenes
from diffhdr_diffusers.io import atomic_folder, load_bracket, scan_scene, write_ldr, write_radiance


def _scene(folder, names=("8.tif", "9.tif", "10.tif"), exposure=("exposure.txt", "0\n2\n4\n")):
    folder.mkdir(parents=True)
    for index, name in enumerate(names):
        write_ldr(folder / name, np.full((16, 12, 3), 0.2 * (index + 1)))
    if exposure:
        (folder / exposure[0]).write_text(exposure[1])
    write_radiance(folder / "HDRImg.hdr", np.ones((16, 12, 3), np.float32))
    return folder


def test_natural_order_is_used_by_merge_and_datasets(tmp_path):
    scene = _scene(tmp_path / "s")
    names = ["8.tif", "9.tif", "10.tif"]
    assert [path.name for path in scan_scene(scene).images] == names
    assert [path.name for path in load_bracket(scene).paths] == names
    assert [path.name for path in check_scene(scene, "s").ldr_paths] == names


@pytest.mark.parametrize("exposure", [("Exposure.TXT", "0\n2\n4\n"), ("exposure_times.txt", "1/100\n1/25\n4/25\n")])
def test_datasets_and_evaluate_accept_every_exposure_file_merge_accepts(tmp_path, exposure):
    scene = _scene(tmp_path / "root" / "s", exposure=exposure)
    expected = load_bracket(scene).exposures
    assert list(check_scene(scene, "s").exposures) == pytest.approx(expected)
    assert discover_scenes(tmp_path / "root") == [scene]


def test_named_ground_truth_wins_over_other_radiance_files(tmp_path):
    scene = _scene(tmp_path / "s")
    write_radiance(scene / "prediction.exr", np.ones((16, 12, 3), np.float32))
    assert load_bracket(scene).ground_truth == scene / "HDRImg.hdr"
    assert check_scene(scene, "s").hdr_path == scene / "HDRImg.hdr"
    write_radiance(scene / "hdrimg.exr", np.ones((16, 12, 3), np.float32))
    with pytest.raises(InputError, match="several ground truths"):
        scan_scene(scene)


def test_two_exposure_files_are_an_error_everywhere(tmp_path):
    scene = _scene(tmp_path / "s")
    (scene / "relative_exposures.txt").write_text("1:4:16\n")
    with pytest.raises(InputError, match="several exposure files"):
        load_bracket(scene)
    with pytest.raises(InputError, match="several exposure files"):
        check_scene(scene, "s")


def test_atomic_folder_swaps_in_complete_folders_only(tmp_path):
    target = tmp_path / "out"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(OutputError, match="already exists"):
        with atomic_folder(target):
            pass
    with pytest.raises(RuntimeError):
        with atomic_folder(target, overwrite=True) as staging:
            (staging / "a.txt").write_text("second")
            raise RuntimeError("writer failed")
    assert (target / "a.txt").read_text() == "first"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
