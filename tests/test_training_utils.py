"""Training building blocks: objective, seeded randomness, data order, crops and atomic checkpoints."""

from __future__ import annotations

import resource
import signal
import shutil
from pathlib import Path

import pytest
import torch

from diffhdr_diffusers.errors import CheckpointError, DatasetError
from diffhdr_diffusers.schedulers import original_ddim_scheduler
from diffhdr_diffusers.training_utils import (
    PAPER_L1_WEIGHT,
    SeededCropDataset,
    StreamBatchSampler,
    antithetic_timesteps,
    collate_samples,
    diffhdr_loss,
    list_checkpoints,
    predicted_clean,
    regression_target,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    step_generator,
)


def test_antithetic_timesteps_pair_t_with_its_mirror():
    for batch in (1, 2, 7, 8):
        t = antithetic_timesteps(batch, 1000, torch.Generator().manual_seed(batch))
        assert t.shape == (batch,) and int(t.min()) >= 0 and int(t.max()) <= 999
        half = batch // 2 + 1
        mirrored = t[half:]
        assert torch.equal(mirrored, 999 - t[: len(mirrored)])


def test_antithetic_timesteps_in_a_narrower_range_mirror_inside_it():
    t = antithetic_timesteps(64, 1000, torch.Generator().manual_seed(0), low=900)
    assert int(t.min()) >= 900 and int(t.max()) <= 999 and len(set(t.tolist())) > 20
    assert torch.equal(t[33:], 1899 - t[:31])
    default = antithetic_timesteps(8, 1000, torch.Generator().manual_seed(3))
    assert torch.equal(default, antithetic_timesteps(8, 1000, torch.Generator().manual_seed(3), low=0))


def test_step_generators_are_reproducible_and_distinct_per_key():
    def draw(*key):
        return torch.randn(4, generator=step_generator(*key))

    assert torch.equal(draw(0, 5, 1, 0), draw(0, 5, 1, 0))
    draws = [draw(0, 5, 1, 0), draw(0, 5, 0, 0), draw(0, 6, 1, 0), draw(0, 5, 1, 1), draw(1, 5, 1, 0)]
    # (5, 1) and (6, 0) must not collide either: the key is hashed, not summed.
    draws.append(draw(0, 6, 0, 0))
    for i in range(len(draws)):
        for j in range(i + 1, len(draws)):
            assert not torch.equal(draws[i], draws[j])


def test_loss_sum_reduction_is_the_original_formula_and_mean_keeps_its_balance():
    scheduler = original_ddim_scheduler()
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(4, 3, 16, 16, generator=generator)
    noise = torch.randn(target.shape, generator=generator)
    noise_pred = noise + 0.1 * torch.randn(target.shape, generator=generator)
    t = antithetic_timesteps(4, 1000, generator)
    noisy = scheduler.add_noise(target, noise, t)
    a = (1 - scheduler.betas).cumprod(0).index_select(0, t).view(-1, 1, 1, 1)
    x0 = (noisy - noise_pred * (1 - a).sqrt()) / a.sqrt()
    original = (noise - noise_pred).square().sum(dim=(1, 2, 3)).mean() + torch.nn.L1Loss()(x0, target)

    alphas = scheduler.alphas_cumprod[t]
    summed = diffhdr_loss(noise_pred, noise, noisy, target, alphas, l1_weight=1.0, reduction="sum")
    torch.testing.assert_close(summed.loss, original, rtol=1e-5, atol=1e-5)
    mean = diffhdr_loss(noise_pred, noise, noisy, target, alphas, l1_weight=PAPER_L1_WEIGHT)
    # At 128x128 the per-element loss is the original divided by C*H*W; here the balance is that of 128x128.
    torch.testing.assert_close(mean.noise_mse, summed.noise_mse / (3 * 16 * 16))
    torch.testing.assert_close(mean.loss, mean.noise_mse + mean.x0_l1 / (3 * 128 * 128))


def test_relative_reduction_counts_each_crop_by_the_share_of_its_error_removed():
    alphas = torch.full((2,), 0.5)
    target = torch.stack([torch.full((3, 4, 4), 0.1), torch.full((3, 4, 4), 0.01)])  # a bad prior, a good one
    noisy, zero = torch.zeros_like(target), torch.zeros_like(target[0])
    fixed_bad, fixed_good = torch.stack([target[0], zero]), torch.stack([zero, target[1]])

    def loss(prediction, reduction):
        return diffhdr_loss(prediction, target, noisy, target, alphas, reduction=reduction,
                            prediction_type="sample").noise_mse.item()

    # "mean" counts errors by size: leaving the good prior's crop as it is costs 100x less than the bad one's.
    assert loss(fixed_good, "mean") / loss(fixed_bad, "mean") == pytest.approx(100.0)
    # "relative" counts each crop's error against its own size, floored at a tenth of the batch's mean.
    floor = 0.1 * (0.01 + 0.0001) / 2
    expected = (0.01 / (0.01 + floor)) / (0.0001 / (0.0001 + floor))
    assert loss(fixed_good, "relative") / loss(fixed_bad, "relative") == pytest.approx(expected, rel=1e-4)
    assert expected < 6


def test_predicted_clean_inverts_add_noise():
    scheduler = original_ddim_scheduler()
    target = torch.rand(3, 3, 8, 8)
    noise = torch.randn(target.shape)
    t = torch.tensor([0, 500, 999])
    noisy = scheduler.add_noise(target, noise, t)
    recovered = predicted_clean(noisy, noise, scheduler.alphas_cumprod[t])
    torch.testing.assert_close(recovered, target, atol=2e-3, rtol=0)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_regression_targets_match_diffusers_and_give_back_the_clean_image(prediction_type):
    scheduler = original_ddim_scheduler(prediction_type)
    target = torch.rand(3, 3, 8, 8)
    noise = torch.randn(target.shape)
    t = torch.tensor([0, 500, 999])
    noisy = scheduler.add_noise(target, noise, t)
    alphas = scheduler.alphas_cumprod[t]
    output = regression_target(noise, target, alphas, prediction_type)
    if prediction_type == "v_prediction":
        torch.testing.assert_close(output, scheduler.get_velocity(target, noise, t))
    torch.testing.assert_close(predicted_clean(noisy, output, alphas, prediction_type), target, atol=2e-3, rtol=0)
    # The DDIM step's own x0 estimate agrees with ours for this prediction type.
    scheduler.set_timesteps(10)
    step = scheduler.step(output[1:2], 500, noisy[1:2])
    torch.testing.assert_close(step.pred_original_sample, target[1:2], atol=2e-3, rtol=0)
    perfect = diffhdr_loss(output, noise, noisy, target, alphas, prediction_type=prediction_type)
    assert perfect.noise_mse == 0 and perfect.x0_l1 < 2e-3


def test_stream_sampler_splits_global_batches_between_ranks_and_resumes_mid_stream():
    def batches(rank, start, count, world=2):
        sampler = StreamBatchSampler(num_scenes=5, batch_size=3, seed=7, rank=rank, world_size=world, start_batch=start)
        iterator = iter(sampler)
        return [next(iterator) for _ in range(count)]

    rank0, rank1 = batches(0, 0, 6), batches(1, 0, 6)
    positions = sorted(p for batch in rank0 + rank1 for _, p in batch)
    assert positions == list(range(36))  # every stream position exactly once across the ranks
    scenes = [s for batch in rank0 + rank1 for s, _ in batch]
    stream = dict((p, s) for batch in rank0 + rank1 for s, p in batch)
    for epoch in range(36 // 5):  # each epoch is a permutation of the scenes
        assert sorted(stream[p] for p in range(5 * epoch, 5 * epoch + 5)) == list(range(5))
    assert len(set(scenes)) == 5
    assert batches(1, 4, 2) == rank1[4:6]  # resuming at batch 4 continues the same stream


def _copy_scenes(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def test_seeded_crops_repeat_per_position_and_bad_scenes_stop_or_skip(synthetic_scenes, tmp_path):
    from diffhdr_diffusers.data import TrainingTransform, load_kalantari

    root = _copy_scenes(synthetic_scenes / "Training", tmp_path / "scenes")
    make = lambda seed: TrainingTransform(crop_size=32, augment=True, seed=seed)  # noqa: E731
    scenes = load_kalantari(root, "train")
    dataset = SeededCropDataset(scenes, make, seed=3)
    first, again, other = dataset[(0, 10)], dataset[(0, 10)], dataset[(0, 11)]
    assert first["conditioning"].shape == (18, 32, 32) and first["target"].shape == (3, 32, 32)
    assert torch.equal(first["conditioning"], again["conditioning"]) and torch.equal(first["target"], again["target"])
    assert not torch.equal(first["target"], other["target"])

    # Corrupt one scene after indexing: its TIFF bytes are truncated in the dataset.
    bad = root / "00001" / "input_2.tif"
    bad.write_bytes(bad.read_bytes()[:300])
    scenes = load_kalantari(root, "train", check_order=False)  # indexing reads headers only
    with pytest.raises(DatasetError, match="00001"):
        SeededCropDataset(scenes, make, seed=3, on_bad_scene="stop")[(1, 0)]
    skipping = SeededCropDataset(scenes, make, seed=3, on_bad_scene="skip")
    batch = collate_samples([skipping[(1, 0)], skipping[(0, 1)]])
    assert batch["conditioning"].shape == (2, 18, 32, 32)
    assert len(batch["skipped"]) == 1 and batch["skipped"][0].startswith("00001")
    # A crop larger than the scenes is a setting, not a bad scene: no "pass --on_bad_scene skip", which cannot help.
    from diffhdr_diffusers.errors import CropSizeError

    too_large = SeededCropDataset(scenes, lambda seed: TrainingTransform(crop_size=4096, seed=seed), seed=3,
                                  on_bad_scene="skip")
    with pytest.raises(CropSizeError, match="smaller than the training crop of 4096 pixels"):
        too_large[(0, 0)]


def _state_accelerator(tmp_path):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    model = torch.nn.Linear(4, 4)
    accelerator = Accelerator(cpu=True, project_config=ProjectConfiguration(project_dir=str(tmp_path),
                                                                            automatic_checkpoint_naming=False))
    model, optimizer = accelerator.prepare(model, torch.optim.Adam(model.parameters()))
    return accelerator, model


def test_checkpoints_are_renamed_into_place_and_tmp_folders_are_never_latest(tmp_path):
    accelerator, model = _state_accelerator(tmp_path)
    first = save_checkpoint(accelerator, tmp_path, 2)
    assert first.name == "checkpoint-2" and (first / "optimizer.bin").is_file()
    assert not (tmp_path / "checkpoint-2.tmp").exists()
    (tmp_path / "checkpoint-9.tmp").mkdir()  # a write that was killed half way
    (tmp_path / "checkpoint-7.deleting").mkdir()
    assert resolve_checkpoint(tmp_path, "latest") == first
    save_checkpoint(accelerator, tmp_path, 4)
    save_checkpoint(accelerator, tmp_path, 4)  # saving the same step again replaces it
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-4"]
    assert [p.name for p in prune_checkpoints(tmp_path, 1)] == ["checkpoint-2"]
    assert resolve_checkpoint(tmp_path, "latest").name == "checkpoint-4"
    with pytest.raises(CheckpointError, match="checkpoint-N"):
        resolve_checkpoint(tmp_path, str(tmp_path / "checkpoint-9.tmp"))


def test_a_full_disk_while_checkpointing_raises_a_clear_error_and_keeps_the_previous_checkpoint(tmp_path):
    accelerator, model = _state_accelerator(tmp_path)
    previous = save_checkpoint(accelerator, tmp_path, 1)
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    with torch.no_grad():
        model.weight.add_(1.0)
    # RLIMIT_FSIZE makes every write beyond 64 bytes fail with EFBIG, as a full disk would (works as root too).
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))
    try:
        with pytest.raises(CheckpointError) as error:
            save_checkpoint(accelerator, tmp_path, 2)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    message = str(error.value)
    assert "checkpoint-2" in message and "checkpoint-1" in message and "resume" in message
    assert not (tmp_path / "checkpoint-2").exists() and not (tmp_path / "checkpoint-2.tmp").exists()
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert resolve_checkpoint(tmp_path, "latest") == previous
