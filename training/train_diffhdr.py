#!/usr/bin/env python
"""Train DiffHDR (a conditional diffusion model for multi-exposure HDR merging) with accelerate.

The structure follows diffusers' ``examples/unconditional_image_generation/train_unconditional.py``:
arguments, Accelerator, save/load hooks that write diffusers folders, data, the loop (accumulation,
clipping, EMA, logging, checkpoints, validation) and the export of a ``DiffHDRPipeline``.

    accelerate launch training/train_diffhdr.py --train_data_dir /data/kalantari --model_config paper \\
        --output_dir diffhdr-paper

Resuming is bit-exact: a run killed at any moment and restarted with ``--resume_from_checkpoint latest``
ends with the same bytes as an uninterrupted run (see ``diffhdr_diffusers.training_utils``).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration
from diffusers import DDIMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from diffusers.utils import logging as diffusers_logging
from tqdm.auto import tqdm

from diffhdr_diffusers import ConditionEncoder, DiffHDRPipeline, DiffHDRUNet
from diffhdr_diffusers.errors import DatasetError, InputError
from diffhdr_diffusers.model_configs import MODEL_CONFIGS, build_models, pipeline_settings
from diffhdr_diffusers.pipelines.tiling import WINDOW_BLENDS
from diffhdr_diffusers.schedulers import NUM_TRAIN_TIMESTEPS, original_ddim_scheduler
from diffhdr_diffusers.data import SeededCropDataset, StreamBatchSampler, collate_samples
from diffhdr_diffusers.training_utils import (
    PAPER_L1_WEIGHT,
    PREDICTION_TYPES,
    antithetic_timesteps,
    diffhdr_loss,
    prune_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
    step_generator,
    write_json_atomically,
)

logger = get_logger(__name__, log_level="INFO")

# Testing hook: seconds to sleep in the middle of writing each checkpoint, so a test can kill the run there.
SLOW_CHECKPOINT_ENV = "DIFFHDR_TEST_SLOW_CHECKPOINT_SECONDS"


class DeprecatedFlag(argparse.Action):
    """A flag renamed to follow diffusers' training scripts, kept for one release: it sets its replacement's
    ``dest`` (to ``switch_value`` for a switch) and is reported once, after parsing."""

    def __init__(self, option_strings, dest, replacement: str, switch_value=None, **kwargs):
        self.replacement, self.switch_value = replacement, switch_value
        super().__init__(option_strings, dest, nargs=0 if switch_value is not None else None,
                         default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.switch_value if self.switch_value is not None else values)
        used = dict(getattr(namespace, "_deprecated_flags", {}))
        used[option_string] = self.replacement
        namespace._deprecated_flags = used


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from diffhdr_diffusers.cli import OneLineParser

    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    data = parser.add_argument_group("data")
    data.add_argument("--train_data_dir", default=None,
                      help="A local folder: a Kalantari-layout root (scene folders, or Training/ and Test/) or a "
                           "folder written by Dataset.save_to_disk.")
    data.add_argument("--dataset_name", default=None, help="A Hub dataset name (instead of --train_data_dir).")
    data.add_argument("--data_dir", dest="train_data_dir", action=DeprecatedFlag,
                      replacement="--train_data_dir (a folder) or --dataset_name (a Hub dataset)",
                      help="Deprecated: --train_data_dir or --dataset_name.")
    data.add_argument("--train_split", default="train", help="Split to train on.")
    data.add_argument("--validation_split", default=None,
                      help="Split to validate on (e.g. 'test'). Default: hold out --num_validation_scenes training scenes.")
    data.add_argument("--num_validation_scenes", type=int, default=1,
                      help="Scenes held out from the end of the training split when --validation_split is not given.")
    data.add_argument("--resolution", type=int, default=128, help="Training crop size (the paper: 128).")
    data.add_argument("--crop_size", dest="resolution", type=int, action=DeprecatedFlag, replacement="--resolution",
                      help="Deprecated: --resolution.")
    data.add_argument("--random_flip", action=argparse.BooleanOptionalAction, default=True,
                      help="Randomly flip and rotate the crops (default: on, as the paper; --no-random_flip disables).")
    data.add_argument("--no_augment", dest="random_flip", action=DeprecatedFlag, switch_value=False,
                      replacement="--no-random_flip", help="Deprecated: --no-random_flip.")
    data.add_argument("--prior_cache_dir", default=None,
                      help="Aligned models: where each training scene's aligned conditioning is kept on disk, so a "
                           "resumed run does not align the data again (default: OUTPUT_DIR/prior_cache).")
    data.add_argument("--response", default=None,
                      help="The camera response the training frames go through (diffhdr_diffusers.camera.apply_camera) "
                           "before an aligned model's conditioning: 'auto' (estimated per scene, as a merge does), or a "
                           "--response value such as 'gamma:2.2' or 'srgb'. Default: 'auto' for a frame-count-independent "
                           "config (aligned-nframe-*), else the frames as decoded (the gamma-2.2 data so far).")
    data.add_argument("--target_units", choices=("exposures", "prior"), default=None,
                      help="Aligned models: the ground truth in the model units of the (corrected) exposures, or "
                           "rescaled by one factor per scene to the prior's units, so the network learns corrections of "
                           "the merge and not the response estimate's units error. Default: 'prior' with --response "
                           "auto, else 'exposures'.")
    data.add_argument("--correction_gate", type=float, nargs=2, default=None, metavar=("START", "END"),
                      help="Aligned models: limit the correction to where the reference frame is bright (its brightest "
                           "channel's code from START, fully from END, say 0.9 1.0): the residual target is multiplied "
                           "by that gate, and the exported pipeline applies it (its correction_gate). Default: "
                           "everywhere.")
    data.add_argument("--dataloader_num_workers", type=int, default=0, help="Data loading processes per rank.")
    data.add_argument("--on_bad_scene", choices=("stop", "skip"), default="stop",
                      help="A scene that fails to decode stops the run (default) or is skipped with a warning.")

    model = parser.add_argument_group("model")
    model.add_argument("--model_config", default="paper",
                       help=f"One of {', '.join(MODEL_CONFIGS)}, or a JSON file with 'unet' and 'condition_encoder'.")
    model.add_argument("--pretrained_model_name_or_path", default=None,
                       help="Start from the weights of a saved DiffHDR pipeline instead of a random init.")
    model.add_argument("--gradient_checkpointing", action="store_true", help="Trade compute for activation memory.")

    optim = parser.add_argument_group("optimisation (defaults: the paper)")
    optim.add_argument("--train_batch_size", type=int, default=8, help="Crops per process per micro-batch.")
    optim.add_argument("--max_train_steps", type=int, default=3_000_000, help="Optimizer steps in total.")
    optim.add_argument("--max_train_time_minutes", type=float, default=None,
                       help="Stop cleanly (checkpoint and export) after this much wall time.")
    optim.add_argument("--gradient_accumulation_steps", type=int, default=1)
    optim.add_argument("--learning_rate", type=float, default=2e-5)
    optim.add_argument("--lr_scheduler", default="constant",
                       help="'constant', 'constant_with_warmup', 'cosine', 'linear', ... (diffusers.optimization).")
    optim.add_argument("--lr_warmup_steps", type=int, default=0)
    optim.add_argument("--adam_beta1", type=float, default=0.9)
    optim.add_argument("--adam_beta2", type=float, default=0.999)
    optim.add_argument("--adam_weight_decay", type=float, default=0.0)
    optim.add_argument("--adam_epsilon", type=float, default=1e-8)
    optim.add_argument("--max_grad_norm", type=float, default=1.0, help="Gradient clipping norm; 0 disables it.")
    optim.add_argument("--l1_weight", type=float, default=PAPER_L1_WEIGHT,
                       help="Weight of the L1 on the predicted clean image, relative to the per-element noise MSE. "
                            "The default keeps the original's balance (sum-over-pixels MSE + L1 at 128x128 crops).")
    optim.add_argument("--prediction_type", choices=PREDICTION_TYPES, default=None,
                       help="What the UNet predicts: 'epsilon' (the paper), 'v_prediction' or 'sample'. The exported "
                            "scheduler config records it, so any diffusers scheduler samples the model correctly. "
                            "Default: 'epsilon', or 'sample' for an aligned config (its zero-initialised output then "
                            "means 'no correction to the flow-merge prior').")
    optim.add_argument("--min_timestep", type=int, default=0,
                       help="Train only on timesteps from this one to the last (default 0: all, as the paper). Say 900 "
                            "with --prediction_type sample and --export_inference_steps 1: the model then learns one "
                            "step from noise to the mean clean image, which is what PSNR rewards. The exported "
                            "scheduler spaces its steps 'trailing' then, so that they fall in the trained range.")
    optim.add_argument("--loss_reduction", choices=("mean", "sum", "relative"), default="mean",
                       help="'sum' sums the squared error over pixels as the original (then use --l1_weight 1); "
                            "'relative' (aligned configs) weighs each crop by the inverse of its prior's error, as a "
                            "mean of per-image PSNRs does.")
    optim.add_argument("--use_ema", action=argparse.BooleanOptionalAction, default=True,
                       help="Keep an EMA of the weights (default: on, as the paper; --no-use_ema disables).")
    optim.add_argument("--no_ema", dest="use_ema", action=DeprecatedFlag, switch_value=False,
                       replacement="--no-use_ema", help="Deprecated: --no-use_ema.")
    optim.add_argument("--ema_max_decay", type=float, default=0.999,
                       help="EMA decay, constant (no warm-up, so it is also the minimum; the paper's config: 0.999).")
    optim.add_argument("--ema_decay", dest="ema_max_decay", type=float, action=DeprecatedFlag,
                       replacement="--ema_max_decay", help="Deprecated: --ema_max_decay.")
    optim.add_argument("--mixed_precision", choices=("no", "fp16", "bf16"), default=None,
                       help="Overrides the accelerate config.")
    optim.add_argument("--seed", type=int, default=0, help="Fixes initialisation, data order, crops, noise, timesteps.")

    run = parser.add_argument_group("checkpoints, validation, export")
    run.add_argument("--output_dir", default="diffhdr-model")
    run.add_argument("--checkpointing_steps", type=int, default=10_000)
    run.add_argument("--checkpoints_total_limit", type=int, default=None, help="Keep at most this many checkpoints.")
    run.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint-N folder.")
    run.add_argument("--validation_steps", type=int, default=10_000, help="Validate every N steps (0: never).")
    run.add_argument("--validation_size", type=int, default=128, help="Centre crop of each validation scene.")
    run.add_argument("--validation_inference_steps", type=int, default=10, help="DDIM steps for validation samples.")
    run.add_argument("--export_weights", choices=("ema", "live"), default="ema",
                     help="Weights written to the final pipeline (the authors' results used the live weights).")
    run.add_argument("--export_patch_size", type=int, default=None,
                     help="default_patch_size of the exported pipeline and of validation (default: --resolution; "
                          "a model sampled in windows larger than its training crops loses quality, see README).")
    run.add_argument("--export_stride", type=int, default=None,
                     help="default_stride of the exported pipeline and of validation (default: half the patch).")
    run.add_argument("--export_inference_steps", type=int, default=25)
    run.add_argument("--export_timestep_spacing", choices=("leading", "trailing"), default=None,
                     help="timestep_spacing of the exported DDIM scheduler. Default: 'leading' (the original's "
                          "sampler) for the paper's config; 'trailing' for an aligned config, whose first step then "
                          "starts from noise at the last timestep and predicts the mean correction (long2's weights "
                          "held out: +0.11 dB PSNR-mu, +0.43 dB PSNR-l against 2 leading steps, see training/README).")
    run.add_argument("--export_condition_per_window", action=argparse.BooleanOptionalAction, default=True,
                     help="default_condition_per_window of the exported pipeline and of validation (default: on, "
                          "as the model is trained on crops whose conditioning is zero-padded at the crop edge).")
    run.add_argument("--export_window_blend", choices=WINDOW_BLENDS, default="taper",
                     help="default_window_blend of the exported pipeline and of validation (default: taper).")
    run.add_argument("--export_processing_resolution", type=int, default=0,
                     help="default_processing_resolution of the exported pipeline: the longest side it runs at "
                          "(default 0: the input's size).")
    run.add_argument("--report_to", default="tensorboard", help="'tensorboard', 'wandb', 'all' or 'none'.")
    run.add_argument("--logging_dir", default="logs",
                     help="Tracker logs and per-rank records, relative to --output_dir (default: logs).")
    run.add_argument("--logging_steps", type=int, default=10, help="Log loss every N steps.")
    run.add_argument("--push_to_hub", action="store_true")
    run.add_argument("--hub_model_id", default=None)
    run.add_argument("--hub_token", default=None)
    run.add_argument("--hub_private_repo", action="store_true")

    args = parser.parse_args(argv)
    deprecated = vars(args).pop("_deprecated_flags", {})
    if deprecated:
        print("train_diffhdr: deprecated flags (removed in the next release): "
              + "; ".join(f"{old} -> {new}" for old, new in deprecated.items()), file=sys.stderr)
    if (args.train_data_dir is None) == (args.dataset_name is None):
        parser.error("give one of --train_data_dir (a local folder) and --dataset_name (a Hub dataset)")
    args.export_patch_size = args.export_patch_size or args.resolution
    args.export_stride = args.export_stride or max(args.export_patch_size // 2, 1)
    for name in ("resolution", "train_batch_size", "max_train_steps", "gradient_accumulation_steps",
                 "checkpointing_steps", "validation_size", "validation_inference_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.min_timestep and args.export_timestep_spacing == "leading":
        parser.error("--min_timestep trains only the last timesteps, which 'leading' steps do not sample; "
                     "leave --export_timestep_spacing out (it is 'trailing' then).")
    if not 0 <= args.min_timestep < NUM_TRAIN_TIMESTEPS:
        parser.error(f"--min_timestep must be in [0, {NUM_TRAIN_TIMESTEPS}), got {args.min_timestep}")
    for name in ("export_inference_steps",) + (("validation_inference_steps",) if args.validation_steps else ()):
        lowest = untrained_step(getattr(args, name), args.min_timestep)
        if lowest is not None:
            parser.error(f"--{name} {getattr(args, name)} samples at timestep {lowest}, below --min_timestep "
                         f"{args.min_timestep}; use fewer steps (1 samples at {NUM_TRAIN_TIMESTEPS - 1}).")
    return args


def export_scheduler(args: argparse.Namespace) -> DDIMScheduler:
    """The original's DDIM scheduler for the run's prediction type, its steps spaced as --export_timestep_spacing
    (default: 'leading' for the paper's config, 'trailing' for an aligned one or after --min_timestep)."""
    spacing = args.export_timestep_spacing or (
        "trailing" if args.min_timestep or getattr(args, "alignment", None) is not None else "leading")
    return DDIMScheduler.from_config(original_ddim_scheduler(args.prediction_type).config, timestep_spacing=spacing)


def untrained_step(num_inference_steps: int, min_timestep: int) -> int | None:
    """With ``min_timestep``: the smallest 'trailing' timestep of ``num_inference_steps`` if it is below that."""
    if not min_timestep:
        return None
    scheduler = DDIMScheduler.from_config(original_ddim_scheduler().config, timestep_spacing="trailing")
    scheduler.set_timesteps(num_inference_steps)
    lowest = int(scheduler.timesteps.min())
    return lowest if lowest < min_timestep else None


# ----------------------------------------------------------------------------------------- data
def data_source(args: argparse.Namespace) -> tuple[str, str]:
    """The training data (a folder or a Hub dataset name) and the flag that named it."""
    if args.dataset_name is not None:
        return args.dataset_name, "--dataset_name"
    return args.train_data_dir, "--train_data_dir"


def load_scenes(data_dir: str, split: str, check_images: bool = True, flag: str = "--train_data_dir",
                num_exposures: int | None = 3):
    """The raw scene table (HF ``Dataset``) of one split, from a Kalantari root, a save_to_disk folder or the Hub.

    ``check_images=False`` indexes a Kalantari root without decoding the images, so that a corrupt scene
    is met (and skipped) by the data loader instead of failing the whole load. ``num_exposures``: the frames of a
    scene in a Kalantari root, ``None`` for any of 2 to 9.
    """
    import datasets

    from diffhdr_diffusers.data import load_kalantari

    path = Path(data_dir)
    if path.is_dir() and ((path / "dataset_info.json").is_file() or (path / "state.json").is_file()
                          or (path / "dataset_dict.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise InputError(f"{flag} {path}: has splits {list(loaded)}, not {split!r}.")
            loaded = loaded[split]
        return loaded
    if path.is_dir():
        try:
            return load_kalantari(path, split, num_exposures, check_order=check_images)
        except datasets.exceptions.DatasetGenerationError as error:
            cause = error.__cause__ or error
            raise DatasetError(f"{flag} {path}: {cause} Fix or remove that scene, or pass --on_bad_scene skip.") from error
    if path.exists():
        raise InputError(f"{flag} {path}: not a folder; give a Kalantari-layout root or a save_to_disk folder.")
    try:
        return datasets.load_dataset(data_dir, split=split)
    except Exception as error:  # noqa: BLE001 - any Hub failure becomes one clear message
        raise InputError(f"{flag} {data_dir!r}: not a local folder and not loadable from the Hub ({error}).") from error


def split_scenes(args: argparse.Namespace):
    """(training scenes, validation scenes)."""
    source, flag = data_source(args)
    counts = getattr(args, "exposure_counts", (3, 3))
    num_exposures = counts[0] if counts[0] == counts[1] else None
    train = load_scenes(source, args.train_split, check_images=args.on_bad_scene == "stop", flag=flag,
                        num_exposures=num_exposures)
    if args.validation_split:
        return train, load_scenes(source, args.validation_split, flag=flag, num_exposures=num_exposures)
    # Independent of --validation_steps, so that changing it on resume does not change the training set.
    if len(train) > 1 and args.num_validation_scenes >= len(train):  # it held out all but one, silently
        raise InputError(f"--num_validation_scenes {args.num_validation_scenes}: the data has {len(train)} scenes, and "
                         f"at least one must be left to train on; hold out at most {len(train) - 1}.")
    held_out = min(args.num_validation_scenes, len(train) - 1)
    if held_out <= 0:
        return train, None
    return train.select(range(len(train) - held_out)), train.select(range(len(train) - held_out, len(train)))


def make_transform_factory(crop_size: int, augment: bool, alignment: dict | None = None, prior_cache_dir=None,
                           exposure_planes: bool = False, response: str | None = None,
                           target_units: str = "exposures", correction_gate=None):
    from diffhdr_diffusers.data import TrainingTransform

    def make_transform(seed: int):
        return TrainingTransform(crop_size=crop_size, augment=augment, seed=seed, alignment=alignment,
                                 prior_cache_dir=prior_cache_dir, exposure_planes=exposure_planes, response=response,
                                 target_units=target_units, correction_gate=correction_gate)

    return make_transform


# ----------------------------------------------------------------------------------------- validation
def validation_brackets(scenes, size: int) -> list[dict]:
    """Decoded centre crops (``images``, ``exposures``, ``radiance``, ``scene``) of the validation scenes."""
    from diffhdr_diffusers.data import decode_scene

    brackets = []
    for index in range(len(scenes)):
        row = scenes[index]
        scene = decode_scene(row)
        images, radiance = scene["images"], scene["radiance"]
        height, width = radiance.shape[:2]
        crop_h, crop_w = min(size, height) // 16 * 16, min(size, width) // 16 * 16
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        brackets.append({"scene": str(row.get("scene", index)), "images": [image[window] for image in images],
                         "exposures": list(scene["exposures"]), "radiance": radiance[window]})
    return brackets


def run_validation(pipeline: DiffHDRPipeline, brackets: list[dict], args, step: int, accelerator) -> dict:
    """Sample every validation crop, log PSNR-mu / PSNR-l and previews, append to ``validation.jsonl``."""
    from diffhdr_diffusers.hdr_domain import to_model_units
    from diffhdr_diffusers.io import tonemap_preview
    from diffhdr_diffusers.metrics import psnr_l, psnr_mu

    from diffhdr_diffusers.methods import load_method

    # The merge path of every entry point, through the camera response the model trains with (gamma 2.2 by default).
    method = load_method(pipeline, response=args.response or "gamma:2.2", num_inference_steps=args.validation_inference_steps,
                         seed=args.seed)
    scores, previews = [], []
    for bracket in brackets:
        merged = method(bracket["images"], bracket["exposures"])
        # Scored in model units (the shortest exposure at EV 0), the scale of the training targets.
        prediction, target = (to_model_units(image, bracket["exposures"]) for image in (merged.radiance, bracket["radiance"]))
        scores.append({"scene": bracket["scene"], "psnr_mu": float(psnr_mu(prediction, target)),
                       "psnr_l": float(psnr_l(prediction, target))})
        previews.append(np.concatenate([tonemap_preview(prediction), tonemap_preview(bracket["radiance"])], axis=1))
    summary = {"step": step, "psnr_mu": float(np.mean([s["psnr_mu"] for s in scores])),
               "psnr_l": float(np.mean([s["psnr_l"] for s in scores])), "scenes": scores, "time": time.time()}
    accelerator.log({"validation/psnr_mu": summary["psnr_mu"], "validation/psnr_l": summary["psnr_l"]}, step=step)
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            for score, preview in zip(scores, previews):
                image = preview if preview.dtype == np.uint8 else (np.clip(preview, 0, 1) * 255).astype(np.uint8)
                tracker.writer.add_image(f"validation/{score['scene']}", image, step, dataformats="HWC")
    with open(Path(args.output_dir) / "validation.jsonl", "a") as handle:
        handle.write(json.dumps(summary) + "\n")
    logger.info(f"validation at step {step}: PSNR-mu {summary['psnr_mu']:.2f} dB, PSNR-l {summary['psnr_l']:.2f} dB")
    return summary


# ----------------------------------------------------------------------------------------- models
def initial_models(args):
    """``(unet, condition_encoder, alignment)``: a fresh config's models, or a saved pipeline's."""
    if args.pretrained_model_name_or_path:
        pipeline = DiffHDRPipeline.from_pretrained(args.pretrained_model_name_or_path)
        return pipeline.unet, pipeline.condition_encoder, pipeline.config.alignment
    return (*build_models(args.model_config), pipeline_settings(args.model_config).get("alignment"))


def make_ema(model, decay: float) -> EMAModel:
    """A constant-decay EMA (``min_decay == decay``), as the original's EMAHelper."""
    return EMAModel(model.parameters(), decay=decay, min_decay=decay, use_ema_warmup=False, foreach=True,
                    model_cls=type(model), model_config=model.config)


def ema_copy(ema: EMAModel | None, model):
    """A standalone copy of ``model`` holding the EMA weights (or the live ones without EMA)."""
    copied = copy.deepcopy(model)
    if ema is not None:
        ema.copy_to(copied.parameters())
    return copied.eval()


def build_pipeline(unet, condition_encoder, args) -> DiffHDRPipeline:
    return DiffHDRPipeline(unet=unet, condition_encoder=condition_encoder, scheduler=export_scheduler(args),
                           default_num_inference_steps=args.export_inference_steps,
                           default_patch_size=args.export_patch_size, default_stride=args.export_stride,
                           default_condition_per_window=args.export_condition_per_window,
                           default_window_blend=args.export_window_blend,
                           default_processing_resolution=args.export_processing_resolution, alignment=args.alignment,
                           correction_gate=args.correction_gate)


# ----------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    logging_dir = output_dir / args.logging_dir
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(logging_dir),
                                            automatic_checkpoint_naming=False),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    rank, world = accelerator.process_index, accelerator.num_processes
    logger.info(f"rank {rank}/{world} on {accelerator.device}, mixed precision {accelerator.mixed_precision}",
                main_process_only=False)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        if args.push_to_hub:  # a missing login fails now, not after the run
            from diffhdr_diffusers.pipelines.hub_layout import ensure_repo

            ensure_repo(args.hub_model_id or output_dir.name, token=args.hub_token, private=args.hub_private_repo)
    accelerator.wait_for_everyone()

    # Models, EMA and gradient checkpointing. The initialisation draws from the seeded global RNG.
    torch.manual_seed(args.seed)
    unet, condition_encoder, args.alignment = initial_models(args)
    if args.prediction_type is None:
        args.prediction_type = "epsilon" if args.alignment is None else "sample"
    # A frame-count-independent model trains on brackets of any size, through the camera model by default.
    args.exposure_counts = condition_encoder.exposure_counts
    args.exposure_planes = bool(getattr(condition_encoder.config, "frame_pooling", None))
    if args.response is None and args.exposure_planes:
        args.response = "auto"
    if args.target_units is None:
        args.target_units = "prior" if args.response == "auto" else "exposures"
    if args.correction_gate is not None and args.alignment is None:
        raise InputError("--correction_gate: only an aligned config corrects a prior; leave it out for this one.")
    if args.loss_reduction == "relative" and (args.alignment is None or args.prediction_type != "sample"):
        raise InputError("--loss_reduction relative weighs crops by their prior's error: it needs an aligned config "
                         "with --prediction_type sample; use mean or sum for this one.")
    if args.response is not None and args.alignment is None:
        raise InputError(f"--response {args.response}: only an aligned config's conditioning goes through the camera "
                         "model; leave it out for this one.")
    if args.resolution % unet.downsample_factor:
        raise InputError(f"--resolution {args.resolution} must be a multiple of {unet.downsample_factor} "
                         f"(the UNet of --model_config {args.model_config} downsamples that much).")
    ema_models = {} if not args.use_ema else {"unet": make_ema(unet, args.ema_max_decay),
                                              "condition_encoder": make_ema(condition_encoder, args.ema_max_decay)}
    if args.gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    # Save/load hooks: checkpoints hold diffusers folders (unet/, condition_encoder/, *_ema/).
    def save_model_hook(models, weights, checkpoint_dir):
        if accelerator.is_main_process:
            for name, ema in ema_models.items():
                ema.save_pretrained(os.path.join(checkpoint_dir, f"{name}_ema"))
            for model in models:
                name = "unet" if isinstance(model, DiffHDRUNet) else "condition_encoder"
                model.save_pretrained(os.path.join(checkpoint_dir, name))
                weights.pop()
            delay = float(os.environ.get(SLOW_CHECKPOINT_ENV, "0") or 0)
            if delay:
                time.sleep(delay)

    def load_model_hook(models, checkpoint_dir):
        for name, ema in ema_models.items():
            model_cls = DiffHDRUNet if name == "unet" else ConditionEncoder
            # diffusers' EMA loader reads its own saved state (decay, step, ...) through the model's config loader,
            # which warns about every EMA key and about a deprecated call; the resume itself is exact.
            verbosity = diffusers_logging.get_verbosity()
            diffusers_logging.set_verbosity_error()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    loaded = EMAModel.from_pretrained(os.path.join(checkpoint_dir, f"{name}_ema"), model_cls=model_cls)
            finally:
                diffusers_logging.set_verbosity(verbosity)
            ema.load_state_dict(loaded.state_dict())
        for _ in range(len(models)):
            model = models.pop()
            model_cls = DiffHDRUNet if isinstance(model, DiffHDRUNet) else ConditionEncoder
            name = "unet" if model_cls is DiffHDRUNet else "condition_encoder"
            loaded = model_cls.from_pretrained(checkpoint_dir, subfolder=name)
            model.register_to_config(**{key: value for key, value in loaded.config.items() if not key.startswith("_")})
            model.load_state_dict(loaded.state_dict())

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)

    optimizer = torch.optim.Adam(
        list(unet.parameters()) + list(condition_encoder.parameters()), lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2), weight_decay=args.adam_weight_decay, eps=args.adam_epsilon,
    )
    lr_scheduler = get_scheduler(args.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=args.lr_warmup_steps * world,
                                 num_training_steps=args.max_train_steps * world)

    # Data: an endless seeded stream of (scene, crop) per rank; resuming starts it at the right batch.
    train_scenes, validation_scenes = split_scenes(args)
    if len(train_scenes) == 0:
        raise DatasetError(f"{' '.join(reversed(data_source(args)))}: split {args.train_split!r} holds no scenes.")
    logger.info(f"{len(train_scenes)} training scenes, {len(validation_scenes) if validation_scenes else 0} validation scenes")
    dataset = SeededCropDataset(train_scenes, make_transform_factory(args.resolution, args.random_flip, args.alignment,
                                                       args.prior_cache_dir or output_dir / "prior_cache",
                                                       args.exposure_planes, args.response, args.target_units,
                                                       args.correction_gate),
                                args.seed, args.on_bad_scene)

    unet, condition_encoder, optimizer, lr_scheduler = accelerator.prepare(unet, condition_encoder, optimizer, lr_scheduler)
    noise_scheduler = original_ddim_scheduler(args.prediction_type)
    alphas_cumprod = noise_scheduler.alphas_cumprod.to(accelerator.device)
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    for ema in ema_models.values():
        ema.to(accelerator.device)

    global_step = 0
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(output_dir, args.resume_from_checkpoint)
        if checkpoint is None:
            logger.info("no checkpoint to resume from in the output folder; starting a new run")
        else:
            logger.info(f"resuming from {checkpoint}")
            accelerator.load_state(str(checkpoint))
            global_step = int(checkpoint.name.split("-")[1])
    state_path = output_dir / "training_state.json"
    skipped_total = 0
    if global_step and state_path.is_file():
        skipped_total = json.loads(state_path.read_text()).get("skipped_scenes", 0)

    if accelerator.is_main_process:
        accelerator.init_trackers("diffhdr", config={k: v for k, v in vars(args).items()
                                                     if isinstance(v, (int, float, str, bool))})
    brackets = (validation_brackets(validation_scenes, args.validation_size)
                if accelerator.is_main_process and validation_scenes is not None and args.validation_steps else [])

    sampler = StreamBatchSampler(len(train_scenes), args.train_batch_size, args.seed, rank, world,
                                 start_batch=global_step * args.gradient_accumulation_steps)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_samples,
                                         num_workers=args.dataloader_num_workers,
                                         persistent_workers=args.dataloader_num_workers > 0)
    batches = iter(loader)

    total_batch = args.train_batch_size * world * args.gradient_accumulation_steps
    logger.info(f"steps {global_step} -> {args.max_train_steps}, {total_batch} crops per step "
                f"({args.train_batch_size} x {world} processes x {args.gradient_accumulation_steps} accumulation)")
    progress = tqdm(range(args.max_train_steps), initial=global_step, desc="steps",
                    disable=not accelerator.is_local_main_process)
    samples_seen, window_start, window_samples = 0, time.perf_counter(), 0
    stop_reason = "max_train_steps"
    params = list(unet.parameters()) + list(condition_encoder.parameters())
    unet.train()
    condition_encoder.train()

    while global_step < args.max_train_steps:
        step_losses = []
        for micro_step in range(args.gradient_accumulation_steps):
            batch = next(batches)
            for report in batch["skipped"]:
                skipped_total += 1
                logger.warning(f"skipped bad scene {report} (skipped so far: {skipped_total})", main_process_only=False)
            conditioning = batch["conditioning"]  # a list for brackets of several sizes (collate_samples)
            conditioning = ([group.to(accelerator.device) for group in conditioning] if isinstance(conditioning, list)
                            else conditioning.to(accelerator.device))
            target = batch["target"].to(accelerator.device)
            generator = step_generator(args.seed, global_step, rank, micro_step)
            timesteps = antithetic_timesteps(target.shape[0], num_train_timesteps, generator,
                                             low=args.min_timestep).to(accelerator.device)
            noise = torch.randn(target.shape, generator=generator).to(accelerator.device)
            noisy = noise_scheduler.add_noise(target, noise, timesteps)
            with accelerator.accumulate(unet, condition_encoder):
                with accelerator.autocast():
                    features = condition_encoder(conditioning)
                    noise_pred = unet(noisy, timesteps.float(), features).sample
                terms = diffhdr_loss(noise_pred, noise, noisy, target, alphas_cumprod[timesteps],
                                     l1_weight=args.l1_weight, reduction=args.loss_reduction,
                                     prediction_type=args.prediction_type)
                accelerator.backward(terms.loss)
                if accelerator.sync_gradients and args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, args.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            step_losses.append(terms.loss.detach())
            samples_seen += target.shape[0]
            window_samples += target.shape[0]

        global_step += 1
        for name, ema in ema_models.items():
            ema.step((unet if name == "unet" else condition_encoder).parameters())
        progress.update(1)
        loss = torch.stack(step_losses).mean().item()
        elapsed = time.perf_counter() - window_start
        throughput = window_samples * world / max(elapsed, 1e-9)
        progress.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{throughput:.1f}")
        if global_step % args.logging_steps == 0 or global_step == args.max_train_steps:
            accelerator.log({"train/loss": loss, "train/noise_mse": terms.noise_mse.item(),
                             "train/x0_l1": terms.x0_l1.item(), "train/lr": lr_scheduler.get_last_lr()[0],
                             "train/samples_per_s": throughput, "train/skipped_scenes": skipped_total}, step=global_step)
            window_start, window_samples = time.perf_counter(), 0

        out_of_time = args.max_train_time_minutes is not None and time.monotonic() - started > 60 * args.max_train_time_minutes
        if world > 1 and args.max_train_time_minutes is not None:
            flag = torch.tensor([1.0 if out_of_time else 0.0], device=accelerator.device)
            out_of_time = accelerator.reduce(flag, reduction="sum").item() > 0
        if out_of_time:
            stop_reason = "max_train_time_minutes"
        finishing = out_of_time or global_step >= args.max_train_steps

        if global_step % args.checkpointing_steps == 0 or finishing:
            save_checkpoint(accelerator, output_dir, global_step)
            if accelerator.is_main_process:
                write_json_atomically(state_path, {"global_step": global_step, "skipped_scenes": skipped_total})
                for removed in prune_checkpoints(output_dir, args.checkpoints_total_limit):
                    logger.info(f"removed old checkpoint {removed.name}")
            logger.info(f"saved checkpoint-{global_step}")

        if brackets and args.validation_steps and (global_step % args.validation_steps == 0 or finishing):
            pipeline = build_pipeline(ema_copy(ema_models.get("unet"), accelerator.unwrap_model(unet)),
                                      ema_copy(ema_models.get("condition_encoder"), accelerator.unwrap_model(condition_encoder)),
                                      args)
            pipeline.set_progress_bar_config(disable=True)
            run_validation(pipeline, brackets, args, global_step, accelerator)
        if finishing:
            break
    progress.close()

    # Every rank leaves a record of its share of the work.
    logging_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(logging_dir / f"rank-{rank}.json",
                          {"rank": rank, "world_size": world, "samples": samples_seen, "final_step": global_step,
                           "stop_reason": stop_reason})
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        use_ema = args.export_weights == "ema" and ema_models
        pipeline = build_pipeline(ema_copy(ema_models.get("unet") if use_ema else None, accelerator.unwrap_model(unet)),
                                  ema_copy(ema_models.get("condition_encoder") if use_ema else None,
                                           accelerator.unwrap_model(condition_encoder)),
                                  args)
        pipeline.save_pretrained(output_dir)
        logger.info(f"exported the {'EMA' if use_ema else 'live'} weights as a DiffHDRPipeline to {output_dir} "
                    f"(stopped by {stop_reason} at step {global_step})")
        if args.push_to_hub:
            from diffhdr_diffusers.pipelines.hub_layout import push_folder

            repo_id = args.hub_model_id or output_dir.name
            push_folder(output_dir, repo_id, token=args.hub_token, private=args.hub_private_repo,
                        commit_message=f"DiffHDR, step {global_step}",
                        ignore_patterns=["checkpoint-*", f"{args.logging_dir}/*", "*.tmp", "training_state.json"])
            logger.info(f"pushed to https://huggingface.co/{repo_id}")
    accelerator.end_training()
    return 0


if __name__ == "__main__":
    from diffhdr_diffusers.cli import run_command

    sys.exit(run_command("train_diffhdr", main))
