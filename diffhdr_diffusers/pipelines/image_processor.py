"""Pre- and post-processing for DiffHDR: brackets in, linear radiance out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config

from ..alignment import RejectedFrame, rejected_frames
from ..errors import InputError
from ..hdr_domain import GAMMA, MU, from_model_units, inverse_mu_law, make_conditioning
from ..io.decode import normalise_samples
from ..io.formats import MIN_SIZE
from ..merging import reference_image
from ..prior import full_size_prior, prior_conditioning
from .resolution import guided_upsample, processing_size, resize_frames, upsample

if TYPE_CHECKING:
    import PIL.Image

OUTPUT_TYPES = ("np", "pt", "pil")

ExposureImage = Union[str, os.PathLike, "PIL.Image.Image", np.ndarray, torch.Tensor]
"""One LDR frame: a file path (read with :func:`~diffhdr_diffusers.io.read_ldr`), a PIL image, a numpy
array (uint8, uint16, or float in [0, 1]; (H, W, 3), (H, W) or (H, W, 4) opaque) or a torch tensor
((3, H, W) or (H, W, 3), same value ranges)."""

Bracket = Union[Sequence[ExposureImage], np.ndarray, torch.Tensor]
"""One bracket, ordered short to long: a list of frames, or a stacked (N, H, W, 3) array / (N, 3, H, W) tensor."""

BracketInput = Union[Bracket, Sequence[Bracket], np.ndarray, torch.Tensor]
"""The ``images`` of a pipeline call: one bracket, or a batch of same-size brackets (a list of brackets, or a
(B, N, H, W, 3) array / (B, N, 3, H, W) tensor)."""

ExposureInput = Union[Sequence[float], Sequence[Sequence[float]]]
"""The ``exposures`` of a pipeline call: one EV per frame, or one such list per bracket of a batch."""


def _is_batch(images) -> bool:
    """Whether ``images`` is a batch of brackets rather than one bracket."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return images.ndim == 5
    if isinstance(images, (str, os.PathLike)) or not len(images):
        return False
    first = images[0]
    return isinstance(first, (list, tuple)) or (isinstance(first, (np.ndarray, torch.Tensor)) and first.ndim == 4)


def _as_float_image(image, position: int) -> np.ndarray:
    """One bracket image as float32 (H, W, 3) in [0, 1]."""
    name = f"images[{position}]"
    if isinstance(image, (str, os.PathLike)):
        from ..io import read_ldr

        return read_ldr(image)
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    return np.ascontiguousarray(normalise_samples(name, np.asarray(image)))


@dataclass
class PreparedBrackets:
    """Network inputs of a batch of same-size brackets (see :meth:`DiffHDRImageProcessor.preprocess`).

    Attributes:
        conditioning: float32 (B, C, H, W) condition-encoder input.
        exposures: every bracket's EVs as given (literal units); the output is returned in these units.
        prior: float32 (B, 3, H, W) flow-merge prior (mu-law, model units) of an aligned model, else None.
        failed: per bracket, the exposures that alignment rejected, each a
            :class:`~diffhdr_diffusers.alignment.RejectedFrame` (an int with its ``reason``); None without alignment.
        full_guides: with a ``processing_resolution`` below the input size (the conditioning is then of
            area-downscaled frames), every bracket's guide of the way back at the input size (see
            :mod:`~diffhdr_diffusers.pipelines.resolution`), float32 (H, W, 3): the full-size flow-merge prior,
            or the reference frame's HDR view (mu-law, model units); else None.
        guide: then also those guides area-downscaled to the processing size, float32 (B, 3, h, w); for an
            aligned model this is its ``prior`` (the full-size prior downscaled), so that its correction applies
            to the full-size one.
        gate: float32 (B, 1, H, W) in [0, 1]: an aligned model's correction is multiplied by it
            (:func:`~diffhdr_diffusers.prior.correction_gate`), or None (it applies everywhere).
    """

    conditioning: torch.Tensor
    exposures: list[list[float]]
    prior: torch.Tensor | None = None
    failed: list[list[RejectedFrame]] | None = None
    full_guides: list[np.ndarray] | None = None
    guide: torch.Tensor | None = None
    gate: torch.Tensor | None = None


class DiffHDRImageProcessor(ConfigMixin):
    """Turns brackets into conditioning tensors, pads them for the UNet, and decodes the output.

    Parameters:
        gamma (`float`, defaults to 2.2): inverse camera response used for the HDR-domain inputs.
        mu (`float`, defaults to 5000): mu-law constant of the model's output domain.
    """

    config_name = "image_processor.json"

    @register_to_config
    def __init__(self, gamma: float = GAMMA, mu: float = MU):
        super().__init__()
        if not gamma > 0 or not mu > 0:
            raise InputError(f"gamma and mu must be positive, got gamma={gamma!r}, mu={mu!r}.")

    def load_bracket(self, images: Sequence, exposures: Sequence[float],
                     num_exposures: int | tuple[int, int]) -> tuple[list[np.ndarray], list[float]]:
        """Validate one bracket: its frames as float32 (H, W, 3) in [0, 1] and its EVs. ``num_exposures``: the
        frames it needs, or the fewest and the most it may have."""
        from ..io import validate_exposures

        low, high = (num_exposures, num_exposures) if isinstance(num_exposures, int) else num_exposures
        found = 1 if isinstance(images, (str, os.PathLike)) else len(images)
        if not low <= found <= high:
            needed = f"{low}" if low == high else f"{low} to {high}"
            raise InputError(f"a bracket needs {needed} images (short to long); got {found}.")
        arrays = [_as_float_image(image, i) for i, image in enumerate(images)]
        sizes = {array.shape[:2] for array in arrays}
        if len(sizes) != 1:
            raise InputError(f"bracket images differ in size: {[a.shape[:2] for a in arrays]}; "
                             "crop or resize them to one size.")
        height, width = arrays[0].shape[:2]
        if min(height, width) < MIN_SIZE:
            raise InputError(f"images are {height}x{width}; at least {MIN_SIZE}x{MIN_SIZE} pixels are needed.")
        return arrays, [float(ev) for ev in validate_exposures(exposures, len(arrays), "exposures")]

    def preprocess(self, images: BracketInput, exposures: ExposureInput, num_exposures: int | tuple[int, int] = 3,
                   alignment: dict | None = None, processing_resolution: int = 0,
                   exposure_planes: bool = False, correction_gate: Sequence[float] | None = None) -> PreparedBrackets:
        """Validate one bracket or a list of same-size brackets and build the network inputs.

        ``num_exposures`` is the number of frames a bracket needs, or the fewest and the most it may have (the
        brackets of one call then share one count); ``exposure_planes`` adds every frame's EV relative to the
        reference to an aligned model's conditioning (a ``frame_pooling`` model's input); ``correction_gate``
        (``(start, end)`` codes) limits an aligned model's correction to where the reference is bright
        (:func:`~diffhdr_diffusers.prior.correction_gate`).

        Without ``alignment`` (the paper's model) the conditioning is ``[ldr, ldr**gamma / 2**ev]`` per exposure,
        (B, 6 N, H, W). With it (a dict of :func:`~diffhdr_diffusers.alignment.align_exposures` settings), the
        frames are aligned and flow-merged first (:func:`~diffhdr_diffusers.prior.prior_conditioning`), with the
        pipeline's ``gamma`` and ``mu``. With a ``processing_resolution`` below the longest side, all of it is built
        from area-downscaled frames; an aligned model's frames are then warped with the flows of the full-size
        prior, resized, so the bracket is aligned once.
        """
        if _is_batch(images):
            if len(images) != len(exposures) or not all(isinstance(e, (list, tuple, np.ndarray)) for e in exposures):
                raise InputError(f"a batch of {len(images)} brackets needs one list of exposures per bracket; "
                                 f"got {len(exposures)} entries.")
            pairs = list(zip(images, exposures))
        else:
            pairs = [(images, exposures)]
        brackets = [self.load_bracket(b, e, num_exposures) for b, e in pairs]
        if len({frames[0].shape for frames, _ in brackets}) != 1:
            raise InputError("all brackets of one call must have the same size; call the pipeline once per size.")
        if len({len(frames) for frames, _ in brackets}) != 1:
            raise InputError("all brackets of one call must have the same number of frames; call the pipeline "
                             "once per bracket size.")
        to_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
        evs = [bracket_exposures for _, bracket_exposures in brackets]
        height, width = brackets[0][0][0].shape[:2]
        size = processing_size(height, width, processing_resolution, MIN_SIZE)
        gamma, mu = self.config.gamma, self.config.mu
        full_guides = guides = None
        alignments = [None] * len(brackets)
        if size != (height, width):
            if alignment is None:
                full_guides = [reference_image(f, e, gamma, mu) for f, e in brackets]
            else:
                full_priors = [full_size_prior(f, e, alignment, gamma, mu, size) for f, e in brackets]
                full_guides = [full.prior for full in full_priors]
                alignments = [full.frame_alignments for full in full_priors]
                del full_priors
            guides = [resize_frames([guide], size)[0] for guide in full_guides]
            brackets = [(resize_frames(frames, size), bracket_exposures) for frames, bracket_exposures in brackets]
        if alignment is None:
            prepared = PreparedBrackets(to_tensor([make_conditioning(f, e, gamma) for f, e in brackets]), evs)
        else:
            priors = [prior_conditioning(f, e, alignment, gamma, prior=g, mu=mu, frame_alignments=a,
                                         exposure_planes=exposure_planes, gate=correction_gate)
                      for (f, e), g, a in zip(brackets, guides or [None] * len(brackets), alignments)]
            prepared = PreparedBrackets(to_tensor([p.conditioning for p in priors]), evs,
                                        to_tensor([p.prior for p in priors]),
                                        [rejected_frames(p.failed, p.reasons) for p in priors])
            if correction_gate is not None:
                prepared.gate = to_tensor([p.gate for p in priors])
        if full_guides is not None:
            prepared.full_guides = full_guides
            prepared.guide = to_tensor(guides) if prepared.prior is None else prepared.prior
        return prepared

    def match_input_resolution(self, mu_law_image: torch.Tensor, uncertainty: torch.Tensor | None,
                               prepared: PreparedBrackets) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Bring a downscaled run's mean (B, 3, h, w) and uncertainty to the input size: the mean by guided
        upsampling (:func:`~diffhdr_diffusers.pipelines.resolution.guided_upsample`), the uncertainty
        bilinearly. The result is written over ``prepared.full_guides``, which are then released."""
        as_image = lambda t: t.permute(1, 2, 0).float().cpu().numpy()  # noqa: E731
        as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)  # noqa: E731
        means, spreads = [], []
        for index, full_guide in enumerate(prepared.full_guides):
            low, guide = as_image(mu_law_image[index]), as_image(prepared.guide[index])
            merged = guided_upsample(low, guide, full_guide, out=full_guide)
            prepared.full_guides[index] = None
            means.append(as_tensor(np.clip(merged, 0.0, 1.0, out=merged)))
            if uncertainty is not None:
                spreads.append(as_tensor(upsample(as_image(uncertainty[index]), *full_guide.shape[:2])))
        return torch.stack(means), (torch.stack(spreads) if spreads else None)

    @staticmethod
    def pad(tensor: torch.Tensor, multiple: int) -> torch.Tensor:
        """Replicate-pad the bottom and right of (B, C, H, W) to multiples of ``multiple``."""
        height, width = tensor.shape[-2:]
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h == 0 and pad_w == 0:
            return tensor
        return F.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate")

    def postprocess(self, sample: torch.Tensor, prepared: PreparedBrackets, output_type: str = "np",
                    ensemble_size: int = 1, match_input_resolution: bool = True):
        """Decode the sampler's output into (mu_law, radiance, uncertainty).

        ``sample`` holds ``ensemble_size`` consecutive samples of each bracket of ``prepared``, padded. Each is
        cropped to the input size, multiplied by the correction gate and offset by the prior (aligned models) and
        clamped to [0, 1] in the mu-law domain; the samples of a bracket are averaged there, and their per-pixel
        standard deviation is the uncertainty (`None` for a single sample). A downscaled run
        (``prepared.full_guides``) comes back to the input size with ``match_input_resolution``
        (:meth:`match_input_resolution`). The mean is inverted to radiance in the exposures' literal units. ``output_type`` ``"np"`` gives (B, H, W, 3) arrays, ``"pt"``
        (B, 3, H, W) tensors, and ``"pil"`` a list of tonemapped 8-bit RGB previews of the radiance
        (:func:`~diffhdr_diffusers.io.preview.tonemap_preview`), with mu-law and uncertainty as numpy arrays.
        """
        height, width = prepared.conditioning.shape[-2:]
        samples = sample[..., :height, :width].float()
        samples = samples.unflatten(0, (len(prepared.exposures), ensemble_size))
        if prepared.gate is not None:
            samples = samples * prepared.gate.to(samples.device)[:, None]
        if prepared.prior is not None:
            samples = samples + prepared.prior.to(samples.device)[:, None]
        samples = samples.clamp(0, 1)
        mu_law_image = samples.mean(dim=1)
        uncertainty = samples.std(dim=1, correction=0) if ensemble_size > 1 else None
        if prepared.full_guides is not None and match_input_resolution:
            mu_law_image, uncertainty = self.match_input_resolution(mu_law_image, uncertainty, prepared)
        radiance = torch.stack([from_model_units(image, evs) for image, evs in
                                zip(inverse_mu_law(mu_law_image, self.config.mu), prepared.exposures)])
        if output_type == "pt":
            return mu_law_image, radiance, uncertainty
        to_numpy = lambda t: None if t is None else t.permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
        mu_law_image, radiance, uncertainty = to_numpy(mu_law_image), to_numpy(radiance), to_numpy(uncertainty)
        if output_type == "pil":
            radiance = self.preview(radiance)
        return mu_law_image, radiance, uncertainty

    @staticmethod
    def preview(radiance: np.ndarray) -> list:
        """Tonemapped 8-bit previews (PIL RGB images) of (B, H, W, 3) linear radiance, one per bracket."""
        import PIL.Image

        from ..io.preview import tonemap_preview

        return [PIL.Image.fromarray(tonemap_preview(image)) for image in radiance]
