"""DiffHDR: ghost-free HDR merging of an exposure bracket with patch-tiled conditional diffusion."""

from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils import logging as diffusers_logging
from diffusers.utils.torch_utils import randn_tensor

from ..errors import InputError, ModelLoadError, SamplingError
from ..models import ConditionEncoder, DiffHDRUNet
from . import hub_layout, memory
from .image_processor import DiffHDRImageProcessor
from .model_card import write_model_card
from .tiling import WINDOW_BLENDS, WindowGrid, final_stride, window_weight
from .window_conditioning import WindowConditioning

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from diffhdr_diffusers import DiffHDRPipeline

        >>> pipe = DiffHDRPipeline.from_pretrained()  # the bundled demo model
        >>> out = pipe(["short.tif", "medium.tif", "long.tif"], exposures=[0.0, 2.0, 4.0])
        >>> out.hdr.shape  # (1, H, W, 3) linear radiance
        ```
"""

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "default_model"

# Options of diffusers' `DiffusionPipeline.from_pretrained` (0.42); any other keyword argument must be a
# component or a setting of the pipeline, or loading fails instead of ignoring it.
LOADING_OPTIONS = frozenset({
    "cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "dtype", "torch_dtype",
    "custom_pipeline", "custom_revision", "provider", "sess_options", "provider_options", "device_map", "max_memory",
    "offload_folder", "offload_state_dict", "low_cpu_mem_usage", "variant", "use_safetensors", "use_onnx",
    "load_connected_pipeline", "quantization_config", "use_flashpack", "disable_mmap",
})
HUB_DOWNLOAD_OPTIONS = ("revision", "token", "cache_dir", "local_files_only", "force_download")
PUSH_OPTIONS = ("token", "private", "commit_message", "create_pr")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@dataclass
class DiffHDRPipelineOutput(BaseOutput):
    """
    Output of [`DiffHDRPipeline`].

    Args:
        hdr (`np.ndarray` or `torch.Tensor`):
            Linear HDR radiance aligned to the reference exposure, float32, shape (B, H, W, 3) for
            `output_type="np"` or (B, 3, H, W) for `"pt"`, in the exposures' literal units:
            `hdr * 2**ev_i ~= ldr_i**2.2` where frame `i` is well exposed (values up to `2**-min(ev)`).
        mu_law (`np.ndarray` or `torch.Tensor`):
            The same image in the network's mu-law domain (mu = 5000, model units: the shortest exposure at
            EV 0), in [0, 1], same layout as `hdr`.
        alignment_failures (`list[list[int]]`, *optional*):
            Aligned models only: per bracket, the exposures whose alignment failed (say, frames of another
            scene); the prior there is the reference frame alone. `None` for the paper's model.
    """

    hdr: np.ndarray | torch.Tensor
    mu_law: np.ndarray | torch.Tensor
    alignment_failures: list[list[int]] | None = None


class DiffHDRPipeline(DiffusionPipeline):
    r"""Merges a bracket of LDR exposures into one linear HDR image with DiffHDR.

    The condition encoder fuses the bracket into features once; at every denoising step the UNet
    predicts noise on overlapping windows, the predictions are averaged by coverage, and one scheduler
    step runs on the whole image. Any diffusers scheduler works; the default reproduces the paper's DDIM.

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
        alignment (`dict`, *optional*): the aligned variant. `None` (the paper) feeds the raw bracket to the
            condition encoder. A dict of [`~diffhdr_diffusers.alignment.align_exposures`] settings (`{}` for its
            defaults) aligns the bracket, flow-merges it, conditions on the aligned frames, the prior and its
            confidence, and samples the residual around the prior in the mu-law domain.
    """

    model_cpu_offload_seq = "condition_encoder->unet"

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
        alignment: dict | None = None,
    ):
        super().__init__()
        self.register_modules(unet=unet, condition_encoder=condition_encoder, scheduler=scheduler)
        self.register_to_config(
            default_num_inference_steps=default_num_inference_steps,
            default_patch_size=default_patch_size,
            default_stride=default_stride,
            default_condition_per_window=default_condition_per_window,
            default_window_blend=default_window_blend,
            alignment=alignment,
        )
        self.image_processor = DiffHDRImageProcessor()

    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True,
                        variant: str | None = None, max_shard_size: int | str | None = None,
                        push_to_hub: bool = False, model_card: dict | None = None, **kwargs):
        r"""
        Save with [`~DiffusionPipeline.save_pretrained`] (diffusers' plain layout), write a model card, and
        optionally push.

        Args:
            save_directory (`str` or `os.PathLike`): the folder to write.
            safe_serialization, variant, max_shard_size: as in [`~DiffusionPipeline.save_pretrained`].
            push_to_hub (`bool`, defaults to `False`):
                Also upload the folder with [`~pipelines.hub_layout.push_folder`] to `repo_id` (default: the
                folder's name). Unlike diffusers' own push, this keeps the model card written here.
            model_card (`dict`, *optional*): fields of the model card (``README.md``) written into the folder
                when it has none: ``training``, ``metrics``, ``metrics_note``, ``limitations``, ``license``, ...
                (see [`~pipelines.model_card.render_model_card`]). An existing ``README.md`` is kept.
            kwargs: ``repo_id``, ``token``, ``private``, ``commit_message`` and ``create_pr`` for the push.

        Returns:
            The ``CommitInfo`` of the upload with `push_to_hub`, else `None`.
        """
        repo_id = kwargs.pop("repo_id", None)
        unknown = sorted(set(kwargs) - set(PUSH_OPTIONS))
        if unknown:
            raise InputError(f"save_pretrained got unexpected keyword argument(s) {', '.join(unknown)}; it accepts "
                             f"repo_id, {', '.join(PUSH_OPTIONS)} besides its named arguments.")
        super().save_pretrained(save_directory, safe_serialization=safe_serialization, variant=variant,
                                max_shard_size=max_shard_size)
        if push_to_hub and repo_id is None:
            repo_id = Path(save_directory).name
        write_model_card(save_directory, repo_id=repo_id, **(model_card or {}))
        if push_to_hub:
            return hub_layout.push_folder(save_directory, repo_id, **kwargs)
        return None

    def push_to_hub(self, repo_id: str, commit_message: str | None = None, private: bool | None = None,
                    token: str | None = None, create_pr: bool = False, safe_serialization: bool = True,
                    variant: str | None = None, model_card: dict | None = None):
        r"""
        Upload the pipeline and a filled model card to a Hub repo (created if needed).

        Saves into a temporary folder with [`~DiffHDRPipeline.save_pretrained`] and uploads it with
        [`~pipelines.hub_layout.push_folder`]. Unlike [`~DiffusionPipeline.push_to_hub`], which replaces the saved
        ``README.md`` with a generic card, the card written from `model_card` is uploaded (it replaces the repo's).

        Returns:
            The ``CommitInfo`` of the upload.
        """
        with tempfile.TemporaryDirectory() as folder:
            return self.save_pretrained(folder, safe_serialization=safe_serialization, variant=variant,
                                        push_to_hub=True, model_card=model_card, repo_id=repo_id, token=token,
                                        private=private, commit_message=commit_message, create_pr=create_pr)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None,
                        **kwargs) -> "DiffHDRPipeline":
        r"""
        Load a saved DiffHDR pipeline with diffusers' [`~DiffusionPipeline.from_pretrained`], running no code from
        the folder or repo.

        Every option of diffusers' loader works as there: `dtype` (or the deprecated `torch_dtype`), `variant`,
        `device_map`, `use_safetensors`, `low_cpu_mem_usage`, `revision`, `token`, `cache_dir`, ...; so do
        components (`unet=`, `condition_encoder=`, `scheduler=`) and settings of [`DiffHDRPipeline`]
        (`default_num_inference_steps=`, ...). Any other keyword argument is an error, not ignored.

        Args:
            pretrained_model_name_or_path (`str` or `os.PathLike`, *optional*):
                A pipeline folder or a Hub repo id, in diffusers' plain layout or in the Hub layout
                (see [`~pipelines.hub_layout`]). `None` loads the demo model bundled with the package.
            trust_remote_code (`bool`, defaults to `False`):
                Accept a folder with Python files other than our re-export shims. They are still never run:
                this loader does not pass `trust_remote_code` on to diffusers.

        Raises:
            [`~errors.ModelLoadError`]: one line saying why the folder, repo or an argument is unusable.
        """
        trust_remote_code = kwargs.pop("trust_remote_code", False)
        settings = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(kwargs) - settings - LOADING_OPTIONS)
        if unknown:
            raise ModelLoadError(
                f"from_pretrained got unexpected keyword argument(s) {', '.join(unknown)}; it accepts the options of "
                f"diffusers' DiffusionPipeline.from_pretrained and the pipeline's {', '.join(sorted(settings))}.")
        if pretrained_model_name_or_path is None:
            folder = DEFAULT_MODEL_DIR
            if not (folder / "model_index.json").is_file():
                raise ModelLoadError(f"the bundled demo model is missing from {folder}; reinstall "
                                     "diffhdr-diffusers or pass a model path.")
        elif Path(pretrained_model_name_or_path).is_dir():
            folder = Path(pretrained_model_name_or_path)
        else:
            folder = cls._download(str(pretrained_model_name_or_path), kwargs)
        if not (folder / "model_index.json").is_file():
            raise ModelLoadError(f"{folder} is not a DiffHDR pipeline folder: it has no model_index.json. "
                                 "Pass a folder written by save_pretrained or `diffhdr convert-original`.")
        untrusted = hub_layout.untrusted_code(folder)
        if untrusted and not trust_remote_code:
            raise ModelLoadError(f"{folder} contains Python files that are not diffhdr_diffusers shims: "
                                 f"{', '.join(untrusted)}. Remove them, or pass trust_remote_code=True "
                                 "(--trust-remote-code on the command line); they are never executed by this loader.")
        # Three small components load in a moment: diffusers' "Loading pipeline components" bar would only
        # clutter the command line's output (and its one-line errors).
        progress_bar = diffusers_logging.is_progress_bar_enabled()
        diffusers_logging.disable_progress_bar()
        try:
            with hub_layout.plain_view(folder) as plain:
                pipeline = super().from_pretrained(plain, **kwargs)
        except (OSError, ValueError, KeyError, AttributeError, RuntimeError, TypeError) as error:
            raise ModelLoadError(f"could not load the DiffHDR pipeline in {folder}: {_one_line(error)}") from error
        finally:
            if progress_bar:
                diffusers_logging.enable_progress_bar()
        pipeline.register_to_config(_name_or_path=str(pretrained_model_name_or_path or folder))
        return pipeline

    @staticmethod
    def _download(repo_id: str, kwargs: dict) -> Path:
        """Fetch a Hub repo (the whole snapshot) with the download options in ``kwargs``, which are removed."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

        options = {key: kwargs.pop(key) for key in HUB_DOWNLOAD_OPTIONS if key in kwargs}
        try:
            return Path(snapshot_download(repo_id, **options))
        except (HFValidationError, HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
            raise ModelLoadError(f"{repo_id!r} is neither a local pipeline folder nor a reachable Hub repo: "
                                 f"{_one_line(error)}") from error

    def check_inputs(self, num_inference_steps: int, patch_size: int, stride: int, window_batch_size: int | None,
                     output_type: str, window_blend: str, window_memory_budget: int | None = None) -> None:
        factor = self.unet.downsample_factor
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise InputError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}.")
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
        if output_type not in ("np", "pt"):
            raise InputError(f"output_type must be 'np' or 'pt', got {output_type!r}.")
        if window_blend not in WINDOW_BLENDS:
            raise InputError(f"window_blend must be one of {', '.join(WINDOW_BLENDS)}, got {window_blend!r}.")

    def _step_kwargs(self, generator: torch.Generator | None, eta: float) -> dict:
        accepted = set(inspect.signature(self.scheduler.step).parameters)
        kwargs = {}
        if "eta" in accepted:
            kwargs["eta"] = eta
        if "generator" in accepted:
            kwargs["generator"] = generator
        return kwargs

    def _predict_noise(self, model_input: torch.Tensor, timestep: torch.Tensor, grid: WindowGrid,
                       conditioning: WindowConditioning, coverage: torch.Tensor, window_batch: int,
                       weight: torch.Tensor | None) -> torch.Tensor:
        """Noise estimate of the whole image: window predictions averaged (weighted by ``weight``) by coverage."""
        total = torch.zeros_like(model_input)
        for start in range(0, len(grid), window_batch):
            indices = range(start, min(start + window_batch, len(grid)))
            noise = self.unet(grid.crop(model_input, indices), timestep, conditioning.crop(indices)).sample
            grid.accumulate(total, noise if weight is None else noise * weight, indices)
        return total / coverage

    @torch.no_grad()
    def __call__(
        self,
        images,
        exposures,
        num_inference_steps: int | None = None,
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
    ) -> DiffHDRPipelineOutput | tuple:
        r"""
        Merge a bracket into a linear HDR image.

        Args:
            images (`list`):
                The bracket, ordered short to long: file paths, PIL images, numpy arrays (uint8, uint16 or
                float in [0, 1], (H, W, 3)) or torch tensors ((3, H, W) or (H, W, 3)). A list of such
                brackets of one size merges them as a batch.
            exposures (`list[float]`):
                Exposure of each image in EV stops (exposure = 2**ev), increasing, in the units the output
                radiance should have (shifting every EV by c scales `hdr` by 2**-c). A list of lists for a batch.
            num_inference_steps (`int`, *optional*): denoising steps; defaults to the pipeline config.
            patch_size (`int`, *optional*): window size, a multiple of the UNet's downsampling factor.
            stride (`int`, *optional*): distance between windows; `patch_size` gives no overlap. Defaults to the
                pipeline config, or to `patch_size` when `shift_windows` is set.
            condition_per_window (`bool`, *optional*):
                `True` reproduces the original numerics, where condition features are computed on each
                window's crop (with zero padding at window edges); `False` computes them once on the whole
                image (no seams). Either way the condition encoder runs once per call, not once per step.
            shift_windows (`bool`, defaults to `False`):
                Shift the window grid by a random offset at every step, so that seams of low-overlap tilings
                land in different places and average out. The last step runs on a fixed grid overlapping by
                at least half a window, because its predictions form the output. Uses `generator`.
            window_blend (`str`, *optional*):
                How overlapping window predictions are averaged: `"uniform"` (the original sampler) or
                `"taper"` (each window weighted by a tent that is smallest at its edges, which hides window
                seams). Defaults to the pipeline config.
            window_batch_size (`int`, *optional*):
                Windows per UNet call; by default as many as fit in `window_memory_budget`.
            window_memory_budget (`int`, *optional*):
                Bytes of activations one UNet call may use, which sizes the default window batch
                ([`~pipelines.memory.default_window_batch_size`]). Defaults to half the free memory of a CUDA
                device and 128 MiB on a CPU, whatever else the process did; after tuning the allocator
                ([`~diffhdr_diffusers.allocator.reuse_freed_memory`]) pass
                [`~diffhdr_diffusers.allocator.cpu_window_budget`] (1 GiB) for faster CPU batches.
            eta (`float`, defaults to 0.0): DDIM eta, passed only to schedulers that accept it.
            generator (`torch.Generator`, *optional*): makes sampling deterministic.
            latents (`torch.Tensor`, *optional*):
                Initial noise of shape (B, 3, H, W) (unpadded image size); drawn from `generator` if not given.
            output_type (`str`, defaults to `"np"`): `"np"` for (B, H, W, 3) arrays, `"pt"` for (B, 3, H, W) tensors.
            return_dict (`bool`, defaults to `True`): return a [`DiffHDRPipelineOutput`] instead of a tuple.

        Returns:
            [`DiffHDRPipelineOutput`] or `tuple`: `(hdr, mu_law)` when `return_dict` is `False`.
        """
        config = self.config
        num_inference_steps = config.default_num_inference_steps if num_inference_steps is None else num_inference_steps
        patch_size = config.default_patch_size if patch_size is None else patch_size
        if stride is None:
            stride = patch_size if shift_windows else config.default_stride
        if condition_per_window is None:
            condition_per_window = config.default_condition_per_window
        window_blend = window_blend or config.default_window_blend
        self.check_inputs(num_inference_steps, patch_size, stride, window_batch_size, output_type, window_blend,
                          window_memory_budget)

        # 1. Prepare the conditioning (aligned models: align and flow-merge first), padded to the UNet's factor.
        prepared = self.image_processor.preprocess(images, exposures, self.condition_encoder.config.num_exposures,
                                                   config.alignment)
        conditioning = prepared.conditioning
        batch, channels, height, width = conditioning.shape
        dtype = self.unet.dtype
        conditioning = self.image_processor.pad(conditioning, self.unet.downsample_factor)
        conditioning = conditioning.to(self._execution_device, dtype)
        padded_height, padded_width = conditioning.shape[-2:]

        grid = WindowGrid.build(padded_height, padded_width, patch_size, stride)
        # Batch size and memory check both concern the device that runs the windows (not where offloaded
        # models rest).
        device = conditioning.device
        window_batch = window_batch_size or memory.default_window_batch_size(self.unet, grid, device,
                                                                              window_memory_budget)
        memory.check_memory(self.unet, self.condition_encoder, device, batch, channels, padded_height, padded_width,
                            window_batch, grid, condition_per_window)

        # 2. Condition features: once per call, whatever the number of steps.
        window_conditioning = WindowConditioning(self.condition_encoder, conditioning, grid, condition_per_window)
        weight = window_weight(grid.patch_height, grid.patch_width, window_blend, conditioning.device, dtype)
        coverage = grid.coverage(conditioning.device, dtype, weight)

        # 3. Initial noise and timesteps.
        self.scheduler.set_timesteps(num_inference_steps, device=conditioning.device)
        shape = (batch, 3, height, width)
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=conditioning.device, dtype=dtype)
        elif tuple(latents.shape) != shape:
            raise InputError(f"latents must have shape {shape}, got {tuple(latents.shape)}.")
        latents = self.image_processor.pad(latents.to(conditioning.device, dtype), self.unet.downsample_factor)
        latents = latents * self.scheduler.init_noise_sigma
        step_kwargs = self._step_kwargs(generator, eta)
        # One window grid serves the whole batch, so its offsets come from the first of a list of generators.
        shift_generator = generator[0] if isinstance(generator, list) else generator
        shift_rng = np.random.default_rng(
            int(torch.randint(0, 2**31, (1,), generator=shift_generator).item()) if shift_windows else 0
        )

        # 4. Denoise: tiled noise estimate, one scheduler step on the whole image.
        for index, timestep in enumerate(self.progress_bar(self.scheduler.timesteps)):
            if shift_windows:
                # The last step's window predictions become the output of a model that predicts the clean
                # image (x0 or v), so its seams would not average out: it runs on a half-overlapping grid.
                final = index == len(self.scheduler.timesteps) - 1
                step_stride = final_stride(patch_size, stride) if final else stride
                offset = (0, 0) if final else tuple(int(v) for v in shift_rng.integers(0, stride, size=2))
                grid = WindowGrid.build(padded_height, padded_width, patch_size, step_stride, offset)
                window_conditioning.set_grid(grid)
                coverage = grid.coverage(conditioning.device, dtype, weight)
            model_input = self.scheduler.scale_model_input(latents, timestep)
            noise = self._predict_noise(model_input, timestep, grid, window_conditioning, coverage, window_batch, weight)
            latents = self.scheduler.step(noise, timestep, latents, **step_kwargs).prev_sample
            if not torch.isfinite(latents).all():
                raise SamplingError(
                    f"sampling produced NaN or inf at step {index + 1}/{len(self.scheduler.timesteps)} "
                    f"(timestep {float(timestep):g}); check the model weights and inputs, or try another scheduler."
                )

        # 5. Decode: add the prior (aligned models), clamp in the mu-law domain, invert it, literal EV units.
        mu_law_image, hdr = self.image_processor.postprocess(latents, prepared, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return hdr, mu_law_image
        return DiffHDRPipelineOutput(hdr=hdr, mu_law=mu_law_image, alignment_failures=prepared.failed)
