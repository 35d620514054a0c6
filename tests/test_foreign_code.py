"""A model folder holding Python files that are not this library's is refused, and its code never runs, whichever
way it is loaded (the Hub pull is tested with the Hub in ``test_hub.py``)."""

from __future__ import annotations

import shutil

import pytest
from merge_support import run_cli

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.errors import ModelLoadError

RUNS = "open(__file__ + '.ran', 'w').close()\n"  # leaves a marker if anything executes the file
# (the file, whether --trust-remote-code then loads the folder, what the refusal names)
CASES = [("evil.py", True, "evil.py"),  # a helper file: refused until trusted, then loaded without running it
         ("diffhdr_diffusers.models.unet.py", False, "trust_remote_code")]  # shadows our module: refused even trusted


@pytest.mark.parametrize("entry", ["python", "cli"])
@pytest.mark.parametrize("name, trusted_loads, trusted_error", CASES, ids=[case[0] for case in CASES])
def test_foreign_code_is_refused_and_never_run(entry, name, trusted_loads, trusted_error, model_dir, scene, tmp_path,
                                               capfd):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    (folder / "unet" / name).write_text(RUNS)

    def load(trust: bool):
        if entry == "python":
            try:
                return isinstance(DiffHDRPipeline.from_pretrained(folder, trust_remote_code=trust), DiffHDRPipeline), ""
            except ModelLoadError as error:
                return False, str(error)
        argv = ["merge", scene, "-o", tmp_path / f"{trust}.exr", "--model", folder, "--response", "gamma:2.2"]
        code, _, err = run_cli([*argv, "--trust-remote-code"] if trust else argv, capfd)
        return code == 0, err

    loaded, message = load(trust=False)
    assert not loaded and name in message and "\n" not in message.strip()
    loaded, message = load(trust=True)
    assert loaded == trusted_loads and (trusted_loads or trusted_error in message)
    assert not list(folder.rglob("*.ran")), "the untrusted file was executed"
