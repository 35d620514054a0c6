"""``DiffHDRPipeline.from_pretrained``: diffusers' own loader behind a thin wrapper (bundled model, one-line errors).

Every loading option of diffusers must reach diffusers; nothing may be dropped without a word; no code from a
model folder may run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DiffusionPipeline
from safetensors.torch import load_file

from diffhdr_diffusers import DiffHDRPipeline, DiffHDRUNet
from diffhdr_diffusers.errors import ModelLoadError
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.pipelines import hub_layout
from diffhdr_diffusers.schedulers import original_ddim_scheduler

EXPOSURES = [0.0, 2.0, 4.0]


@pytest.fixture
def pipe():
    torch.manual_seed(0)
    pipeline = DiffHDRPipeline(*build_models("tiny"), original_ddim_scheduler(), default_num_inference_steps=2,
                               default_patch_size=32, default_stride=16)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def saved(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def weights_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].dtype)) for k in sa)


@pytest.fixture
def no_dynamic_code(monkeypatch):
    """Fail if diffusers is asked to import a module from a model folder."""
    import diffusers.pipelines.pipeline_loading_utils as loading

    def refuse(*args, **kwargs):
        raise AssertionError(f"diffusers was asked to run code from the folder: {args} {kwargs}")

    monkeypatch.setattr(loading, "get_class_from_dynamic_module", refuse)


def test_save_writes_the_shim_layout_and_loads_with_no_code_run(pipe, saved, no_dynamic_code):
    index = json.loads((saved / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_diffhdr", "DiffHDRPipeline"]
    assert index["unet"] == ["modeling_diffhdr_unet", "DiffHDRUNet"]
    assert sorted(path.relative_to(saved).as_posix() for path in saved.rglob("*.py")) == sorted(
        relative for relative, _, _ in hub_layout.SHIMS.values())
    assert not hub_layout.untrusted_code(saved)
    loaded = DiffHDRPipeline.from_pretrained(saved)
    assert type(loaded) is DiffHDRPipeline and type(loaded.unet) is DiffHDRUNet
    assert weights_equal(pipe.unet, loaded.unet) and weights_equal(pipe.condition_encoder, loaded.condition_encoder)
    assert loaded.config.default_patch_size == 32 and loaded.name_or_path == str(saved)


def test_the_generic_diffusers_loader_reads_a_local_save(pipe, saved):
    """A diffusers user's first habit: save, then load with the generic class (as from the Hub)."""
    loaded = DiffusionPipeline.from_pretrained(saved, trust_remote_code=True)
    assert type(loaded) is DiffHDRPipeline and type(loaded.unet) is DiffHDRUNet
    assert weights_equal(pipe.unet, loaded.unet) and weights_equal(pipe.condition_encoder, loaded.condition_encoder)
    loaded.save_pretrained(saved.parent / "again")  # and saves the same layout back
    assert not hub_layout.untrusted_code(saved.parent / "again")
    assert (json.loads((saved.parent / "again" / "model_index.json").read_text())["unet"]
            == ["modeling_diffhdr_unet", "DiffHDRUNet"])


def test_a_plain_diffusers_save_loads_too(pipe, tmp_path, no_dynamic_code):
    DiffusionPipeline.save_pretrained(pipe, tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["unet"] == ["diffhdr_diffusers.models.unet", "DiffHDRUNet"] and not list(tmp_path.rglob("*.py"))
    assert weights_equal(pipe.unet, DiffHDRPipeline.from_pretrained(tmp_path).unet)


def test_none_loads_the_bundled_model(no_dynamic_code):
    from diffhdr_diffusers.pipelines.pipeline_diffhdr import DEFAULT_MODEL_DIR as folder

    bundled = DiffHDRPipeline.from_pretrained()
    weights = load_file(folder / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(bundled.unet.state_dict()[key], value) for key, value in weights.items())
    assert bundled.config.default_num_inference_steps == json.loads((folder / "model_index.json").read_text())[
        "default_num_inference_steps"]


@pytest.mark.parametrize("option", ["torch_dtype", "dtype"])
def test_dtype_options_load_the_weights_in_that_dtype(saved, option):
    loaded = DiffHDRPipeline.from_pretrained(saved, **{option: torch.bfloat16})
    assert loaded.unet.dtype == loaded.condition_encoder.dtype == torch.bfloat16


def test_variant_loads_the_variant_weights(pipe, saved):
    variant = DiffHDRPipeline(*build_models("tiny"), original_ddim_scheduler())  # other random weights
    variant.save_pretrained(saved, variant="ema")
    assert (saved / "unet" / "diffusion_pytorch_model.ema.safetensors").is_file()
    assert weights_equal(variant.unet, DiffHDRPipeline.from_pretrained(saved, variant="ema").unet)
    assert weights_equal(pipe.unet, DiffHDRPipeline.from_pretrained(saved).unet)
    with pytest.raises(ModelLoadError, match="variant"):
        DiffHDRPipeline.from_pretrained(saved, variant="fp16")


def test_use_safetensors(pipe, tmp_path):
    pipe.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.bin").is_file()
    assert weights_equal(pipe.unet, DiffHDRPipeline.from_pretrained(tmp_path).unet)
    with pytest.raises(ModelLoadError, match="safetensors"):
        DiffHDRPipeline.from_pretrained(tmp_path, use_safetensors=True)


def test_device_map_places_the_pipeline(saved):
    loaded = DiffHDRPipeline.from_pretrained(saved, device_map="cpu")
    assert loaded.hf_device_map == "cpu" and loaded.unet.device.type == "cpu"
    with pytest.raises(ModelLoadError, match="device_map"):
        DiffHDRPipeline.from_pretrained(saved, device_map="everywhere")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_map_cuda(saved):
    loaded = DiffHDRPipeline.from_pretrained(saved, device_map="cuda", dtype=torch.float16)
    assert loaded.unet.device.type == "cuda" and loaded.unet.dtype == torch.float16


@pytest.mark.parametrize("low_cpu_mem_usage", [True, False])
def test_low_cpu_mem_usage_reaches_the_component_loaders(pipe, saved, monkeypatch, low_cpu_mem_usage):
    seen = []
    original = DiffHDRUNet.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.append(kwargs.get("low_cpu_mem_usage"))
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(DiffHDRUNet, "from_pretrained", classmethod(spy))
    loaded = DiffHDRPipeline.from_pretrained(saved, low_cpu_mem_usage=low_cpu_mem_usage)
    assert seen == [low_cpu_mem_usage] and weights_equal(pipe.unet, loaded.unet)


def test_unknown_keyword_arguments_are_refused(saved):
    with pytest.raises(ModelLoadError, match="torch_dytpe"):
        DiffHDRPipeline.from_pretrained(saved, torch_dytpe=torch.float16)


def test_config_and_component_overrides_are_forwarded(saved):
    scheduler = DDIMScheduler()
    loaded = DiffHDRPipeline.from_pretrained(saved, default_num_inference_steps=7, default_window_blend="taper",
                                             scheduler=scheduler)
    assert loaded.config.default_num_inference_steps == 7 and loaded.config.default_window_blend == "taper"
    assert loaded.scheduler is scheduler


def test_load_failures_are_one_line_model_load_errors(saved, tmp_path):
    weights = saved / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError) as error:
        DiffHDRPipeline.from_pretrained(saved)
    assert "\n" not in str(error.value) and str(saved) in str(error.value)
    with pytest.raises(ModelLoadError, match="model_index.json"):
        DiffHDRPipeline.from_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="neither a local"):
        DiffHDRPipeline.from_pretrained(str(tmp_path / "missing" / "deeper" / "folder"))


def test_loaded_pipeline_samples_like_the_saved_one(pipe, saved):
    rng = np.random.default_rng(0)
    radiance = rng.random((20, 36, 3)) * 0.3
    bracket = [np.clip(radiance * 2.0**ev, 0, 1) ** (1 / 2.2) for ev in EXPOSURES]
    loaded = DiffHDRPipeline.from_pretrained(saved)
    loaded.set_progress_bar_config(disable=True)
    expected = pipe(bracket, EXPOSURES, generator=torch.Generator().manual_seed(0)).mu_law
    np.testing.assert_allclose(loaded(bracket, EXPOSURES, generator=torch.Generator().manual_seed(0)).mu_law,
                               expected, atol=1e-5)


def test_a_training_checkpoint_is_told_apart_from_a_broken_pipeline_folder(tmp_path):
    """`--model RUN/checkpoint-6` said only "no model_index.json"; it now says how to load a checkpoint (trial 4)."""
    (tmp_path / "checkpoint-6" / "unet").mkdir(parents=True)
    (tmp_path / "checkpoint-6" / "optimizer.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is a training checkpoint, not a pipeline folder.*unet_ema/"):
        DiffHDRPipeline.from_pretrained(tmp_path / "checkpoint-6")
    (tmp_path / "other").mkdir()
    with pytest.raises(ModelLoadError, match="has no model_index.json"):
        DiffHDRPipeline.from_pretrained(tmp_path / "other")
