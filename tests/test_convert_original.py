"""The converter for the authors' checkpoint: key mapping, lossless round trip, CLI and clear errors.

Fake checkpoints are built in the layout of the original training script: DataParallel (``module.``)
state dicts under the original parameter names, an Adam state, an unprefixed EMA shadow and
``argparse.Namespace`` params/config (with ``config.device``, as the original sets it).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

import pytest
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.cli import main
from diffhdr_diffusers.convert_original import (
    CONDITION_KEY_MAP,
    convert_original_checkpoint,
    file_sha256,
    load_original_checkpoint,
)
from diffhdr_diffusers.errors import ModelLoadError, OutputError
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.schedulers import original_ddim_scheduler

ORIGINAL_NAMES = {ours: theirs for theirs, ours in CONDITION_KEY_MAP.items()}


def to_original_condition_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        module, _, parameter = key.rpartition(".")
        renamed[f"{ORIGINAL_NAMES[module]}.{parameter}"] = value
    return renamed


def original_config(unet) -> argparse.Namespace:
    ns = argparse.Namespace
    c = unet.config
    return ns(
        data=ns(dataset="Hdr", image_size=c.sample_size, inf_size=512, channels=3, conditional=True),
        model=ns(in_channels=3, out_ch=3, ch=c.ch, ch_mult=list(c.ch_mult), num_res_blocks=c.num_res_blocks,
                 attn_resolutions=list(c.attn_resolutions), dropout=0.0, ema_rate=0.999, ema=True,
                 resamp_with_conv=True),
        diffusion=ns(beta_schedule="linear", beta_start=0.0001, beta_end=0.02, num_diffusion_timesteps=1000),
        optim=ns(weight_decay=0.0, optimizer="Adam", lr=0.00002, amsgrad=False, eps=0.00000001),
        device=torch.device("cpu"),
    )


def fake_checkpoint(path: Path, unet, encoder, **changes) -> dict:
    """Save a checkpoint in the original layout; returns the raw dict."""
    optimizer = torch.optim.Adam([*unet.parameters(), *encoder.parameters()], lr=2e-5)
    loss = unet(torch.randn(1, 3, 32, 32), 10, encoder(torch.rand(1, 18, 32, 32))).sample.square().mean()
    loss.backward()
    optimizer.step()
    live = unet.state_dict()
    content = {
        "epoch": 7,
        "step": 3000,
        "ddpm_state_dict": collections.OrderedDict((f"module.{k}", v) for k, v in live.items()),
        "cnn_state_dict": collections.OrderedDict(
            (f"module.{k}", v) for k, v in to_original_condition_names(encoder.state_dict()).items()),
        "optimizer": optimizer.state_dict(),
        "ema_helper": {k: v + 0.25 for k, v in live.items()},
        "params": argparse.Namespace(config="hdr.yml", resume="", sampling_timesteps=25,
                                     image_folder="results/images/", seed=61),
        "config": original_config(unet),
    }
    content.update(changes)
    torch.save(content, path)
    return content


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    unet, encoder = build_models("tiny")
    path = tmp_path_factory.mktemp("ckpt") / "Hdr_ddpm3000.pth.tar"
    content = fake_checkpoint(path, unet, encoder)
    return path, content


@pytest.mark.parametrize("weights", ["live", "ema"])
def test_round_trip_is_bit_exact(tiny_checkpoint, tmp_path, weights):
    path, content = tiny_checkpoint
    out = convert_original_checkpoint(path, tmp_path / "converted", weights=weights)
    pipe = DiffHDRPipeline.from_pretrained(out)

    unet_source = (content["ddpm_state_dict"] if weights == "live"
                   else {f"module.{k}": v for k, v in content["ema_helper"].items()})
    unet_state = pipe.unet.state_dict()
    assert len(unet_state) == len(unet_source)
    for key, value in unet_source.items():
        assert torch.equal(unet_state[key.removeprefix("module.")], value), key
    encoder_state = to_original_condition_names(pipe.condition_encoder.state_dict())
    assert len(encoder_state) == len(content["cnn_state_dict"])
    for key, value in content["cnn_state_dict"].items():
        assert torch.equal(encoder_state[key.removeprefix("module.")], value), key

    # The config comes from the checkpoint's own namespace (not a hard-coded paper config).
    assert pipe.unet.config.ch == 32 and tuple(pipe.unet.config.ch_mult) == (1, 2)
    assert pipe.unet.config.sample_size == 32 and pipe.unet.config.condition_channels == 16
    assert pipe.condition_encoder.config.num_features == 16
    # The release's sampler: paper DDIM, 25 steps, patch 512, stride 64, per-window conditioning.
    assert (pipe.config.default_num_inference_steps, pipe.config.default_patch_size, pipe.config.default_stride,
            pipe.config.default_condition_per_window) == (25, 512, 64, True)
    expected = original_ddim_scheduler().config
    assert all(pipe.scheduler.config[key] == expected[key] for key in expected if not key.startswith("_"))


def test_model_card(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    out = convert_original_checkpoint(path, tmp_path / "converted", weights="live")
    card = (out / "README.md").read_text()
    header = card.split("---")[1]
    assert "license: other" in header and "library_name: diffusers" in header and "- hdr" in header
    assert file_sha256(path) in card and path.name in card
    assert "DiffHDRPipeline.from_pretrained" in card and "25 steps" in card and "512x512" in card
    assert "stride 64" in card and "training step | 3000" in card


def test_cli_and_overwrite(tiny_checkpoint, tmp_path, capsys):
    path, _ = tiny_checkpoint
    out = tmp_path / "converted"
    assert main(["convert-original", str(path), str(out)]) == 0
    index = json.loads((out / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_diffhdr", "DiffHDRPipeline"]  # saved with the shims: both loaders read it
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask, "the folder keeps mkdtemp's private mode"

    assert main(["convert-original", str(path), str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err

    (out / "stale.txt").write_text("old")
    assert main(["convert-original", str(path), str(out), "--weights", "ema", "--overwrite"]) == 0
    assert not (out / "stale.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folders left behind"
    ema = DiffHDRPipeline.from_pretrained(out).unet.state_dict()["conv_in.weight"]
    assert torch.equal(ema, load_original_checkpoint(path).ema_weights["conv_in.weight"])


def test_refuses_to_replace_a_folder_that_is_not_a_pipeline(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(OutputError, match="not a pipeline folder"):
        convert_original_checkpoint(path, tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_truncated_file(tiny_checkpoint, tmp_path):
    path, _ = tiny_checkpoint
    truncated = tmp_path / "Hdr_ddpm3000000.pth.tar"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_original_checkpoint(truncated)


@pytest.mark.parametrize("content", [b"not a checkpoint\n", b"\x80\x02}q\x00."])
def test_not_a_pytorch_file(tmp_path, content):
    path = tmp_path / "ckpt.pth.tar"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="ckpt.pth.tar"):
        load_original_checkpoint(path)


def test_not_a_diffhdr_checkpoint(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {"weight": torch.ones(2)}}, path)
    with pytest.raises(ModelLoadError, match="not a DiffHDR checkpoint.*ddpm_state_dict"):
        load_original_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such checkpoint"):
        convert_original_checkpoint(tmp_path / "absent.pth.tar", tmp_path / "out")


class _Payload:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_never_unpickles_arbitrary_objects(tmp_path):
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.marker = marker
    path = tmp_path / "evil.pth.tar"
    torch.save({"ddpm_state_dict": {}, "cnn_state_dict": {}, "config": payload}, path)
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        load_original_checkpoint(path)
    assert not marker.exists()


def test_different_architecture_lists_the_keys(tmp_path):
    torch.manual_seed(0)
    unet, encoder = build_models("tiny")
    config = original_config(unet)
    config.model.ch_mult = [1, 2, 2]  # the weights are for [1, 2]
    path = tmp_path / "other.pth.tar"
    fake_checkpoint(path, unet, encoder, config=config)
    with pytest.raises(ModelLoadError, match=r"different architecture.*no source: .*down\.1\.downsample"):
        convert_original_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unmapped_source_tensors_are_an_error(tmp_path):
    torch.manual_seed(0)
    unet, encoder = build_models("tiny")
    path = tmp_path / "extra.pth.tar"
    content = fake_checkpoint(path, unet, encoder)
    cnn = collections.OrderedDict(content["cnn_state_dict"])
    cnn["module.RDB1.conv_1x1.weight"] = torch.ones(16, 16, 1, 1)  # a layer the released AHDR variant lacks
    torch.save(dict(content, cnn_state_dict=cnn), path)
    with pytest.raises(ModelLoadError, match=r"unmapped source tensors: RDB1\.conv_1x1\.weight"):
        convert_original_checkpoint(path, tmp_path / "out")


def test_ema_needs_the_ema_helper(tmp_path):
    torch.manual_seed(0)
    unet, encoder = build_models("tiny")
    path = tmp_path / "no_ema.pth.tar"
    fake_checkpoint(path, unet, encoder, ema_helper={})
    with pytest.raises(ModelLoadError, match="--weights live"):
        convert_original_checkpoint(path, tmp_path / "out", weights="ema")


def test_push_to_hub_uploads_the_folder_with_its_card(tiny_checkpoint, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    class Repo:
        repo_id = "someone/diffhdr"

    monkeypatch.setattr(huggingface_hub, "create_repo", lambda repo_id, **options: calls.append(repo_id) or Repo())
    monkeypatch.setattr(huggingface_hub, "upload_folder", lambda repo_id, folder_path, **options: calls.append(
        (repo_id, sorted(p.name for p in Path(folder_path).iterdir()))))
    path, _ = tiny_checkpoint
    convert_original_checkpoint(path, tmp_path / "out", push_to_hub="diffhdr")
    assert calls[0] == "diffhdr"
    repo_id, files = calls[1]
    assert repo_id == "someone/diffhdr" and "README.md" in files and "model_index.json" in files
    assert 'from_pretrained("diffhdr")' in (tmp_path / "out" / "README.md").read_text()
