"""One merge-method layer behind every entry point: ``load_method(name | model) -> Method``; ``Method(bracket)``.

``diffhdr merge``, batch mode, ``diffhdr evaluate``, the web app and training's validation all merge through
here, so that a bracket takes one path whatever the front end::

    from diffhdr_diffusers.methods import load_method

    method = load_method("flow-merge")                    # or "diffhdr" / None (the bundled model), a folder, a Hub id
    result = method(frames, exposures)                    # frames as read (code values), short to long
    result.radiance, result.uncertainty, result.rejected, result.camera.to_dict(), result.seconds

A call first maps the frames through the camera's response (:func:`~diffhdr_diffusers.camera.apply_camera`,
the one place a response is applied), then merges the canonical frames with the camera's exposures.

The layer owns what every front end used to repeat: pipeline loading (:func:`load_pipeline`), schedulers by
name, the device, the CPU window budget, the presets (:func:`fast_preset`), ensembles (always the pipeline's
``ensemble_size``) and the classical merges (:mod:`.classical`).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..alignment import RejectedFrame
from ..errors import USE_FLOW_MERGE, FallbackWarning, InputError
from ..io.formats import MAX_FRAMES, MIN_FRAMES
from ..hdr_domain import GAMMA
from .classical import BASELINES

MODEL = "diffhdr"
CLASSICAL = tuple(sorted(BASELINES))
#: The sampling options a model takes (``load_method`` keywords; the pipeline's call arguments, plus the
#: scheduler by name, ``fast``, ``ensemble`` and ``seed``).
SAMPLING_OPTIONS = ("num_inference_steps", "scheduler", "processing_resolution", "patch_size", "stride",
                    "condition_per_window", "window_blend", "window_batch_size", "fast", "ensemble", "seed")
FAST_STEPS = 5


class FrameCountError(InputError):
    """The model merges a fixed number of frames and the bracket has another; ``suggested_method`` merges it."""

    suggested_method = "flow-merge"


@dataclass
class MergeResult:
    """One merged bracket.

    Attributes:
        radiance: float32 (H, W, 3) linear radiance in the exposures' units (the camera's, after any correction).
        uncertainty: float32 (H, W, 3) per-pixel std of an ensemble in the mu-law domain, or None.
        rejected: the frames not used, with their reasons.
        camera: the :class:`~diffhdr_diffusers.camera.CameraModel` applied (``camera.to_dict()`` for records).
        reference_index: the reference frame.
        seconds: wall time of the call; ``timing`` splits it into ``camera`` and ``merge``.
        method: the method's label.
        notes: information about the bracket, not a problem (the frames were sorted by exposure).
        bracket_warnings: the bracket's own warnings (EXIF that disagrees with the exposure file, RAW without
            white balance); they lead :meth:`warnings`.
    """

    radiance: np.ndarray
    uncertainty: np.ndarray | None
    rejected: list[RejectedFrame]
    camera: object
    reference_index: int
    seconds: float
    timing: dict = field(default_factory=dict)
    method: str = ""
    notes: list[str] = field(default_factory=list)
    bracket_warnings: list[str] = field(default_factory=list)

    @property
    def fallback(self) -> bool:
        """Whether something fell back: a rejected frame or a default response instead of an estimated one."""
        return bool(self.rejected) or bool(self.camera.fallback)

    def warnings(self, names: Sequence[str] | None = None) -> list[str]:
        """One line per fallback (response, exposure correction, each rejected frame), frames named by ``names``."""
        camera = [re.sub(r"^frame (\d+):", lambda match: f"{names[int(match.group(1)) - 1]}:", warning) if names
                  else warning for warning in self.camera.warnings]
        lines = list(self.bracket_warnings) + [f"camera response: {warning}" for warning in camera]
        for frame in self.rejected:
            name = names[frame.index] if names else f"frame {frame.index + 1}"
            lines.append(f"{name} not used: {frame.reason}; the merge uses the reference frame there.")
        return lines

    def metadata(self) -> dict:
        """What to save with the output: the method, the camera (response and exposures) and the frames not used."""
        return {"method": self.method, "reference_index": self.reference_index, "camera": self.camera.to_dict(),
                "rejected": [{"index": frame.index, "reason": frame.reason} for frame in self.rejected]}


class Method:
    """A merge method: call it with a bracket's frames (as read, short to long) and their EVs.

    Args:
        name: ``"diffhdr"`` for a model, else one of :data:`CLASSICAL`.
        label: how results name it.
        response: the default ``response`` of a call: ``"auto"``, ``"srgb"``, ``"linear"``, ``"gamma:G"``, a file,
            or a :class:`~diffhdr_diffusers.camera.Response`.
        settings: what decides the result (for batch done-markers and evaluation tables).
    """

    gamma = GAMMA

    def __init__(self, name: str, label: str, response="auto", settings: dict | None = None):
        self.name, self.label, self.response = name, label, response
        self.settings = {"method": name, **(settings or {})}

    def __call__(self, frames: Sequence[np.ndarray], exposures: Sequence[float], reference_index: int | None = None,
                 response=None) -> MergeResult:
        """Merge a bracket: ``response`` (default: the method's) maps the frames, the method merges them."""
        from ..camera import apply_camera

        frames = list(frames)
        reference_index = self.reference_for(len(frames), reference_index)
        start = time.perf_counter()
        canonical, camera = apply_camera(frames, exposures, self.response if response is None else response,
                                         gamma=self.gamma, reference_index=reference_index)
        mapped = time.perf_counter()
        radiance, uncertainty, rejected = self.merge(canonical, camera.exposures, reference_index)
        if rejected and camera.source == "auto":
            retried = self._estimate_without(frames, exposures, reference_index, rejected, camera)
            camera, radiance, uncertainty, rejected = retried or (camera, radiance, uncertainty, rejected)
        end = time.perf_counter()
        return MergeResult(np.asarray(radiance, dtype=np.float32), uncertainty, rejected, camera, reference_index,
                           end - start, {"camera": mapped - start, "merge": end - mapped}, self.label)

    def _estimate_without(self, frames, exposures, reference_index, rejected, camera):
        """A frame that matches nothing (another scene's, a flash) spoils the response estimated from the whole
        bracket, and good frames are then refused with it. Estimate the response again without each rejected frame
        in turn and merge the whole bracket with it (the frame is judged again); ``(camera, radiance, uncertainty,
        rejected)`` of the merge that uses the most frames, or ``None`` when none uses more than the first."""
        from ..camera import CameraModel, encode_canonical, estimate_camera

        best, used = None, len(frames) - len(rejected)
        for left_out in rejected:
            kept = [index for index in range(len(frames)) if index != left_out]
            if len(kept) < 2:
                continue
            retry = estimate_camera([frames[i] for i in kept], [exposures[i] for i in kept],
                                    reference_index=kept.index(reference_index))
            if retry.fallback:
                continue
            # The frame left out keeps its nominal offset from the reference.
            evs = dict(zip(kept, retry.exposures))
            evs[left_out] = float(exposures[left_out]) - float(exposures[reference_index]) + evs[reference_index]
            evs = [evs[index] for index in range(len(frames))]
            radiance, uncertainty, again = self.merge(encode_canonical(frames, retry.response, self.gamma), evs,
                                                      reference_index)
            if len(frames) - len(again) <= used:
                continue
            more, used = len(rejected) - len(again), len(frames) - len(again)  # than the first merge used
            note = (f"frame {left_out + 1}: refused under the first estimate; estimated again without it, the merge "
                    f"uses {more} more frame{'s' * (more > 1)}")
            best = (CameraModel(retry.response, "auto", evs, list(camera.nominal_exposures), [*retry.warnings, note]),
                    radiance, uncertainty, list(again))
        return best

    def merge_bracket(self, bracket, reference_index: int | None = None, response=None) -> MergeResult:
        """Merge a :class:`~diffhdr_diffusers.io.Bracket` as read: a RAW bracket's frames are linear already, so
        ``auto`` means the linear response for them, and their radiance leaves camera RGB for Rec.709 after the
        merge (each sensor channel clips on its own there); the bracket's warnings lead the result's, and its notes
        are the result's notes."""
        chosen = self.response if response is None else response
        ignored = []
        if bracket.response_hint == "linear" and chosen != "linear":
            if chosen != "auto":  # a curve meant for a shoot's JPEGs would bend RAW data into wrong radiance
                ignored.append(f"response {getattr(chosen, 'name', chosen)} not applied: RAW frames are linear as "
                               "decoded, so the linear response is used for them")
            chosen = "linear"
        result = self(bracket.images, bracket.exposures, reference_index=reference_index, response=chosen)
        result.radiance = bracket.to_rec709(result.radiance)
        result.notes, result.bracket_warnings = list(bracket.notes), [*bracket.warnings, *ignored]
        return result

    @property
    def words(self) -> str:
        """The method as a sentence names it: ``flow-merge``, ``the bundled model``."""
        return self.label

    def reference_for(self, count: int, reference_index: int | None) -> int:
        """The reference frame of an N-frame bracket: ``reference_index``, or the middle frame (``N // 2``)."""
        if count < 2:
            raise InputError(f"a bracket needs at least 2 frames; got {count}.")
        index = count // 2 if reference_index is None else int(reference_index)
        if not 0 <= index < count:
            raise InputError(f"reference index {index}: a bracket of {count} frames has frames 0 to {count - 1}.")
        return index

    def merge(self, frames: list[np.ndarray], exposures: list[float], reference_index: int):
        """``(radiance, uncertainty or None, the frames not used)`` of canonical frames; each frame not used is a
        :class:`~diffhdr_diffusers.alignment.RejectedFrame`, its index with alignment's reason."""
        raise NotImplementedError


class ClassicalMethod(Method):
    """flow-merge, reference, naive-merge or debevec (:mod:`.classical`)."""

    def merge(self, frames, exposures, reference_index):
        if self.name == "flow-merge":
            from .. import merging

            merged = merging.flow_merge_radiance(frames, exposures, reference_index, details=True)  # bounded memory
            return merged.radiance, None, merged.rejected
        return BASELINES[self.name](frames, exposures, reference_index), None, []


def fast_preset(config) -> dict:
    """The fast preset of a pipeline ``config`` (:func:`~diffhdr_diffusers.pipelines.presets.sampling_preset`):
    at most half the default's UNet window passes, so never slower than the default."""
    from ..pipelines.presets import sampling_preset

    return sampling_preset("fast", config)


def weights_digest(pipeline) -> str:
    """A short digest of a pipeline's UNet and condition encoder weights: each tensor's name, shape and first values
    (cheap at any model size, and different for any two trainings)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for model in (pipeline.unet, pipeline.condition_encoder):
        for name, tensor in model.state_dict().items():
            head = tensor.detach().flatten()[:64].to("cpu", torch.float32)
            digest.update(f"{name}{tuple(tensor.shape)}".encode())
            digest.update(head.numpy().tobytes())
    return digest.hexdigest()[:12]


class ModelMethod(Method):
    """A :class:`~diffhdr_diffusers.pipelines.DiffHDRPipeline` with sampling options; ``ensemble`` K > 1 draws K
    samples (seeds ``seed .. seed + K - 1``) in one batched run and returns their mu-law std as uncertainty."""

    def __init__(self, pipeline, label: str, response=None, fast: bool = False, ensemble: int = 1, seed: int = 0,
                 scheduler: str | None = None, **options):
        if int(ensemble) < 1:
            raise InputError(f"ensemble size {ensemble}: must be at least 1.")
        if scheduler:
            from ..schedulers import scheduler_from_name

            pipeline.scheduler = scheduler_from_name(scheduler, pipeline.scheduler.config)
        config = pipeline.config
        self.pipeline, self.ensemble, self.seed = pipeline, int(ensemble), int(seed)
        self.gamma = float(getattr(config, "gamma", GAMMA))
        preset = fast_preset(config) if fast else {}
        self.options = dict(preset)
        self.options.update({key: value for key, value in options.items() if value is not None})
        if pipeline.device.type == "cpu":  # the diffhdr command tunes the allocator: larger CPU batches pay off
            from ..allocator import cpu_window_budget

            self.options["window_memory_budget"] = cpu_window_budget()
        paper = config.alignment is None
        # The paper's model was trained on Kalantari's gamma-2.2 frames: its default response is that camera's.
        default_response = "gamma:2.2" if paper else "auto"
        encoder = pipeline.condition_encoder.config
        self.exposure_counts = pipeline.exposure_counts
        # A fixed-size model merges onto its own reference frame; a frame-count-independent one onto the middle one.
        self.model_reference = getattr(encoder, "reference_index", None)
        steps = self.options.get("num_inference_steps", config.default_num_inference_steps)
        # "fast" records whether the preset changed anything (a one-step model's fast preset is its default), and
        # "model_weights" which weights merged (a batch rerun after the bundled model changed is then no "same").
        settings = {"model": label, "model_weights": weights_digest(pipeline),
                    "scheduler": type(pipeline.scheduler).__name__, "steps": steps,
                    "fast": bool(preset), "ensemble": self.ensemble, "seed": self.seed,
                    **{key: value for key, value in self.options.items()
                       if key not in ("num_inference_steps", "window_memory_budget")}}
        settings.setdefault("patch_size", config.default_patch_size)
        settings.setdefault("stride", config.default_stride)
        settings.setdefault("processing_resolution", config.default_processing_resolution)
        super().__init__(MODEL, label, default_response if response is None else response, settings)

    @property
    def words(self) -> str:
        return "the bundled model" if self.label == "bundled model" else f"the model {self.label}"

    def reference_for(self, count: int, reference_index: int | None) -> int:
        low, high = self.exposure_counts
        if not low <= count <= high:
            accepted = f"exactly {high}" if low == high else f"{low} to {high}"
            remedy = (USE_FLOW_MERGE if MIN_FRAMES <= count <= MAX_FRAMES else
                      f"every method merges {MIN_FRAMES} to {MAX_FRAMES}: leave frames out")
            raise FrameCountError(f"{self.words} merges {accepted} frames, but this bracket has {count}; {remedy}.")
        index = super().reference_for(count, reference_index)
        expected = count // 2 if self.model_reference is None else self.model_reference
        if index != expected:
            where = "the middle one" if count % 2 else "the longer of the two middle ones"
            raise InputError(f"reference index {index}: {self.words} merges onto frame {expected} ({where}); leave "
                             f"the reference at that frame, or merge with flow-merge, which takes any reference.")
        return index

    def merge(self, frames, exposures, reference_index):
        import torch

        generators = [torch.Generator().manual_seed(self.seed + k) for k in range(self.ensemble)]
        with warnings.catch_warnings():  # the result reports the frames not used itself
            warnings.simplefilter("ignore", FallbackWarning)
            output = self.pipeline(frames, exposures, ensemble_size=self.ensemble,
                                   generator=generators if self.ensemble > 1 else generators[0], **self.options)
        uncertainty = None if output.uncertainty is None else np.asarray(output.uncertainty[0], dtype=np.float32)
        return output.hdr[0], uncertainty, list((output.alignment_failures or [[]])[0])


def load_pipeline(model: str | None = None, device: str | None = None, trust_remote_code: bool = False,
                  progress: bool = True):
    """A :class:`~diffhdr_diffusers.pipelines.DiffHDRPipeline` from a folder or Hub id (``None``: the bundled
    model), on ``device`` (default: :func:`~diffhdr_diffusers.devices.default_device`)."""
    from ..devices import resolve_device
    from ..pipelines import DiffHDRPipeline

    pipeline = DiffHDRPipeline.from_pretrained(model, trust_remote_code=trust_remote_code)
    pipeline = pipeline.to(resolve_device(device))
    pipeline.set_progress_bar_config(disable=not progress, desc="Sampling")
    return pipeline


def load_method(name_or_model=None, device: str | None = None, response=None, trust_remote_code: bool = False,
                progress: bool = True, **sampling) -> Method:
    """The merge method ``name_or_model`` names.

    Args:
        name_or_model: a classical merge (:data:`CLASSICAL`: ``"flow-merge"``, ``"reference"``, ``"naive-merge"``,
            ``"debevec"``); ``None`` or ``"diffhdr"`` for the bundled model; a pipeline folder or Hub id; or a
            loaded :class:`~diffhdr_diffusers.pipelines.DiffHDRPipeline`.
        device: where a model runs (default: CUDA if present, else the CPU).
        response: the camera response a call applies unless it names one (default ``"auto"``: estimated from the
            bracket; ``"gamma:2.2"`` for the paper's model, which was trained on that camera).
        trust_remote_code: accept a model folder whose Python files are not this library's (never executed).
        progress: show the model's sampling progress bar.
        **sampling: a model's :data:`SAMPLING_OPTIONS`; ``fast=True`` is :func:`fast_preset`.

    Raises :class:`~diffhdr_diffusers.errors.InputError` for a sampling option given to a classical merge.
    """
    unknown = sorted(set(sampling) - set(SAMPLING_OPTIONS))
    if unknown:
        raise InputError(f"unknown sampling option(s) {', '.join(unknown)}; choose from {', '.join(SAMPLING_OPTIONS)}.")
    if isinstance(name_or_model, str) and name_or_model in BASELINES:
        given = [key for key, value in sampling.items()
                 if value not in (None, False) and not (key == "ensemble" and value == 1) and key != "seed"]
        if given:
            raise InputError(f"{', '.join(given)}: sampling options apply to a model only, not to {name_or_model}.")
        return ClassicalMethod(name_or_model, name_or_model, "auto" if response is None else response)
    if name_or_model is None or isinstance(name_or_model, str):
        model = None if name_or_model in (None, MODEL) else name_or_model
        pipeline = load_pipeline(model, device, trust_remote_code, progress)
        label = model or "bundled model"
    else:
        from ..pipelines.loading import DEFAULT_MODEL_DIR

        pipeline, label = name_or_model, getattr(name_or_model, "name_or_path", None) or "pipeline"
        if Path(label).resolve() == DEFAULT_MODEL_DIR:
            label = "bundled model"
        if device is not None:
            pipeline = pipeline.to(device)
    return ModelMethod(pipeline, str(label), response, **sampling)


__all__ = [
    "CLASSICAL",
    "ClassicalMethod",
    "FrameCountError",
    "MergeResult",
    "Method",
    "ModelMethod",
    "RejectedFrame",
    "SAMPLING_OPTIONS",
    "fast_preset",
    "load_method",
    "load_pipeline",
]
