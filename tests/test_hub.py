"""A real Hub round trip against a local Hub-compatible server (tests/hub_server.py).

``huggingface_hub`` reads ``HF_ENDPOINT`` at import time, so the client side runs in fresh Python processes
(this file run as a script) pointed at the server; pushing and pulling use separate processes and caches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_server import FakeHub

REPO = "user/tiny-diffhdr"  # pushed with pipe.push_to_hub
SAVED_REPO = "user/tiny-diffhdr-saved"  # pushed with save_pretrained(..., push_to_hub=True)
FOREIGN_REPO = "user/tiny-diffhdr-foreign"  # the pushed files plus a Python file that is not ours
EXPOSURES = [0.0, 2.0, 4.0]
SHIMS = ["pipeline_diffhdr.py", "unet/modeling_diffhdr_unet.py",
         "condition_encoder/modeling_diffhdr_condition_encoder.py"]
WEIGHTS = ["unet/diffusion_pytorch_model.safetensors", "condition_encoder/diffusion_pytorch_model.safetensors"]
MODEL_CARD = {
    "training": {"data": "3 synthesised scenes", "steps": 10, "duration": "1 minute", "command": "diffhdr-train --max_train_steps 10"},
    "metrics": {"this model": {"PSNR-mu": 12.5, "PSNR-l": 20.25}, "naive merge": {"PSNR-mu": 10.0}},
    "metrics_note": "Measured on 2 held-out synthesised scenes.",
}
MARKER = "foreign_code_ran"


def bracket() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    radiance = rng.random((20, 36, 3)) * 0.3
    return [(np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2)).astype(np.float32) for ev in EXPOSURES]


# -- client side: run in a subprocess whose environment points huggingface_hub at the server ----------


def client_push(work: Path) -> None:
    """Build a tiny random pipeline, push it both ways, and keep its weights and output as the reference."""
    import torch
    from safetensors.torch import save_file

    from diffhdr_diffusers import DiffHDRPipeline
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.schedulers import original_ddim_scheduler

    torch.manual_seed(0)
    unet, encoder = build_models("tiny")
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler(), default_num_inference_steps=2,
                           default_patch_size=32, default_stride=16)
    pipe.set_progress_bar_config(disable=True)
    save_file(pipe.unet.state_dict(), work / "reference_unet.safetensors")
    save_file(pipe.condition_encoder.state_dict(), work / "reference_condition_encoder.safetensors")
    out = pipe(bracket(), EXPOSURES, generator=torch.Generator().manual_seed(0))
    np.save(work / "reference_mu_law.npy", out.mu_law)

    commit = pipe.push_to_hub(REPO, model_card=MODEL_CARD)
    pipe.save_pretrained(work / "saved", push_to_hub=True, repo_id=SAVED_REPO)
    (work / "push.json").write_text(json.dumps({"commit_url": str(commit.commit_url)}))


def client_pull(work: Path) -> None:
    """Load the pushed repos with both loaders and report how they compare with the reference."""
    import torch
    from diffusers import DiffusionPipeline
    from safetensors.torch import load_file

    from diffhdr_diffusers import ConditionEncoder, DiffHDRPipeline, DiffHDRUNet
    from diffhdr_diffusers.errors import ModelLoadError

    reference = {"unet": load_file(work / "reference_unet.safetensors"),
                 "condition_encoder": load_file(work / "reference_condition_encoder.safetensors")}
    reference_mu_law = np.load(work / "reference_mu_law.npy")
    report = {}
    loaders = {
        "generic": lambda repo: DiffusionPipeline.from_pretrained(repo, trust_remote_code=True),
        "ours": lambda repo: DiffHDRPipeline.from_pretrained(repo),
    }
    for name, load in reversed(loaders.items()):  # ours first: it must import nothing from the repos
        if name == "generic":
            report["ours_imported_repo_code"] = any(module.startswith("diffusers_modules") for module in sys.modules)
        for repo in (REPO, SAVED_REPO):
            pipe = load(repo)
            pipe.set_progress_bar_config(disable=True)
            weights_equal = all(
                state.keys() == getattr(pipe, component).state_dict().keys()
                and all(torch.equal(value, getattr(pipe, component).state_dict()[key]) for key, value in state.items())
                for component, state in reference.items()
            )
            out = pipe(bracket(), EXPOSURES, generator=torch.Generator().manual_seed(0))
            report[f"{repo} {name}"] = {
                "pipeline": type(pipe) is DiffHDRPipeline,
                "components": type(pipe.unet) is DiffHDRUNet and type(pipe.condition_encoder) is ConditionEncoder,
                "weights_equal": weights_equal,
                "max_mu_law_error": float(np.abs(out.mu_law - reference_mu_law).max()),
                "num_inference_steps": pipe.config.default_num_inference_steps,
            }
    report["generic_imported_repo_code"] = any(module.startswith("diffusers_modules") for module in sys.modules)
    report["dtype"] = str(DiffHDRPipeline.from_pretrained(REPO, dtype=torch.bfloat16).unet.dtype)
    try:
        DiffHDRPipeline.from_pretrained(FOREIGN_REPO)
        report["foreign"] = "loaded"
    except ModelLoadError as error:
        report["foreign"] = str(error)
    report["marker_exists"] = (work / MARKER).exists()
    (work / "pull.json").write_text(json.dumps(report))


def client_unreachable(work: Path) -> None:
    """Push to a Hub that does not answer: the one-line error, which named the deleted temporary folder."""
    from diffhdr_diffusers import DiffHDRPipeline
    from diffhdr_diffusers.errors import OutputError
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.schedulers import original_ddim_scheduler

    pipe = DiffHDRPipeline(*build_models("tiny"), original_ddim_scheduler())
    try:
        pipe.push_to_hub("user/nowhere")
        message = "pushed"
    except OutputError as error:
        message = str(error)
    (work / "unreachable.json").write_text(json.dumps({"message": message}))


# -- server side: the tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub():
    with FakeHub() as server:
        yield server


def run_client(hub: FakeHub | None, role: str, work: Path, hf_home: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=hub.endpoint if hub else "http://127.0.0.1:9", HF_TOKEN="dummy", HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", OMP_NUM_THREADS="1", NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")
    result = subprocess.run([sys.executable, __file__, role, str(work)], env=env, capture_output=True, text=True,
                            timeout=300, cwd=work, check=False)
    assert result.returncode == 0, f"{role} client failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("hub_push")
    run_client(hub, "push", work, work / "hf_home")
    return work


@pytest.fixture(scope="module")
def pulled(hub, pushed, tmp_path_factory) -> dict:
    files = hub.files(REPO)
    files["unet/modeling_helpers.py"] = f"open({MARKER!r}, 'w').close()\n".encode()
    hub.add_repo(FOREIGN_REPO, files)
    work = pushed
    run_client(hub, "pull", work, tmp_path_factory.mktemp("hub_pull_home"))
    return json.loads((work / "pull.json").read_text())


@pytest.mark.parametrize("repo", [REPO, SAVED_REPO])
def test_push_uploads_shims_weights_and_model_card(hub, pushed, repo):
    files = hub.files(repo)
    saved = pushed / "saved"
    for name in ["model_index.json", "scheduler/scheduler_config.json", *SHIMS, *WEIGHTS]:
        assert name in files, f"{name} missing from {repo}: {sorted(files)}"
        assert files[name] == (saved / name).read_bytes(), f"{name} differs from the local save"
    index = json.loads(files["model_index.json"])
    assert index["_class_name"] == ["pipeline_diffhdr", "DiffHDRPipeline"]
    assert index["unet"] == ["modeling_diffhdr_unet", "DiffHDRUNet"]
    card = files["README.md"].decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["library_name"] == "diffusers" and metadata["pipeline_tag"] == "image-to-image"
    assert {"diffhdr", "hdr", "deghosting", "diffusers", "image-to-image"} <= set(metadata["tags"])
    assert metadata["license"] == "apache-2.0"
    assert f'DiffHDRPipeline.from_pretrained("{repo}")' in card
    assert f'DiffusionPipeline.from_pretrained("{repo}", trust_remote_code=True)' in card
    assert "## Limitations" in card


def test_push_to_hub_card_carries_the_given_training_and_metrics(hub, pushed):
    card = hub.files(REPO)["README.md"].decode()
    assert "| this model | 12.50 | 20.25 |" in card and "| naive merge | 10.00 |  |" in card
    assert "`diffhdr-train --max_train_steps 10`" in card and "Measured on 2 held-out" in card
    assert "| num_inference_steps | 2 |" in card
    assert "## Evaluation" not in hub.files(SAVED_REPO)["README.md"].decode()


def test_push_goes_through_the_hub_api(hub, pushed):
    calls = {(method, path) for method, path, status in hub.requests if status < 400}
    for repo in (REPO, SAVED_REPO):
        assert ("POST", f"/api/models/{repo}/preupload/main") in calls
        assert ("POST", f"/api/models/{repo}/commit/main") in calls
    assert ("POST", "/api/repos/create") in calls and ("POST", "/api/validate-yaml") in calls
    assert json.loads((pushed / "push.json").read_text())["commit_url"].startswith(f"{hub.endpoint}/{REPO}/commit/")


@pytest.mark.parametrize("loader", ["generic", "ours"])
@pytest.mark.parametrize("repo", [REPO, SAVED_REPO])
def test_both_loaders_pull_an_identical_pipeline(pulled, repo, loader):
    result = pulled[f"{repo} {loader}"]
    assert result["pipeline"] and result["components"], result
    assert result["weights_equal"], result
    assert result["max_mu_law_error"] <= 1e-5, result
    assert result["num_inference_steps"] == 2


def test_our_loader_runs_no_repo_code_and_takes_diffusers_options(pulled):
    assert pulled["ours_imported_repo_code"] is False
    assert pulled["generic_imported_repo_code"] is True  # the check sees the shims when they are imported
    assert pulled["dtype"] == "torch.bfloat16"


def test_pull_downloads_through_resolve(hub, pulled):
    resolved = {path for method, path, status in hub.requests if method == "GET" and status == 200}
    for repo in (REPO, SAVED_REPO):
        assert any(path.startswith(f"/{repo}/resolve/") and path.endswith(WEIGHTS[0]) for path in resolved)


def test_foreign_python_file_is_refused_and_never_run(pulled):
    assert pulled["foreign"] != "loaded"
    assert "unet/modeling_helpers.py" in pulled["foreign"] and "trust_remote_code" in pulled["foreign"]
    assert not pulled["marker_exists"]


def test_save_pretrained_keeps_an_existing_model_card(tmp_path):
    from diffhdr_diffusers import DiffHDRPipeline
    from diffhdr_diffusers.errors import InputError
    from diffhdr_diffusers.model_configs import build_models
    from diffhdr_diffusers.schedulers import original_ddim_scheduler

    pipe = DiffHDRPipeline(*build_models("tiny"), original_ddim_scheduler())
    pipe.save_pretrained(tmp_path / "a", model_card={"metrics": {"PSNR-mu": 0.5}})
    assert "| this model | 0.5000 |" in (tmp_path / "a" / "README.md").read_text()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "README.md").write_text("converted model card")
    pipe.save_pretrained(tmp_path / "b", model_card={"metrics": {"PSNR-mu": 0.5}})
    assert (tmp_path / "b" / "README.md").read_text() == "converted model card"
    with pytest.raises(InputError, match="metrics"):
        pipe.save_pretrained(tmp_path / "c", model_card={"metrics": {"ours": {"PSNR-mu": 1.0}, "PSNR-l": 2.0}})
    with pytest.raises(InputError, match="unknown field"):
        pipe.save_pretrained(tmp_path / "d", model_card={"metric": {}})


def test_a_push_to_an_unreachable_hub_is_one_line_without_the_temporary_folder(tmp_path):
    run_client(None, "unreachable", tmp_path, tmp_path / "hf_home")
    message = json.loads((tmp_path / "unreachable.json").read_text())["message"]
    assert message.startswith("could not push the pipeline to the Hub repo 'user/nowhere': ") and "\n" not in message
    assert "hf auth login" in message and "/tmp" not in message.replace(str(tmp_path), ""), message


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    {"push": client_push, "pull": client_pull, "unreachable": client_unreachable}[sys.argv[1]](Path(sys.argv[2]))
