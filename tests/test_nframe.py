"""The frame-count-independent aligned model (``ConditionEncoder.frame_pooling``): one set of weights for brackets
of 2 to 9 frames, through the pipeline, the methods layer and training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffhdr_diffusers import DiffHDRPipeline
from diffhdr_diffusers.data import TrainingTransform, collate_samples, synthesize_scenes
from diffhdr_diffusers.data.synth import synthesize_scene
from diffhdr_diffusers.data.transforms import read_prior_cache
from diffhdr_diffusers.errors import ImageReadError
from diffhdr_diffusers.hdr_domain import mu_law, to_model_units
from diffhdr_diffusers.merging import flow_merge
from diffhdr_diffusers.methods import FrameCountError, load_method
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.prior import prior_conditioning
from diffhdr_diffusers.schedulers import original_ddim_scheduler

EV_SETS = {2: (0.0, 3.0), 3: (-2.0, 0.0, 2.0), 5: (-4.0, -2.0, 0.0, 2.0, 4.0)}


@pytest.fixture(scope="module")
def scenes() -> dict[int, object]:
    """One 48x64 realistic-camera scene per bracket size."""
    return {count: synthesize_scene(seed=3, index=count, size=(48, 64), ev_sets=[evs], camera_mix="realistic")
            for count, evs in EV_SETS.items()}


def nframe_pipeline(trained: bool = True, seed: int = 0) -> DiffHDRPipeline:
    torch.manual_seed(seed)
    unet, encoder = build_models("aligned-nframe-tiny")
    if trained:  # a model whose correction of the prior is not zero
        torch.nn.init.normal_(unet.conv_out.weight, std=0.01)
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler("sample"), default_num_inference_steps=2,
                           default_patch_size=32, default_stride=16, alignment={})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def random_conditioning(count: int, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand((1, 8 * count + 3, size, size), generator=torch.Generator().manual_seed(seed))


def permute_frames(conditioning: torch.Tensor, order: list[int]) -> torch.Tensor:
    """The same bracket with its frames (their 6 planes, confidence and EV plane) in ``order``."""
    count = (conditioning.shape[1] - 3) // 8
    planes = conditioning[:, : 6 * count].split(6, dim=1)
    prior = conditioning[:, 6 * count : 6 * count + 3]
    confidence = conditioning[:, 6 * count + 3 : 7 * count + 3].split(1, dim=1)
    evs = conditioning[:, 7 * count + 3 :].split(1, dim=1)
    pick = lambda blocks: [blocks[index] for index in order]  # noqa: E731
    return torch.cat([*pick(planes), prior, *pick(confidence), *pick(evs)], dim=1)


def test_one_set_of_weights_whatever_the_bracket_size_and_the_old_configs_unchanged():
    _, encoder = build_models("aligned-nframe-tiny")
    assert encoder.exposure_counts == (2, 9)
    assert [encoder.input_channels(count) for count in (2, 5, 9)] == [19, 43, 75]
    assert len(encoder.attention) == 1  # one gate shared by every non-reference frame
    assert encoder.fusion_conv.in_channels == 4 * encoder.config.num_features  # reference, mean, max, prior
    _, fixed = build_models("aligned-tiny")
    assert fixed.config.frame_pooling is None and fixed.exposure_counts == (3, 3) and len(fixed.attention) == 2
    with pytest.raises(ValueError, match="frame_pooling"):
        type(encoder)(num_exposures=9, reference_index=1, prior_channels=3, frame_pooling="mean_max")


def test_the_bundled_model_takes_any_bracket_size_through_the_camera_model():
    pipe = DiffHDRPipeline.from_pretrained()
    assert pipe.condition_encoder.config.frame_pooling == "mean_max"
    assert pipe.exposure_counts == (2, 9) and pipe.reads_exposure_planes
    assert pipe.config.correction_gate == [0.9, 1.0] and pipe.config.default_num_inference_steps == 1
    pipe.scheduler.set_timesteps(pipe.config.default_num_inference_steps)
    assert pipe.scheduler.timesteps.tolist() == [999]  # one trailing step: the mean correction


def test_the_non_reference_frames_pool_in_any_order():
    _, encoder = build_models("aligned-nframe-tiny")
    conditioning = random_conditioning(5)
    with torch.no_grad():
        features = encoder(conditioning)
        # The reference (frame 2) stays in the middle; the others in any order give the same features.
        permuted = encoder(permute_frames(conditioning, [4, 3, 2, 0, 1]))
        swapped_reference = encoder(permute_frames(conditioning, [0, 1, 3, 2, 4]))
    torch.testing.assert_close(permuted, features, atol=1e-6, rtol=1e-5)
    assert (swapped_reference - features).abs().max() > 1e-3  # the reference is not pooled with the others


def test_a_bracket_of_one_frame_and_a_batch_of_several_sizes():
    _, encoder = build_models("aligned-nframe-tiny")
    with torch.no_grad():
        alone = encoder(random_conditioning(1))
        groups = [random_conditioning(2, seed=1), random_conditioning(5, seed=2)]
        batched = encoder(groups)
    assert alone.shape == (1, 16, 12, 12) and torch.isfinite(alone).all()
    torch.testing.assert_close(batched, torch.cat([encoder(group) for group in groups]))
    with pytest.raises(ValueError, match="channels"):
        encoder(torch.rand(1, 8 * 10 + 3, 12, 12))  # 10 frames: more than it accepts


def test_per_window_and_banded_features_equal_the_encoder_on_each_crop():
    """The window machinery's promise (features near window edges recomputed from thin strips, bands of rows with
    ``receptive_radius`` rows of context) holds for the pooled encoder too."""
    from diffhdr_diffusers.pipelines import WindowGrid
    from diffhdr_diffusers.pipelines.window_features import WindowFeatures, encode_in_bands

    torch.manual_seed(0)
    _, encoder = build_models("aligned-nframe-tiny")
    conditioning = torch.rand(2, 8 * 4 + 3, 64, 80)
    grid = WindowGrid.build(64, 80, 32, 16)
    indices = list(range(len(grid)))
    with torch.no_grad():
        cached = WindowFeatures(encoder, conditioning, grid, per_window=True, batch_size=3).crop(indices)
        direct = encoder(grid.crop(conditioning, indices))
        torch.testing.assert_close(cached, direct, atol=1e-5, rtol=0)
        torch.testing.assert_close(encode_in_bands(encoder, conditioning, 7 * 80), encoder(conditioning),
                                   atol=1e-5, rtol=0)


def test_an_untrained_model_returns_the_flow_merge_for_every_bracket_size(scenes):
    pipe = nframe_pipeline(trained=False)
    for count, scene in scenes.items():
        out = pipe(scene.images, scene.exposures, generator=torch.Generator().manual_seed(0))
        merged = flow_merge(scene.images, scene.exposures).radiance
        expected = np.clip(mu_law(to_model_units(merged, scene.exposures)), 0, 1)
        np.testing.assert_allclose(out.mu_law[0], expected, atol=1e-5, err_msg=f"{count} frames")


def test_brackets_of_2_3_and_5_frames_through_the_pipeline_and_the_methods_layer(scenes):
    pipe = nframe_pipeline()
    method = load_method(pipe, num_inference_steps=2)
    for count, scene in scenes.items():
        prior = prior_conditioning(scene.images, scene.exposures, exposure_planes=True)
        assert prior.conditioning.shape[-1] == 8 * count + 3
        out = pipe(scene.images, scene.exposures, generator=torch.Generator().manual_seed(0))
        assert out.hdr.shape == (1, 48, 64, 3) and np.isfinite(out.hdr).all()
        assert np.abs(out.mu_law[0] - prior.prior).mean() > 1e-4  # the model corrects the prior
        result = method(scene.images, scene.exposures)
        assert result.radiance.shape == (48, 64, 3) and result.camera.source.startswith("auto")
    with pytest.raises(FrameCountError, match="2 to 9 frames"):
        method.reference_for(10, None)
    with pytest.raises(Exception, match="middle"):
        method.reference_for(5, 1)
    with pytest.raises(Exception, match="same number of frames"):
        pipe([scenes[2].images, scenes[3].images], [scenes[2].exposures, scenes[3].exposures])


def test_save_and_load_keep_the_model_and_what_it_accepts(scenes, tmp_path):
    pipe = nframe_pipeline()
    scene = scenes[5]
    expected = pipe(scene.images, scene.exposures, generator=torch.Generator().manual_seed(1)).mu_law
    pipe.save_pretrained(tmp_path / "nframe")
    config = json.loads((tmp_path / "nframe" / "condition_encoder" / "config.json").read_text())
    assert (config["frame_pooling"], config["num_exposures"], config["reference_index"]) == ("mean_max", 9, None)
    card = (tmp_path / "nframe" / "README.md").read_text()
    assert "2 to 9 exposures" in card and "exactly three" not in card
    loaded = DiffHDRPipeline.from_pretrained(tmp_path / "nframe")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.exposure_counts == (2, 9)
    np.testing.assert_allclose(loaded(scene.images, scene.exposures, generator=torch.Generator().manual_seed(1)).mu_law,
                               expected, atol=1e-6)


def test_training_data_go_through_the_camera_model_with_exposure_planes(scenes, tmp_path):
    scene = scenes[5]
    row = {"scene": "s5", "images": scene.images, "exposures": scene.exposures, "radiance": scene.radiance}
    transform = TrainingTransform(crop_size=32, seed=0, alignment={}, exposure_planes=True, response="auto",
                                  prior_cache_dir=tmp_path)
    conditioning, target = transform.transform_scene(row, np.random.default_rng(0))
    assert conditioning.shape == (8 * 5 + 3, 32, 32) and target.shape == (3, 32, 32)
    (cached,) = tmp_path.glob("s5-*.npz")
    with np.load(cached) as stored:
        assert stored["conditioning"].shape[-1] == 43 and len(stored["exposures"]) == 5
        assert np.ptp(stored["conditioning"][..., -5:]) > 0  # the EV planes differ per frame
    plain = TrainingTransform(crop_size=32, seed=0, alignment={}, prior_cache_dir=tmp_path)
    plain.scene_prior(row)
    assert len(list(tmp_path.glob("s5-*.npz"))) == 2  # other settings, another cache file


@pytest.mark.slow
def test_the_prior_cache_filled_in_parallel_is_the_one_training_reads(tmp_path):
    """``training/fill_prior_cache.py`` aligns every scene once, in worker processes, under the key training uses;
    a cached scene is then not decoded at all (the cache holds its ground truth too, and crops read their window
    of the memory-mapped file); a cache written without the ground truth still reads, decoding only that."""
    from diffhdr_diffusers.data import load_kalantari

    synthesize_scenes(tmp_path / "data" / "Training", 3, size=(48, 64), seed=4, camera_mix="realistic",
                      ev_sets=list(EV_SETS.values()))
    script = Path(__file__).resolve().parents[1] / "training" / "fill_prior_cache.py"
    result = subprocess.run([sys.executable, str(script), "--train_data_dir", str(tmp_path / "data"),
                             "--prior_cache_dir", str(tmp_path / "cache"), "--workers", "2"],
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "aligned 3/3 scenes" in result.stdout
    cached = sorted(tmp_path.glob("cache/*.npz"))
    assert len(cached) == 3
    rows = load_kalantari(tmp_path / "data", "train", None)
    fresh = TrainingTransform(crop_size=32, seed=0, alignment={}, exposure_planes=True, response="auto")
    reading = TrainingTransform(crop_size=32, seed=0, alignment={}, exposure_planes=True, response="auto",
                                prior_cache_dir=tmp_path / "cache")
    for row in rows:
        broken = {**row, "ldr": [b"not an image"] * len(row["ldr"]), "hdr": b"not radiance"}  # decoding would raise
        for a, b in zip(fresh(row).values(), reading(broken).values()):
            assert a == b if isinstance(a, str) else torch.equal(a, b)
    assert sorted(tmp_path.glob("cache/*.npz")) == cached  # nothing aligned again
    stored = read_prior_cache(cached[0])
    assert isinstance(stored["conditioning"], np.memmap) and "radiance" in stored
    with np.load(cached[0]) as loaded:  # the mapped arrays are the stored ones
        assert all(np.array_equal(loaded[name], stored[name]) for name in loaded.files)
        older = {name: loaded[name] for name in loaded.files if name != "radiance"}
    np.savez(tmp_path / "older.npz", **older)
    os.replace(tmp_path / "older.npz", cached[0])  # an older cache file (replaced whole, as the cache writes)
    row = rows[0]
    with pytest.raises(ImageReadError):  # without the ground truth cached, the row's is decoded
        reading({**row, "hdr": b"not radiance"})
    for a, b in zip(fresh(row).values(), reading({**row, "ldr": [b"not an image"] * len(row["ldr"])}).values()):
        assert a == b if isinstance(a, str) else torch.equal(a, b)


def test_a_batch_of_several_bracket_sizes_is_grouped_by_size():
    samples = [{"conditioning": torch.full((8 * count + 3, 4, 4), float(index)), "target": torch.full((3, 4, 4), float(index)),
                "skipped": []} for index, count in enumerate((5, 2, 5, 3))]
    batch = collate_samples(samples)
    assert [group.shape[:2] for group in batch["conditioning"]] == [(1, 19), (1, 27), (2, 43)]
    assert batch["target"][:, 0, 0, 0].tolist() == [1.0, 3.0, 0.0, 2.0]  # the order of the groups
    same = collate_samples(samples[::2])
    assert isinstance(same["conditioning"], torch.Tensor) and same["conditioning"].shape == (2, 43, 4, 4)


@pytest.mark.slow
def test_a_short_training_run_on_realistic_brackets_of_several_sizes(tmp_path):
    """A few steps of aligned-nframe-tiny on 2-, 3- and 5-frame realistic scenes; the export merges any of them."""
    synthesize_scenes(tmp_path / "data" / "Training", 5, size=(48, 64), seed=2, camera_mix="realistic",
                      ev_sets=list(EV_SETS.values()))
    script = Path(__file__).resolve().parents[1] / "training" / "train_diffhdr.py"
    output = tmp_path / "run"
    command = [sys.executable, str(script), "--train_data_dir", str(tmp_path / "data"), "--output_dir", str(output),
               "--model_config", "aligned-nframe-tiny", "--resolution", "32", "--train_batch_size", "4",
               "--max_train_steps", "3", "--learning_rate", "1e-3", "--report_to", "none", "--validation_steps", "3",
               "--validation_size", "32", "--validation_inference_steps", "2", "--num_validation_scenes", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((output / "prior_cache").glob("*.npz"))) == 4  # every training scene aligned once
    validation = json.loads((output / "validation.jsonl").read_text().splitlines()[-1])
    assert validation["step"] == 3 and np.isfinite(validation["psnr_mu"])
    pipe = DiffHDRPipeline.from_pretrained(output)
    assert pipe.exposure_counts == (2, 9)
    assert pipe.unet.conv_out.weight.abs().sum() > 0  # it trained
