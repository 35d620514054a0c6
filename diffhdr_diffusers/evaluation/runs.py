"""Evaluate a merge method on every scene of a Kalantari-layout folder, the way papers report it.

A *predictor* turns one :class:`~diffhdr_diffusers.io.Bracket` into a :class:`Prediction`. Two kinds share one
code path: a merge method of :mod:`diffhdr_diffusers.methods` (a DiffHDR model, optionally an ensemble of K samples,
or a classical merge), and already-written outputs of another method. For each scene the
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

Scores are computed on the radiance as stored (the files' own units, as peers' scripts score them); ``units=
"model"`` rescales prediction and ground truth to model units (the shortest exposure at EV 0) first.

Sharding (:mod:`diffhdr_diffusers.sharding`): each process evaluates its share of the scenes; rank 0 gathers the
rows and writes the tables.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ALLOW_OVERWRITE, DatasetError, InputError, OutputError
from ..io import read_radiance, write_ldr, write_preview, write_radiance
from ..io.formats import RADIANCE_SUFFIXES
from ..metrics import DisplayAssumptions, compute_metrics
from ..metrics.report import METRIC_LABELS, json_value, write_tables
from ..hdr_domain import to_model_units
from ..sharding import ProcessGroup

UNCERTAINTY_PREVIEW_MAX = 0.1  # mu-law std shown as white in the uncertainty PNG.
#: How radiance is scaled before scoring: as stored (the default, as peers score), or in model units.
UNITS = {"stored": "scored as stored (the files' own units, as peers' scripts score them)",
         "model": "scored in model units (prediction and ground truth rescaled so the shortest exposure is EV 0)"}


@dataclass
class Prediction:
    """One method's output for one scene.

    Attributes:
        radiance: float32 (H, W, 3) linear radiance.
        uncertainty: float32 (H, W, 3) per-pixel std over ensemble samples in the mu-law domain, or None.
        camera: the :class:`~diffhdr_diffusers.camera.CameraModel` the merge applied (None for written outputs).
        warnings: the merge's fallbacks (response, frames not used), one line each.
    """

    radiance: np.ndarray
    uncertainty: np.ndarray | None = None
    camera: object = None
    warnings: list[str] = field(default_factory=list)


class MethodPredictor:
    """A :class:`~diffhdr_diffusers.methods.Method`: the camera's response, then the merge.

    ``response``: the response of every scene (``None``: the method's), or ``"scene"`` for the one each scene's
    ``scene.json`` records (:func:`scene_response`).
    """

    writes_radiance = True

    def __init__(self, method, response=None, reference_index: int | None = None):
        self.method, self.response, self.reference_index = method, response, reference_index
        self.label = method.label
        self.settings = {**method.settings, "response": "scene.json" if response == "scene" else
                         str(response or method.response)}

    def __call__(self, bracket) -> Prediction:
        response = self.response
        if response == "scene":
            response = scene_response(bracket.paths[0].parent)
        result = self.method.merge_bracket(bracket, reference_index=self.reference_index, response=response)
        return Prediction(result.radiance, result.uncertainty, result.camera, result.warnings(
            [path.name for path in bracket.paths]))


def scene_response(folder: Path):
    """The camera response a scene folder's ``scene.json`` records: its ``"response"`` (a name or a response dict),
    or ``camera.response``, where ``diffhdr synth`` records it."""
    from ..camera import Response, parse_response

    path = Path(folder) / "scene.json"
    try:
        document = json.loads(path.read_text())
        recorded = document.get("response", (document.get("camera") or {}).get("response"))
    except (OSError, ValueError, AttributeError) as error:
        raise DatasetError(f"{path}: cannot read the scene's recorded response ({error}); score with a named "
                           "response instead.") from None
    if recorded is None:
        raise DatasetError(f"{path}: records no \"response\"; score this set with a named response instead.")
    return Response.from_dict(recorded, str(path)) if isinstance(recorded, dict) else parse_response(recorded)


class PredictionsPredictor:
    """Already-written outputs of some method: ``<folder>/<scene>.hdr`` or ``.exr``; an earlier ``diffhdr
    evaluate --out`` folder is read from its ``hdr/``."""

    writes_radiance = False

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"predictions {self.folder}: not a folder; give the folder holding <scene>.hdr files.")
        if (self.folder / "metrics.json").is_file() and (self.folder / "hdr").is_dir():
            self.folder = self.folder / "hdr"  # an evaluation's own output folder
        self.label = f"predictions:{self.folder}"
        self.settings = {"predictions": str(self.folder)}

    def __call__(self, bracket) -> Prediction:
        for suffix in RADIANCE_SUFFIXES:
            path = self.folder / f"{bracket.name}{suffix}"
            if path.is_file():
                return Prediction(read_radiance(path))
        raise DatasetError(
            f"predictions {self.folder}: no {bracket.name}.hdr or {bracket.name}.exr for scene {bracket.name!r}; "
            "name each output after its scene folder."
        )


def discover_scenes(data_dir: str | os.PathLike) -> list[Path]:
    """Scene folders to evaluate (or merge), in natural order, found by the data module's scanner.

    ``data_dir`` may be Kalantari's root (its ``Test/`` split is used), the ``Test/`` folder itself (its
    ``PAPER/`` and ``EXTRA/`` groupings are walked), a ``diffhdr synth`` output, or one scene folder. A scene
    may hold any number of frames; each is read (and a bad one fails) when its turn comes. Outputs are named
    after the scene folder, so those names must be unique.
    """
    from ..data.scenes import find_scene_folders, split_folder

    base = split_folder(Path(data_dir), "test")
    folders = find_scene_folders(base)
    if not folders:
        raise DatasetError(f"{base}: holds no scene folders (folders with LDR images and an exposure file).")
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder.name in seen:
            raise DatasetError(
                f"{data_dir}: scene folders {seen[folder.name]} and {folder} share the name {folder.name!r}, but "
                "outputs are named after the scene folder; give the two groups separately."
            )
        seen[folder.name] = folder
    return folders


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
                   overwrite: bool = False, cvvdp: bool = False, units: str = "stored") -> dict:
    """Predict, write the outputs and score one scene (``units``: see :data:`UNITS`); returns its row."""
    from ..methods.frames import read_bracket

    bracket = read_bracket(scene_dir)
    _synchronize()
    start = time.perf_counter()
    prediction = predictor(bracket)
    _synchronize()
    seconds = time.perf_counter() - start
    radiance = prediction.radiance
    row: dict = {"scene": bracket.name, "height": radiance.shape[0], "width": radiance.shape[1], "seconds": seconds}
    if prediction.camera is not None:
        row["response"] = prediction.camera.response.name
    if prediction.warnings:
        row["warnings"] = " ".join(prediction.warnings)
    metadata = {"camera": prediction.camera.to_dict()} if prediction.camera is not None else None
    for folder in ("hdr", "previews", "uncertainty"):
        if folder != "uncertainty" or prediction.uncertainty is not None:
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
    if getattr(predictor, "writes_radiance", True):
        write_radiance(out_dir / "hdr" / f"{bracket.name}.hdr", radiance, overwrite=overwrite, metadata=metadata)
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
        if units == "model":  # the shortest exposure at EV 0, as the model's training targets
            radiance, target = (to_model_units(image, bracket.exposures) for image in (radiance, target))
        row.update(compute_metrics(radiance, target, display=display, cvvdp=cvvdp))
    return row


def run_evaluation(data_dir: str | os.PathLike, out_dir: str | os.PathLike, predictor: Callable,
                   display: DisplayAssumptions | None = None, limit: int | None = None, overwrite: bool = False,
                   cvvdp: bool = False, group: ProcessGroup | None = None, shard_timeout: float = 3600.0,
                   log: Callable[[str], None] | None = print, units: str = "stored") -> str | None:
    """Evaluate this process's share of the scenes; rank 0 writes the tables and returns the summary.

    Args:
        data_dir: a Kalantari-layout folder (or one scene folder).
        out_dir: results folder (created).
        predictor: a :class:`MethodPredictor` or :class:`PredictionsPredictor`.
        display: the display assumptions of the perceptual metrics.
        limit: evaluate only the first ``limit`` scenes (sorted by name).
        overwrite: replace existing outputs instead of refusing.
        cvvdp: also compute ColorVideoVDP (needs the optional ``cvvdp`` package).
        group: rank and world size (default: from the environment, see :func:`~diffhdr_diffusers.sharding.process_group`).
        shard_timeout: seconds rank 0 waits for the other ranks' shard files (without a launcher).
        log: where progress lines go (None for silence).
        units: ``"stored"`` (the default) or ``"model"``; see :data:`UNITS`.
    """
    if units not in UNITS:
        raise InputError(f"score units {units!r}: choose {' or '.join(UNITS)}.")
    from ..sharding import process_group

    display = display or DisplayAssumptions()
    group = group or process_group()
    out_dir = Path(out_dir)
    if limit is not None and limit < 1:
        raise InputError(f"scene limit must be a positive number of scenes, got {limit}.")
    if not overwrite and (out_dir / "metrics.json").exists():
        raise OutputError(f"{out_dir}: already holds results (metrics.json); {ALLOW_OVERWRITE}, or choose a new results folder.")
    if cvvdp:
        from ..metrics import cvvdp_available, cvvdp_jod

        if not cvvdp_available():
            cvvdp_jod(np.zeros((1, 1, 3)), np.zeros((1, 1, 3)))  # Raises the clear MissingDependencyError.
    scenes = discover_scenes(data_dir)[:limit]
    mine = group.split(scenes)
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    if log:
        log(f"[rank {group.rank}] {UNITS[units]}")

    rows = []
    for index, scene_dir in enumerate(mine, 1):
        row = evaluate_scene(scene_dir, predictor, out_dir, display, overwrite=overwrite, cvvdp=cvvdp, units=units)
        rows.append(row)
        if log:
            scores = " ".join(f"{METRIC_LABELS[k]}={row[k]:.4g}" for k in METRIC_LABELS if k in row)
            log(f"[rank {group.rank}] {index}/{len(mine)} {row['scene']}: {row['seconds']:.2f} s {scores}")
    shard_document = {"rank": group.rank, "world_size": group.world_size, "memory": peak_memory_mib(),
                      "rows": [{k: json_value(v) for k, v in row.items()} for row in rows]}
    shards = group.gather(shard_document, out_dir / "shards", shard_timeout)
    if shards is None:
        return None
    all_rows = [_row_from_json(row) for document in shards for row in document["rows"]]
    memory = {}
    for key in ("peak_rss_mib", "peak_gpu_mib"):
        values = [document["memory"][key] for document in shards if document["memory"][key] is not None]
        memory[key] = max(values) if values else None
    settings = {**predictor.settings, "scores": units, "processes": group.world_size}
    summary = write_tables(all_rows, out_dir, predictor.label, settings, memory, display, str(data_dir), overwrite)
    if log:
        log(summary)
    return summary


def _row_from_json(row: dict) -> dict:
    return {key: (float(value) if value in ("inf", "-inf") else value) for key, value in row.items()}
