"""DiffHDR: ghost-free HDR merging of an exposure bracket with patch-tiled conditional diffusion.

A call reads as the algorithm: check the arguments, prepare the bracket (and, for aligned models, the
flow-merge prior), compute the condition features, denoise on window grids, and decode in the mu-law
domain (averaging an ensemble). Saving and loading live in [`~pipelines.loading`], window features in
[`~pipelines.window_features`], tiling in [`~pipelines.tiling`] and memory heuristics in [`~pipelines.memory`].
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from ..alignment import RejectedFrame
from ..errors import FallbackWarning, InputError, SamplingError
from ..hdr_domain import GAMMA, MU
from ..models import ConditionEncoder, DiffHDRUNet
from ..prior import check_gate
from . import memory
from .image_processor import OUTPUT_TYPES, BracketInput, DiffHDRImageProcessor, ExposureInput
from .loading import DEFAULT_MODEL_DIR, DiffHDRLoadingMixin  # noqa: F401 (DEFAULT_MODEL_DIR: re-exported)
from .resolution import check_processing_resolution
from .tiling import WINDOW_BLENDS, WindowGrid, final_stride, window_weight
from .window_features import WindowFeatures

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from diffhdr_diffusers import DiffHDRPipeline

        >>> pipe = DiffHDRPipeline.from_pretrained()  # the bundled demo model
        >>> out = pipe(["short.tif", "medium.tif", "long.tif"], exposures=[0.0, 2.0, 4.0], ensemble_size=4)
        >>> out.hdr.shape  # (1, H, W, 3) linear radiance, the mean of 4 samples in the mu-law domain
        >>> out.uncertainty.shape  # (1, H, W, 3) their per-pixel standard deviation there
        ```
"""


@dataclass
class DiffHDRPipelineOutput(BaseOutput):
    """
    Output of [`DiffHDRPipeline`].

    Args:
        hdr (`np.ndarray`, `torch.Tensor` or `list[PIL.Image.Image]`):
            Linear HDR radiance aligned to the reference exposure, float32, shape (B, H, W, 3) for
            `output_type="np"` or (B, 3, H, W) for `"pt"`, in the exposures' literal units:
            `hdr * 2**ev_i ~= ldr_i**gamma` where frame `i` is well exposed (values up to `2**-min(ev)`).
            For `"pil"`, B tonemapped 8-bit RGB previews of it
            ([`~diffhdr_diffusers.io.preview.tonemap_preview`]). With `ensemble_size` > 1, the inverse mu-law
            of the ensemble's mean.
        mu_law (`np.ndarray` or `torch.Tensor`):
            The same image in the network's mu-law domain (the pipeline's `mu`, default 5000; model units: the
            shortest exposure at EV 0), in [0, 1], (B, H, W, 3) for `"np"` and `"pil"`, (B, 3, H, W) for `"pt"`.
            With `ensemble_size` > 1, the mean of the samples.
        uncertainty (`np.ndarray` or `torch.Tensor`, *optional*):
            With `ensemble_size` > 1: the per-pixel standard deviation of the samples in the mu-law domain, in
            [0, 0.5], same layout as `mu_law`. `None` for a single sample.
        alignment_failures (`list[list[RejectedFrame]]`, *optional*):
            Aligned models only: per bracket, the exposures that alignment rejected (say, frames of another scene,
            or of an unexpected exposure); the prior there is the reference frame alone. Each is a
            [`~diffhdr_diffusers.alignment.RejectedFrame`]: the frame's index (an `int`, from 0 in the order the
            frames were given; messages for people number frames from 1) with its `reason`, one line with the
            measured figure. `None` for the paper's model.
    """

    hdr: np.ndarray | torch.Tensor | list
    mu_law: np.ndarray | torch.Tensor
    uncertainty: np.ndarray | torch.Tensor | None = None
    alignment_failures: list[list[RejectedFrame]] | None = None


class DiffHDRPipeline(DiffHDRLoadingMixin, DiffusionPipeline):
    r"""Merges a bracket of LDR exposures into one linear HDR image with DiffHDR.

    The condition encoder fuses the bracket into features once per call; at every denoising step the UNet
    predicts its output (noise, x0 or v: the scheduler's `prediction_type`) on overlapping windows, the
    predictions are averaged by coverage, and one scheduler step runs on the whole image. Any diffusers
    scheduler works; the default reproduces the paper's DDIM.

    Args:
        unet ([`DiffHDRUNet`]): the DFA-conditioned noise predictor.
        condition_encoder ([`ConditionEncoder`]): the feature condition generator.
        scheduler ([`SchedulerMixin`]): a diffusers scheduler.
        default_num_inference_steps (`int`, defaults to 25): steps used when the call gives none.
        default_patch_size (`int`, defaults to 512): window size used when the call gives none.
        default_stride (`int`, defaults to 64): window stride used when the call gives none.
        default_condition_per_window (`bool`, defaults to `False`): conditioning mode used when the call
            gives none (see `condition_per_window` in [`~DiffHDRPipeline.__call__`]).
        default_window_blend (`str`, defaults to `"uniform"`): window averaging used when the call gives none.
        default_processing_resolution (`int`, defaults to 0): the longest side the model runs at when the call
            gives none (0: the input's size, the paper's way); see `processing_resolution` in
            [`~DiffHDRPipeline.__call__`].
        alignment (`dict`, *optional*): the aligned variant. `None` (the paper) feeds the raw bracket to the
            condition encoder. A dict of [`~diffhdr_diffusers.alignment.align_exposures`] settings (`{}` for its
            defaults) aligns the bracket, flow-merges it, conditions on the aligned frames, the prior and its
            confidence, and samples the residual around the prior in the mu-law domain.
        gamma (`float`, defaults to 2.2): the inverse camera response of the conditioning input
            (`ldr**gamma / 2**ev`), that the model was trained with; passed to the image processor.
        mu (`float`, defaults to 5000): the mu-law constant of the model's output domain (an aligned model's prior,
            its output and the guides of a downscaled run); passed to the image processor. Both are saved with the
            pipeline (``model_index.json``), so a model records its own; a model trains with its own too
            ([`~diffhdr_diffusers.data.TrainingTransform`]'s `mu`).
        correction_gate (`list[float]`, *optional*): an aligned model's `[start, end]`: its correction of the prior
            applies only where the reference frame's brightest channel reaches `start`, fully from `end` (codes
            of the frame as merged, [`~diffhdr_diffusers.prior.correction_gate`]); elsewhere the output is the
            flow-merge itself. `None` (the default): everywhere.
    """

    model_cpu_offload_seq = "condition_encoder->unet"
    _callback_tensor_inputs = ["latents", "model_output"]

    def __init__(
        self,
        unet: DiffHDRUNet,
        condition_encoder: ConditionEncoder,
        scheduler: SchedulerMixin,
        default_num_inference_steps: int = 25,
        default_patch_size: int = 512,
        default_stride: int = 64,
        default_condition_per_window: bool = False,
        default_window_blend: str = "uniform",
        default_processing_resolution: int = 0,
        alignment: dict | None = None,
        gamma: float = GAMMA,
        mu: float = MU,
        correction_gate: list[float] | None = None,
    ):
        super().__init__()
        if correction_gate is not None and alignment is None:
            raise InputError("correction_gate limits an aligned model's correction of its prior; the paper's model "
                             "(alignment=None) has no prior: leave it None.")
        self.register_modules(unet=unet, condition_encoder=condition_encoder, scheduler=scheduler)
        self.register_to_config(
            default_num_inference_steps=default_num_inference_steps,
            default_patch_size=default_patch_size,
            default_stride=default_stride,
            default_condition_per_window=default_condition_per_window,
            default_window_blend=default_window_blend,
            default_processing_resolution=default_processing_resolution,
            alignment=alignment,
            gamma=gamma,
            mu=mu,
            correction_gate=None if correction_gate is None else list(check_gate(correction_gate)),
        )
        self.image_processor = DiffHDRImageProcessor(gamma=gamma, mu=mu)
        self._interrupt = False
        self._num_timesteps = 0
        # What the UNet was trained to predict, as the scheduler it came with says: a scheduler swapped in later
        # with another prediction_type would turn its output into noise without an error.
        self._trained_prediction_type = getattr(scheduler.config, "prediction_type", None)

    def _check_scheduler(self) -> None:
        """An :class:`InputError` when the scheduler swapped in expects another prediction than the model makes."""
        trained, name = self._trained_prediction_type, type(self.scheduler).__name__
        given = getattr(self.scheduler.config, "prediction_type", trained)
        if trained is not None and given != trained:
            raise InputError(f"scheduler {name}: prediction_type {given!r}, but this model predicts {trained!r}; "
                             f"build the new scheduler from the model's own: {name}.from_config(pipe.scheduler.config) "
                             "(or diffhdr_diffusers.schedulers.scheduler_from_name(NAME, pipe.scheduler.config)).")

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` (say, from `callback_on_step_end`) to skip the remaining steps; the call
        then decodes the current sample."""
        return self._interrupt

    @property
    def exposure_counts(self) -> tuple[int, int]:
        """The fewest and the most frames a bracket may have (its condition encoder's config: ``num_exposures``, or
        with ``frame_pooling`` any of 2 to ``num_exposures``)."""
        return self.condition_encoder.exposure_counts

    @property
    def reads_exposure_planes(self) -> bool:
        """Whether the condition encoder reads every frame's EV relative to the reference (``frame_pooling``)."""
        return bool(getattr(self.condition_encoder.config, "frame_pooling", None))

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current (or last) call."""
        return self._num_timesteps

    def check_inputs(self, num_inference_steps: int, patch_size: int, stride: int, window_batch_size: int | None,
                     output_type: str, window_blend: str, window_memory_budget: int | None = None,
                     ensemble_size: int = 1, callback_on_step_end_tensor_inputs: list[str] | None = None) -> None:
        """Validate the call's settings before any work; each message names the argument and what it accepts."""
        factor = self.unet.downsample_factor
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise InputError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}.")
        if not isinstance(ensemble_size, int) or ensemble_size < 1:
            raise InputError(f"ensemble_size must be a positive integer, got {ensemble_size!r}.")
        if not isinstance(patch_size, int) or patch_size < factor or patch_size % factor:
            raise InputError(f"patch_size must be a positive multiple of {factor} (the UNet's downsampling), "
                             f"got {patch_size!r}.")
        if not isinstance(stride, int) or not 1 <= stride <= patch_size:
            raise InputError(f"stride must be an integer in [1, patch_size={patch_size}], got {stride!r}.")
        if window_batch_size is not None and (not isinstance(window_batch_size, int) or window_batch_size < 1):
            raise InputError(f"window_batch_size must be a positive integer or None, got {window_batch_size!r}.")
        if window_memory_budget is not None and (not isinstance(window_memory_budget, int)
                                                 or window_memory_budget < 1):
            raise InputError(f"window_memory_budget must be a positive number of bytes or None, "
                             f"got {window_memory_budget!r}.")
        if output_type not in OUTPUT_TYPES:
            raise InputError(f"output_type must be one of {', '.join(map(repr, OUTPUT_TYPES))}, got {output_type!r}.")
        if window_blend not in WINDOW_BLENDS:
            raise InputError(f"window_blend must be one of {', '.join(WINDOW_BLENDS)}, got {window_blend!r}.")
        unknown = [name for name in callback_on_step_end_tensor_inputs or () if name not in self._callback_tensor_inputs]
        if unknown:
            raise InputError(f"callback_on_step_end_tensor_inputs may name {', '.join(self._callback_tensor_inputs)}; "
                             f"got {', '.join(map(repr, unknown))}.")

    def _check_generator(self, generator, samples: int) -> None:
        if isinstance(generator, list) and len(generator) != samples:
            raise InputError(f"a list of generators needs one per sample: {samples} (brackets x ensemble_size), "
                             f"got {len(generator)}.")

    def _step_kwargs(self, generator: torch.Generator | list[torch.Generator] | None, eta: float) -> dict:
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        kwargs = {}
        if "eta" in accepted:
            kwargs["eta"] = eta
        if "generator" in accepted:
            kwargs["generator"] = generator
        return kwargs

    def _window_grids(self, height: int, width: int, patch_size: int, stride: int, shift_windows: bool,
                      generator) -> list[WindowGrid]:
        """The window grid of every step: one fixed grid, or with ``shift_windows`` a randomly shifted one per
        step and a half-overlapping one for the last step (its predictions form the output of a model that
        predicts the clean image, x0 or v, so its seams would not average out)."""
        steps = len(self.scheduler.timesteps)
        if not shift_windows:
            return [WindowGrid.build(height, width, patch_size, stride)] * steps
        # One grid serves the whole batch, so its offsets come from the first of a list of generators.
        shift_generator = generator[0] if isinstance(generator, list) else generator
        shift_rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=shift_generator).item()))
        grids = []
        for _ in range(steps - 1):
            offset = tuple(int(v) for v in shift_rng.integers(0, stride, size=2))
            grids.append(WindowGrid.build(height, width, patch_size, stride, offset))
        return grids + [WindowGrid.build(height, width, patch_size, final_stride(patch_size, stride))]

    def _model_output(self, model_input: torch.Tensor, timestep: torch.Tensor, grid: WindowGrid,
                      features: WindowFeatures, coverage: torch.Tensor, window_batch: int,
                      weight: torch.Tensor | None) -> torch.Tensor:
        """The UNet's output on the whole image (noise, x0 or v, as its scheduler's ``prediction_type``): window
        predictions averaged, weighted by ``weight``, by ``coverage``."""
        features.set_grid(grid)
        total = torch.zeros_like(model_input)
        for start in range(0, len(grid), window_batch):
            indices = range(start, min(start + window_batch, len(grid)))
            output = self.unet(grid.crop(model_input, indices), timestep, features.crop(indices)).sample
            grid.accumulate(total, output if weight is None else output * weight, indices)
        return total / coverage

    @torch.no_grad()
    def __call__(
        self,
        images: BracketInput,
        exposures: ExposureInput,
        num_inference_steps: int | None = None,
        ensemble_size: int = 1,
        processing_resolution: int | None = None,
        match_input_resolution: bool = True,
        patch_size: int | None = None,
        stride: int | None = None,
        condition_per_window: bool | None = None,
        shift_windows: bool = False,
        window_blend: str | None = None,
        window_batch_size: int | None = None,
        window_memory_budget: int | None = None,
        eta: float = 0.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: Callable[[DiffusionPipeline, int, torch.Tensor, dict], dict] | PipelineCallback
        | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ["latents"],  # noqa: B006 (diffusers' signature)
    ) -> DiffHDRPipelineOutput | tuple:
        r"""
        Merge a bracket (or a batch of brackets) into linear HDR radiance.

        Args:
            images ([`~pipelines.image_processor.BracketInput`]):
                The bracket, ordered short to long: file paths, PIL images, numpy arrays (uint8, uint16 or
                float in [0, 1], (H, W, 3)) or torch tensors ((3, H, W) or (H, W, 3)), or one stacked array or
                tensor. A list of such brackets of one size (or a 5-D array or tensor) merges them as a batch.
            exposures ([`~pipelines.image_processor.ExposureInput`]):
                Exposure of each image in EV stops (exposure = 2**ev), increasing, in the units the output
                radiance should have (shifting every EV by c scales `hdr` by 2**-c). A list of lists for a batch.
            num_inference_steps (`int`, *optional*): denoising steps; defaults to the pipeline config.
            ensemble_size (`int`, defaults to 1):
                Samples per bracket, drawn in one batched run (sample `k` of bracket `b` is batch element
                `b * ensemble_size + k`), averaged in the mu-law domain; their per-pixel standard deviation there
                is returned as `uncertainty`.
            processing_resolution (`int`, *optional*):
                The longest side, in pixels, that the model runs at; larger brackets are area-downscaled to it
                first (aspect kept; smaller ones are never upscaled). 0 runs at the input's size. Defaults to the
                pipeline config's `default_processing_resolution`. Cost falls with the square of the scale.
            match_input_resolution (`bool`, defaults to `True`):
                Return a downscaled run at the input size: the model's correction of its guide (the flow-merge
                prior, or for the paper's model the reference frame) is carried back by guided upsampling onto the
                full-size guide, so fine detail comes from the full-size photos
                ([`~pipelines.resolution.guided_upsample`]). `False` returns the processing-size result.
            patch_size (`int`, *optional*): window size, a multiple of the UNet's downsampling factor.
            stride (`int`, *optional*): distance between windows; `patch_size` gives no overlap. Defaults to the
                pipeline config, or to `patch_size` when `shift_windows` is set.
            condition_per_window (`bool`, *optional*):
                `True` reproduces the original numerics, where condition features are computed on each
                window's crop (with zero padding at window edges); `False` crops features of the whole image
                (no seams). The whole image's features are computed once per call. Per-window mode adds the
                window-edge bands once per window grid: once per call on a fixed grid, but once per step with
                `shift_windows` (thin strips: `8 * receptive_radius / patch_size` of an encoder pass over the
                windows per step).
            shift_windows (`bool`, defaults to `False`):
                Shift the window grid by a random offset at every step, so that seams of low-overlap tilings
                land in different places and average out. The last step runs on a fixed grid overlapping by
                at least half a window, because its predictions form the output. Uses `generator`.
            window_blend (`str`, *optional*):
                How overlapping window predictions are averaged: `"uniform"` (the original sampler) or
                `"taper"` (each window weighted by a tent that is smallest at its edges, which hides window
                seams). Defaults to the pipeline config.
            window_batch_size (`int`, *optional*):
                Windows per UNet call (each holding every sample of the batch); by default as many as fit in
                `window_memory_budget`.
            window_memory_budget (`int`, *optional*):
                Bytes of activations one UNet call may use, which sizes the default window batch
                ([`~pipelines.memory.default_window_batch_size`], divided by the samples per window). Defaults
                to half the free memory of a CUDA device and 128 MiB on a CPU, whatever else the process did;
                after tuning the allocator ([`~diffhdr_diffusers.allocator.reuse_freed_memory`]) pass
                [`~diffhdr_diffusers.allocator.cpu_window_budget`] (1 GiB) for faster CPU batches.
            eta (`float`, defaults to 0.0): DDIM eta, passed only to schedulers that accept it.
            generator (`torch.Generator` or `list[torch.Generator]`, *optional*):
                Makes sampling deterministic. A list needs one generator per sample (brackets x `ensemble_size`);
                sample `i` then draws its noise from `generator[i]`, as a call of its own with it would.
            latents (`torch.Tensor`, *optional*):
                Initial noise of shape (brackets x `ensemble_size`, 3, H, W) (the unpadded processing size);
                drawn from `generator` if not given.
            output_type (`str`, defaults to `"np"`): `"np"` for (B, H, W, 3) arrays, `"pt"` for (B, 3, H, W)
                tensors, `"pil"` for tonemapped PIL previews of the radiance (see [`DiffHDRPipelineOutput`]).
            return_dict (`bool`, defaults to `True`): return a [`DiffHDRPipelineOutput`] instead of a tuple.
            callback_on_step_end (`Callable`, `PipelineCallback` or `MultiPipelineCallbacks`, *optional*):
                Called after every step as `callback_on_step_end(pipeline, step_index, timestep, callback_kwargs)`
                with the tensors named in `callback_on_step_end_tensor_inputs`; a tensor in the dict it returns
                replaces the pipeline's (for `"latents"`). Set `pipeline._interrupt = True` to stop early.
            callback_on_step_end_tensor_inputs (`list[str]`, defaults to `["latents"]`):
                Tensors passed to the callback: `"latents"` (the current sample, padded to the UNet's factor,
                (samples, 3, H', W'), in the mu-law domain; aligned models: the residual around the prior) and
                `"model_output"` (the step's tiled UNet output).

        Returns:
            [`DiffHDRPipelineOutput`] or `tuple`: `(hdr, mu_law, uncertainty, alignment_failures)` when
            `return_dict` is `False`.
        """
        config = self.config
        num_inference_steps = config.default_num_inference_steps if num_inference_steps is None else num_inference_steps
        patch_size = config.default_patch_size if patch_size is None else patch_size
        if stride is None:
            stride = patch_size if shift_windows else config.default_stride
        if condition_per_window is None:
            condition_per_window = config.default_condition_per_window
        window_blend = window_blend or config.default_window_blend
        if processing_resolution is None:
            processing_resolution = config.default_processing_resolution
        check_processing_resolution(processing_resolution)
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        self.check_inputs(num_inference_steps, patch_size, stride, window_batch_size, output_type, window_blend,
                          window_memory_budget, ensemble_size, callback_on_step_end_tensor_inputs)
        self._interrupt = False

        # 1. Prepare: the conditioning (aligned models: align and flow-merge first), repeated for the ensemble and
        # padded to the UNet's factor, on the device that runs the windows (not where offloaded models rest).
        prepared = self.image_processor.preprocess(images, exposures, self.exposure_counts, config.alignment,
                                                   processing_resolution, self.reads_exposure_planes,
                                                   config.correction_gate)
        conditioning = prepared.conditioning.repeat_interleave(ensemble_size, dim=0)
        samples, channels, height, width = conditioning.shape
        self._check_generator(generator, samples)
        device, dtype, factor = self._execution_device, self.unet.dtype, self.unet.downsample_factor
        conditioning = self.image_processor.pad(conditioning, factor).to(device, dtype)
        padded_height, padded_width = conditioning.shape[-2:]
        sizing_grid = WindowGrid.build(padded_height, padded_width, patch_size, stride)
        window_batch = window_batch_size or max(1, memory.default_window_batch_size(
            self.unet, sizing_grid, device, window_memory_budget) // samples)
        memory.check_memory(self.unet, self.condition_encoder, device, samples, channels, padded_height, padded_width,
                            window_batch, sizing_grid, condition_per_window)

        # 2. Initial noise, timesteps and the window grid of every step.
        self._check_scheduler()
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        shape = (samples, 3, height, width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents must have shape {shape} (brackets x ensemble_size, 3, H, W), "
                             f"got {tuple(latents.shape)}.")
        latents = self.image_processor.pad(latents.to(device, dtype), factor) * self.scheduler.init_noise_sigma
        step_kwargs = self._step_kwargs(generator, eta)
        grids = self._window_grids(padded_height, padded_width, patch_size, stride, shift_windows, generator)

        # 3. Condition: the encoder's features of the whole image, once per call (per-window mode: plus the
        # window-edge bands of each grid).
        features = WindowFeatures(self.condition_encoder, conditioning, grids[0], condition_per_window)
        weight = window_weight(grids[0].patch_height, grids[0].patch_width, window_blend, device, dtype)

        # 4. Denoise: the tiled model output, then one scheduler step on the whole image (on a CPU with
        # channels-last UNet weights: faster, same values).
        with memory.channels_last_on_cpu(self.unet, device):
            for index, timestep in enumerate(self.progress_bar(timesteps)):
                if self.interrupt:
                    continue
                if index == 0 or grids[index] is not grids[index - 1]:
                    coverage = grids[index].coverage(device, dtype, weight)
                model_input = self.scheduler.scale_model_input(latents, timestep)
                model_output = self._model_output(model_input, timestep, grids[index], features, coverage,
                                                  window_batch, weight)
                try:
                    latents = self.scheduler.step(model_output, timestep, latents, **step_kwargs).prev_sample
                except NotImplementedError as error:  # diffusers' schedulers that lack this prediction type
                    raise InputError(f"scheduler {type(self.scheduler).__name__} cannot sample this model "
                                     f"({error}); choose another scheduler, e.g. DDIM, DPM-Solver++ or UniPC.") from None
                if callback_on_step_end is not None:
                    tensors = {"latents": latents, "model_output": model_output}
                    callback_kwargs = {name: tensors[name] for name in callback_on_step_end_tensor_inputs}
                    latents = callback_on_step_end(self, index, timestep, callback_kwargs).pop("latents", latents)
                if not torch.isfinite(latents).all():
                    raise SamplingError(
                        f"sampling produced NaN or inf at step {index + 1}/{len(timesteps)} "
                        f"(timestep {float(timestep):g}); check the model weights and inputs, or try another "
                        "scheduler."
                    )

        # 5. Decode: add the prior (aligned models), clamp in the mu-law domain, average the ensemble there, bring a
        # downscaled run back to the input size, invert.
        mu_law_image, hdr, uncertainty = self.image_processor.postprocess(latents, prepared, output_type, ensemble_size,
                                                                          match_input_resolution)
        self.maybe_free_model_hooks()
        for index, failed in enumerate(prepared.failed or []):
            for frame in failed:  # a fallback is never silent
                warnings.warn(f"bracket {index + 1}: frame {frame.index + 1} not used: {frame.reason}; the prior is "
                              "the reference frame there (frames straight from a camera: map them with "
                              "diffhdr_diffusers.camera.apply_camera first)", FallbackWarning, stacklevel=2)
        if not return_dict:
            return hdr, mu_law_image, uncertainty, prepared.failed
        return DiffHDRPipelineOutput(hdr=hdr, mu_law=mu_law_image, uncertainty=uncertainty,
                                     alignment_failures=prepared.failed)
