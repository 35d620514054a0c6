"""Evaluate a merge method on every scene of a Kalantari-layout folder, the way papers report it.

A *predictor* turns one :class:`~diffhdr_diffusers.io.Bracket` into a :class:`Prediction`. Three kinds
share one code path: a DiffHDR pipeline (optionally an ensemble of K samples), a classical baseline
(:mod:`diffhdr_diffusers.evaluation.baselines`) and already-written outputs of another method. For each scene the
evaluation writes the linear ``.hdr``, a tonemapped preview, the ensemble's uncertainty map, and the
metrics; at the end it writes ``metrics.csv``, ``metrics.json`` and ``summary.md`` (means, time per
scene, peak memory).

Results layout under ``out_dir``::

    hdr/<scene>.hdr             linear radiance (not written when scoring --predictions)
    previews/<scene>.png        tonemapped 8-bit preview
    uncertainty/<scene>.exr     per-pixel std of the ensemble in the mu-law domain (float32, 3 channels)
    uncertainty/<scene>.png     the same, mean over channels, scaled so that white = 0.1 mu-law std
    shards/rank-<N>.json        per-process rows (sharded runs)
    metrics.csv, metrics.json   one row per scene
    summary.md                  the table of means

Sharding: process ``rank`` of ``world_size`` evaluates ``scenes[rank::world_size]``; rank 0 merges the
shards once every process has written its own.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import baseline
from ..errors import DatasetError, InputError, OutputError
from ..io import load_bracket, read_radiance, write_ldr, write_preview, write_radiance, write_text_atomically
from ..io.formats import RADIANCE_SUFFIXES
from ..metrics import DisplayAssumptions, compute_metrics
from ..metrics.report import METRIC_LABELS, json_value, write_tables
from ..hdr_domain import to_model_units

UNCERTAINTY_PREVIEW_MAX = 0.1  # mu-law std shown as white in the uncertainty PNG.


@dataclass
class Prediction:
    """One method's output for one scene.

    Attributes:
        radiance: float32 (H, W, 3) linear radiance.
        uncertainty: float32 (H, W, 3) per-pixel std over ensemble samples in the mu-law domain, or None.
    """

    radiance: np.ndarray
    uncertainty: np.ndarray | None = None


class BaselinePredictor:
    """A classical merge from :mod:`diffhdr_diffusers.evaluation.baselines`."""

    writes_radiance = True

    def __init__(self, name: str):
        self.run = baseline(name)
        self.label = name
        self.settings = {"method": name}

    def __call__(self, bracket) -> Prediction:
        return Prediction(self.run(bracket.images, bracket.exposures))


class PipelinePredictor:
    """A :class:`~diffhdr_diffusers.pipelines.DiffHDRPipeline`; ``ensemble`` > 1 averages that many samples.

    The pipeline draws the ensemble in one batched run (its ``ensemble_size``); sample k uses a CPU generator
    seeded ``seed + k``. Samples are averaged in the mu-law domain (the model's output domain, where the
    Kalantari PSNR-mu is measured) and the std there is the uncertainty.
    """

    writes_radiance = True

    def __init__(self, pipeline, label: str, num_inference_steps: int | None = None, patch_size: int | None = None,
                 stride: int | None = None, ensemble: int = 1, seed: int = 0,
                 processing_resolution: int | None = None):
        if ensemble < 1:
            raise InputError(f"--ensemble must be at least 1, got {ensemble}.")
        self.pipeline = pipeline
        self.label = label
        self.call_kwargs = {"num_inference_steps": num_inference_steps, "patch_size": patch_size, "stride": stride,
                            "processing_resolution": processing_resolution}
        if pipeline.device.type == "cpu":  # the diffhdr command tunes the allocator: larger CPU batches pay off
            from ..allocator import cpu_window_budget

            self.call_kwargs["window_memory_budget"] = cpu_window_budget()
        self.ensemble = ensemble
        self.seed = seed
        config = pipeline.config
        self.settings = {
            "model": label,
            "scheduler": type(pipeline.scheduler).__name__,
            "steps": num_inference_steps or config.default_num_inference_steps,
            "patch_size": patch_size or config.default_patch_size,
            "stride": stride or config.default_stride,
            "processing_resolution": config.default_processing_resolution if processing_resolution is None
            else processing_resolution,
            "ensemble": ensemble,
            "seed": seed,
        }

    def __call__(self, bracket) -> Prediction:
        import torch

        generators = [torch.Generator("cpu").manual_seed(self.seed + k) for k in range(self.ensemble)]
        output = self.pipeline(bracket.images, bracket.exposures, ensemble_size=self.ensemble, generator=generators,
                               output_type="np", **self.call_kwargs)
        uncertainty = None if output.uncertainty is None else np.asarray(output.uncertainty[0], dtype=np.float32)
        return Prediction(np.asarray(output.hdr[0], dtype=np.float32), uncertainty)


class PredictionsPredictor:
    """Already-written outputs of some method: ``<folder>/<scene>.hdr`` or ``.exr``."""

    writes_radiance = False

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"--predictions {self.folder}: not a folder; give the folder holding <scene>.hdr files.")
        self.label = f"predictions:{self.folder}"
        self.settings = {"predictions": str(self.folder)}

    def __call__(self, bracket) -> Prediction:
        for suffix in RADIANCE_SUFFIXES:
            path = self.folder / f"{bracket.name}{suffix}"
            if path.is_file():
                return Prediction(read_radiance(path))
        raise DatasetError(
            f"--predictions {self.folder}: no {bracket.name}.hdr or {bracket.name}.exr for scene {bracket.name!r}; "
            "name each output after its scene folder."
        )


def load_pipeline_predictor(model: str | None, scheduler: str | None = None, device=None, **kwargs) -> PipelinePredictor:
    """Load ``DiffHDRPipeline`` from a folder or Hub repo (the bundled model when ``model`` is None)."""
    from ..devices import default_device
    from ..pipelines import DiffHDRPipeline

    pipeline = DiffHDRPipeline.from_pretrained(model) if model else DiffHDRPipeline.from_pretrained()
    if scheduler:
        from ..schedulers import scheduler_from_name

        pipeline.scheduler = scheduler_from_name(scheduler, pipeline.scheduler.config)
    pipeline.to(default_device() if device is None else device)
    pipeline.set_progress_bar_config(disable=True)
    return PipelinePredictor(pipeline, model or "bundled default", **kwargs)


def discover_scenes(data_dir: str | os.PathLike) -> list[Path]:
    """Scene folders to evaluate, in natural order, found by the data module's Kalantari scanner.

    ``data_dir`` may be Kalantari's root (its ``Test/`` split is used), the ``Test/`` folder itself (its
    ``PAPER/`` and ``EXTRA/`` groupings are walked), a ``diffhdr synth`` output, or one scene folder.
    Outputs are named after the scene folder, so those names must be unique.
    """
    from ..data import find_scenes

    folders = [scene.folder for scene in find_scenes(data_dir, split="test", require_hdr=False)]
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder.name in seen:
            raise DatasetError(
                f"{data_dir}: scene folders {seen[folder.name]} and {folder} share the name {folder.name!r}, but "
                "outputs are named after the scene folder; evaluate the two groups separately."
            )
        seen[folder.name] = folder
    return folders


def shard(items: Sequence, rank: int, world_size: int) -> list:
    """This process's share: ``items[rank::world_size]``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise InputError(f"invalid process rank {rank} of world size {world_size}.")
    return list(items)[rank::world_size]


def peak_memory_mib() -> dict[str, float | None]:
    """Peak resident memory of this process and peak CUDA memory allocated by torch, in MiB."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS.
    rss_mib = rss_kib / 2**20 if sys.platform == "darwin" else rss_kib / 2**10
    gpu_mib = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu_mib = torch.cuda.max_memory_allocated() / 2**20
    return {"peak_rss_mib": rss_mib, "peak_gpu_mib": gpu_mib}


def _synchronize() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _write_uncertainty(out_dir: Path, scene: str, uncertainty: np.ndarray, overwrite: bool) -> None:
    write_radiance(out_dir / "uncertainty" / f"{scene}.exr", uncertainty, overwrite=overwrite)
    grey = np.clip(uncertainty.mean(axis=-1) / UNCERTAINTY_PREVIEW_MAX, 0.0, 1.0)
    write_ldr(out_dir / "uncertainty" / f"{scene}.png", np.repeat(grey[..., None], 3, axis=-1), bits=8,
              overwrite=overwrite)


def evaluate_scene(scene_dir: Path, predictor: Callable, out_dir: Path, display: DisplayAssumptions,
                   overwrite: bool = False, cvvdp: bool = False) -> dict:
    """Predict, write the outputs and score one scene; returns its row for the tables."""
    bracket = load_bracket(scene_dir)
    _synchronize()
    start = time.perf_counter()
    prediction = predictor(bracket)
    _synchronize()
    seconds = time.perf_counter() - start
    radiance = prediction.radiance
    row: dict = {"scene": bracket.name, "height": radiance.shape[0], "width": radiance.shape[1], "seconds": seconds}
    for folder in ("hdr", "previews", "uncertainty"):
        if folder != "uncertainty" or prediction.uncertainty is not None:
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
    if getattr(predictor, "writes_radiance", True):
        write_radiance(out_dir / "hdr" / f"{bracket.name}.hdr", radiance, overwrite=overwrite)
    write_preview(out_dir / "previews" / f"{bracket.name}.png", radiance, overwrite=overwrite)
    if prediction.uncertainty is not None:
        _write_uncertainty(out_dir, bracket.name, prediction.uncertainty, overwrite)
        row["mean_uncertainty_mu"] = float(prediction.uncertainty.mean())
    if bracket.ground_truth is not None:
        target = read_radiance(bracket.ground_truth)
        if target.shape != radiance.shape:
            raise DatasetError(
                f"{bracket.ground_truth}: ground truth is {target.shape[1]}x{target.shape[0]} but the prediction for "
                f"scene {bracket.name!r} is {radiance.shape[1]}x{radiance.shape[0]}; they must match."
            )
        # Scored in model units (the shortest exposure at EV 0), the scale the Kalantari protocol assumes.
        scale = lambda image: to_model_units(image, bracket.exposures)  # noqa: E731
        row.update(compute_metrics(scale(radiance), scale(target), display=display, cvvdp=cvvdp))
    return row


# ---------------------------------------------------------------------------------------------------
# Processes


@dataclass
class ProcessGroup:
    """This process's place in a sharded run; ``barrier`` is accelerate's ``wait_for_everyone`` if any."""

    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], None] | None = None
    device: object = None
    started: float = field(default_factory=time.time)


def process_group() -> ProcessGroup:
    """Rank and world size from ``accelerate launch`` / torchrun, or plain RANK / WORLD_SIZE variables.

    Under a launcher (MASTER_ADDR set) accelerate's ``PartialState`` joins the process group, so ranks
    can wait for each other; with only RANK / WORLD_SIZE set, rank 0 waits for the shard files instead.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1 and "MASTER_ADDR" in os.environ:
        import torch
        from accelerate import PartialState

        from ..devices import cpu_forced

        use_cpu = cpu_forced() or not torch.cuda.is_available()
        state = PartialState(cpu=use_cpu)  # accelerate 1.15 ignores ACCELERATE_USE_CPU here unless told.
        if state.num_processes == world_size:
            return ProcessGroup(state.process_index, state.num_processes, state.wait_for_everyone, state.device)
    return ProcessGroup(rank, world_size)


def _shard_path(out_dir: Path, rank: int) -> Path:
    return out_dir / "shards" / f"rank-{rank}.json"


def _collect_shards(out_dir: Path, group: ProcessGroup, timeout: float, poll: float = 0.5) -> list[dict]:
    """Rank 0: read every rank's shard file, waiting up to ``timeout`` seconds for the missing ones."""
    deadline = time.monotonic() + timeout
    shards: dict[int, dict] = {}
    while True:
        for rank in range(group.world_size):
            path = _shard_path(out_dir, rank)
            # Files older than this run (minus slack for ranks that started earlier) are stale leftovers.
            if rank not in shards and path.is_file() and path.stat().st_mtime >= group.started - 60:
                shards[rank] = json.loads(path.read_text())
        if len(shards) == group.world_size:
            return [shards[rank] for rank in range(group.world_size)]
        if time.monotonic() > deadline:
            missing = sorted(set(range(group.world_size)) - set(shards))
            raise OutputError(
                f"{out_dir / 'shards'}: ranks {missing} wrote no results within {timeout:.0f} s; check those "
                "processes' logs, or rerun with a larger --shard-timeout."
            )
        time.sleep(poll)


def run_evaluation(data_dir: str | os.PathLike, out_dir: str | os.PathLike, predictor: Callable,
                   display: DisplayAssumptions | None = None, limit: int | None = None, overwrite: bool = False,
                   cvvdp: bool = False, group: ProcessGroup | None = None, shard_timeout: float = 3600.0,
                   log: Callable[[str], None] | None = print) -> str | None:
    """Evaluate this process's share of the scenes; rank 0 writes the tables and returns the summary.

    Args:
        data_dir: a Kalantari-layout folder (or one scene folder).
        out_dir: results folder (created).
        predictor: a :class:`BaselinePredictor`, :class:`PipelinePredictor` or :class:`PredictionsPredictor`.
        display: the display assumptions of the perceptual metrics.
        limit: evaluate only the first ``limit`` scenes (sorted by name).
        overwrite: replace existing outputs instead of refusing.
        cvvdp: also compute ColorVideoVDP (needs the optional ``cvvdp`` package).
        group: rank and world size (default: from the environment, see :func:`process_group`).
        shard_timeout: seconds rank 0 waits for the other ranks' shard files.
        log: where progress lines go (None for silence).
    """
    display = display or DisplayAssumptions()
    group = group or process_group()
    out_dir = Path(out_dir)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be a positive number of scenes, got {limit}.")
    if not overwrite and (out_dir / "metrics.json").exists():
        raise OutputError(f"{out_dir}: already holds results (metrics.json); pass --overwrite or choose a new --out.")
    if cvvdp:
        from ..metrics import cvvdp_available, cvvdp_jod

        if not cvvdp_available():
            cvvdp_jod(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)))  # Raises the clear MissingDependencyError.
    scenes = discover_scenes(data_dir)[:limit]
    mine = shard(scenes, group.rank, group.world_size)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    _shard_path(out_dir, group.rank).unlink(missing_ok=True)

    rows = []
    for index, scene_dir in enumerate(mine, 1):
        row = evaluate_scene(scene_dir, predictor, out_dir, display, overwrite=overwrite, cvvdp=cvvdp)
        rows.append(row)
        if log:
            scores = " ".join(f"{METRIC_LABELS[k]}={row[k]:.4g}" for k in METRIC_LABELS if k in row)
            log(f"[rank {group.rank}] {index}/{len(mine)} {row['scene']}: {row['seconds']:.2f} s {scores}")
    shard_document = {"rank": group.rank, "world_size": group.world_size, "memory": peak_memory_mib(),
                      "rows": [{k: json_value(v) for k, v in row.items()} for row in rows]}
    write_text_atomically(_shard_path(out_dir, group.rank), json.dumps(shard_document))
    if group.barrier is not None:
        group.barrier()
    if group.rank != 0:
        return None

    shards = _collect_shards(out_dir, group, shard_timeout) if group.world_size > 1 else [shard_document]
    all_rows = [_row_from_json(row) for document in shards for row in document["rows"]]
    memory = {}
    for key in ("peak_rss_mib", "peak_gpu_mib"):
        values = [document["memory"][key] for document in shards if document["memory"][key] is not None]
        memory[key] = max(values) if values else None
    settings = {**predictor.settings, "processes": group.world_size}
    summary = write_tables(all_rows, out_dir, predictor.label, settings, memory, display, str(data_dir), overwrite)
    if log:
        log(summary)
    return summary


def _row_from_json(row: dict) -> dict:
    return {key: (float(value) if value in ("inf", "-inf") else value) for key, value in row.items()}
