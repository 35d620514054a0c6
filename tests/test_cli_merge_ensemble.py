"""``diffhdr merge --ensemble K [--uncertainty PATH.exr]``: the pipeline's ensemble, written by the command."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from merge_support import run_cli

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.io import load_bracket, read_radiance

def test_ensemble_and_uncertainty_are_the_pipelines(scene, model_dir, tmp_path, capfd):
    exr, spread = tmp_path / "m.exr", tmp_path / "u.exr"
    code, out, err = run_cli(["merge", scene, "-o", exr, "--model", model_dir, "--seed", "5", "--ensemble", "3",
                              "--uncertainty", spread, "--response", "gamma:2.2"], capfd)
    assert code == 0, err
    assert out.splitlines()[-3:-1] == [f"wrote {exr}", f"wrote {spread}"]
    pipe = DiffHDRPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=True)
    bracket = load_bracket(scene)
    reference = pipe(bracket.images, bracket.exposures, ensemble_size=3,
                     generator=[torch.Generator().manual_seed(5 + k) for k in range(3)])
    # Same arithmetic on same shapes, and float32 EXR round-trips exactly (the window batch may differ: 1e-4).
    np.testing.assert_allclose(read_radiance(exr), reference.hdr[0], rtol=1e-4, atol=0)
    np.testing.assert_allclose(read_radiance(spread), reference.uncertainty[0], rtol=0, atol=1e-4)
    assert read_radiance(spread).max() > 0


@pytest.mark.parametrize("argv, message", [
    (["--uncertainty", "u.exr"], "needs --ensemble"),
    (["--ensemble", "2", "--method", "reference"], "--model, --ensemble: apply to the DiffHDR model only; drop them with"),
    (["--ensemble", "2", "--uncertainty", "u.hdr"], "unsupported output type"),
    (["--ensemble", "0"], "positive integer"),
])
def test_bad_ensemble_options(scene, model_dir, tmp_path, capfd, argv, message):
    argv = [str(tmp_path / a) if a.startswith("u.") else a for a in argv]
    code, out, err = run_cli(["merge", scene, "-o", tmp_path / "m.exr", "--model", model_dir, *argv], capfd)
    assert code != 0 and message in err and "Traceback" not in err


def test_one_model_only_option_is_named_in_the_singular(scene, tmp_path, capfd):
    code, _, err = run_cli(["merge", scene, "-o", tmp_path / "m.exr", "--steps", "3", "--method", "flow-merge"], capfd)
    assert code == 2 and "--steps: applies to the DiffHDR model only; drop it with --method flow-merge." in err
