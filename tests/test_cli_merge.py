"""``diffhdr merge`` on good input: what it writes, what it prints, and that its options reach the pipeline.

Bad input is covered by ``tests/test_reliability.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from merge_support import EXPOSURES, run_cli

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.io import load_bracket, read_radiance
from diffhdr_diffusers.schedulers import scheduler_from_name


def expected(model_dir, scene, seed=0, scheduler=None, **options) -> np.ndarray:
    """The radiance the Python API gives for the same bracket and settings."""
    pipe = DiffHDRPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    if scheduler:
        pipe.scheduler = scheduler_from_name(scheduler, pipe.scheduler.config)
    bracket = load_bracket(scene)
    return pipe(bracket.images, bracket.exposures, generator=torch.Generator().manual_seed(seed), **options).hdr[0]


def merge(capfd, *argv) -> tuple[str, str]:
    """Run ``diffhdr merge``; the test brackets are gamma-2.2 encoded, so that response unless one is given."""
    if "--response" not in argv:
        argv = (*argv, "--response", "gamma:2.2")
    code, out, err = run_cli(["merge", *argv], capfd)
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


def test_writes_every_output_and_says_where(scene, model_dir, tmp_path, capfd):
    hdr, exr, png = tmp_path / "m.hdr", tmp_path / "m.exr", tmp_path / "m.png"
    out, err = merge(capfd, scene, "-o", hdr, "-o", exr, "--preview", png, "--model", model_dir)
    *lines, last = out.splitlines()
    assert lines == ["Merging scene with the model " + str(model_dir) + ": 3 exposures at EV 0, 2, 4, 36x20 pixels",
                     "camera response gamma:2.2, exposures EV -2, 0, +2 from the reference",
                     f"wrote {hdr}", f"wrote {exr}", f"wrote {png}"]
    total, merging = map(float, re.fullmatch(r"done in ([\d.]+) s \(([\d.]+) s of it merging\)", last).groups())
    assert 0 < merging <= total
    assert "2/2" in err  # the progress bar ran to the last of the model's 2 default steps
    reference = expected(model_dir, scene)
    np.testing.assert_array_equal(read_radiance(exr), reference)  # float32 EXR round-trips exactly
    # RGBE shares one exponent per pixel: 8 mantissa bits relative to the pixel's largest channel.
    error = np.abs(read_radiance(hdr) - reference)
    assert np.all(error <= reference.max(axis=2, keepdims=True) * 2**-7 + 1e-7)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.exr", "m.hdr", "m.png", "scene"]


def test_image_files_with_exposures_equal_the_scene_folder(scene, model_dir, tmp_path, capfd):
    files = [scene / f"{name}.tif" for name in ("short", "medium", "long")]
    merge(capfd, *files, "--exposures", ",".join(map(str, EXPOSURES)), "-o", tmp_path / "files.exr", "--model", model_dir)
    merge(capfd, scene, "-o", tmp_path / "folder.exr", "--model", model_dir)
    np.testing.assert_array_equal(read_radiance(tmp_path / "files.exr"), read_radiance(tmp_path / "folder.exr"))


@pytest.mark.parametrize("argv, options", [
    (["--seed", "3"], {"seed": 3}),
    (["--steps", "3"], {"num_inference_steps": 3}),
    (["--patch-size", "16", "--stride", "8"], {"patch_size": 16, "stride": 8}),
    (["--condition-per-window"], {"condition_per_window": True}),
    (["--scheduler", "dpm++", "--steps", "3"], {"scheduler": "dpm++", "num_inference_steps": 3}),
    (["--window-blend", "taper"], {"window_blend": "taper"}),
], ids=["seed", "steps", "windows", "condition_per_window", "scheduler", "window_blend"])
def test_options_reach_the_pipeline(argv, options, scene, model_dir, tmp_path, capfd):
    merge(capfd, scene, "-o", tmp_path / "m.exr", "--model", model_dir, *argv)
    result = read_radiance(tmp_path / "m.exr")
    np.testing.assert_array_equal(result, expected(model_dir, scene, **options))
    assert not np.array_equal(result, expected(model_dir, scene)), "the option changed nothing"


def test_window_batch_size_reaches_the_pipeline(scene, model_dir, tmp_path, capfd, monkeypatch):
    calls = []
    original = DiffHDRPipeline.__call__
    monkeypatch.setattr(DiffHDRPipeline, "__call__", lambda self, *a, **k: calls.append(k) or original(self, *a, **k))
    merge(capfd, scene, "-o", tmp_path / "m.exr", "--model", model_dir, "--window-batch-size", "2")
    assert calls and calls[0]["window_batch_size"] == 2
    np.testing.assert_allclose(read_radiance(tmp_path / "m.exr"), expected(model_dir, scene), atol=1e-5)


def test_overwrite_replaces_atomically(scene, model_dir, tmp_path, capfd):
    target = tmp_path / "m.exr"
    merge(capfd, scene, "-o", target, "--model", model_dir, "--seed", "1")
    first = target.read_bytes()
    merge(capfd, scene, "-o", target, "--model", model_dir, "--seed", "2", "--overwrite")
    assert target.read_bytes() != first
    np.testing.assert_array_equal(read_radiance(target), expected(model_dir, scene, seed=2))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.exr", "scene"]


def test_parsing_the_command_line_imports_neither_torch_nor_diffusers():
    # `diffhdr <command> --help` and argument errors must answer at once; heavy imports wait for `run`.
    code = ("import sys; from diffhdr_diffusers.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'diffusers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
