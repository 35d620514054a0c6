"""Training flags follow diffusers' scripts; the previous names still work, identically, for one release."""

from __future__ import annotations

import importlib.util
import shlex
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "training" / "train_diffhdr.py"
RENAMED = {"train_data_dir": "data_dir", "resolution": "crop_size", "use_ema": "no_ema", "ema_max_decay": "ema_decay",
           "random_flip": "no_augment"}
# The command of a long aligned-small run (runs/aligned-small/command.sh), which resumes with the old names.
BACKGROUND_RUN = (
    "--data_dir /work/data/aligned --num_validation_scenes 4 --validation_size 128 --model_config aligned-small "
    "--crop_size 64 --train_batch_size 8 --learning_rate 4e-4 --lr_scheduler constant_with_warmup --lr_warmup_steps 200 "
    "--ema_decay 0.995 --seed 0 --max_train_steps 20000 --checkpointing_steps 250 --checkpoints_total_limit 3 "
    "--validation_steps 1000 --validation_inference_steps 4 --export_inference_steps 4 "
    "--output_dir /work/runs/aligned-small --report_to none --resume_from_checkpoint latest")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_diffhdr", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_diffusers_names_and_defaults(script):
    args = script.parse_args(["--train_data_dir", "data", "--resolution", "64", "--ema_max_decay", "0.99",
                              "--logging_dir", "tb"])
    assert (args.train_data_dir, args.dataset_name, args.resolution, args.ema_max_decay) == ("data", None, 64, 0.99)
    assert args.use_ema and args.random_flip and args.logging_dir == "tb"  # EMA and augmentation on, as the paper
    args = script.parse_args(["--dataset_name", "user/scenes", "--no-use_ema", "--no-random_flip"])
    assert (args.train_data_dir, args.dataset_name, args.use_ema, args.random_flip) == (None, "user/scenes", False, False)
    assert script.data_source(args) == ("user/scenes", "--dataset_name")
    for argv in ([], ["--train_data_dir", "a", "--dataset_name", "b"]):
        with pytest.raises(SystemExit):
            script.parse_args(argv)


def test_old_names_set_the_same_arguments_and_warn_once(script, capsys):
    old = script.parse_args(shlex.split(BACKGROUND_RUN) + ["--no_ema", "--no_augment"])
    err = capsys.readouterr().err
    assert err.count("deprecated") == 1 and err.count("\n") == 1
    for flag in ("--data_dir", "--crop_size", "--ema_decay", "--no_ema", "--no_augment"):
        assert flag in err
    new = script.parse_args(shlex.split(
        BACKGROUND_RUN.replace("--data_dir", "--train_data_dir").replace("--crop_size", "--resolution")
        .replace("--ema_decay", "--ema_max_decay")) + ["--no-use_ema", "--no-random_flip"])
    assert capsys.readouterr().err == ""
    assert vars(old) == vars(new)
    assert (old.train_data_dir, old.resolution, old.ema_max_decay) == ("/work/data/aligned", 64, 0.995)


def test_the_background_runs_command_parses_as_before(script):
    """Every setting of the resuming run keeps its value under its new name (resume stays bit-exact)."""
    args = vars(script.parse_args(shlex.split(BACKGROUND_RUN)))
    before = {"data_dir": "/work/data/aligned", "crop_size": 64, "ema_decay": 0.995, "no_ema": False,
              "no_augment": False}
    translated = {new: before[old] for new, old in RENAMED.items()}
    translated["use_ema"], translated["random_flip"] = not before["no_ema"], not before["no_augment"]
    assert {name: args[name] for name in RENAMED} == translated
    assert args["export_patch_size"] == 64 and args["logging_dir"] == "logs" and args["dataset_name"] is None
    assert "_deprecated_flags" not in args


def test_holding_out_every_scene_but_one_is_an_error(script, tmp_path):
    """--num_validation_scenes 10 on 6 scenes trained on 1 scene and validated on 5, silently (trial 4)."""
    from diffhdr_diffusers.data.synth import synthesize_scenes
    from diffhdr_diffusers.errors import InputError

    synthesize_scenes(tmp_path / "data", 3, size=(16, 24), seed=0)
    args = script.parse_args(["--train_data_dir", str(tmp_path / "data"), "--num_validation_scenes", "3"])
    with pytest.raises(InputError, match=r"--num_validation_scenes 3: the data has 3 scenes.*at most 2"):
        script.split_scenes(args)
    args.num_validation_scenes = 2
    train, validation = script.split_scenes(args)
    assert (len(train), len(validation)) == (1, 2)


def test_min_timestep_exports_trailing_steps_that_it_trained(script, capsys):
    base = ["--train_data_dir", "data", "--validation_steps", "0", "--prediction_type", "sample"]
    args = script.parse_args(base + ["--min_timestep", "900", "--export_inference_steps", "1"])
    scheduler = script.export_scheduler(args)
    scheduler.set_timesteps(1)
    assert scheduler.config.timestep_spacing == "trailing" and scheduler.timesteps.tolist() == [999]
    paper = script.parse_args(base)
    assert script.export_scheduler(paper).config.timestep_spacing == "leading"  # the original's sampler
    paper.alignment = {}  # what main() sets for an aligned config: its first step starts at the last timestep
    assert script.export_scheduler(paper).config.timestep_spacing == "trailing"
    paper.export_timestep_spacing = "leading"
    assert script.export_scheduler(paper).config.timestep_spacing == "leading"
    with pytest.raises(SystemExit):
        script.parse_args(base + ["--min_timestep", "900", "--export_timestep_spacing", "leading"])
    with pytest.raises(SystemExit):  # two trailing steps sample at 499, which it never trained
        script.parse_args(base + ["--min_timestep", "900", "--export_inference_steps", "2"])
    assert "--export_inference_steps 2 samples at timestep 499, below --min_timestep 900" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # validation samples too, when it runs
        script.parse_args(base[:2] + ["--min_timestep", "900", "--export_inference_steps", "1"])
    with pytest.raises(SystemExit):
        script.parse_args(base + ["--min_timestep", "1000"])
