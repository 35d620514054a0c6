"""The model card (README.md) of a converted checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..original_release import ORIGINAL_REPOSITORY
from ..pipelines.model_card import render_model_card
from .reading import OriginalCheckpoint

CITATION = """```
@article{yan2023towards,
  title={Towards high-quality HDR deghosting with conditional diffusion models},
  author={Yan, Qingsen and Hu, Tao and Sun, Yuan and Tang, Hao and Zhu, Yu and Dong, Wei and Van Gool, Luc and Zhang, Yanning},
  journal={IEEE Transactions on Circuits and Systems for Video Technology},
  year={2023}
}
```"""


def model_card(checkpoint: OriginalCheckpoint, weights: str, sha256: str, folder: Path,
               repo_id: str | None = None) -> str:
    """A Hugging Face model card (README.md) for a converted checkpoint saved in ``folder``."""
    used = ("the weights the authors' evaluation used" if weights == "live"
            else "the EMA shadow; the authors' evaluation used the live weights")
    description = (
        "The weights of DiffHDR (\"Towards High-quality HDR Deghosting with Conditional Diffusion Models\", Yan et "
        f"al., IEEE TCSVT 2023, [arXiv:2311.00932](https://arxiv.org/abs/2311.00932)) released by the authors at "
        f"{ORIGINAL_REPOSITORY}, converted to a `DiffHDRPipeline` of the `diffhdr_diffusers` library (`pip install "
        "diffhdr-diffusers`) by `diffhdr convert-original`. The model merges a bracket of three LDR exposures "
        "(short, medium, long) into one linear HDR image, aligned to the medium exposure. It was trained on the "
        "Kalantari (SIG17) dataset.")
    sampler = (
        "The pipeline's defaults reproduce the sampler of the paper's published results: DDIM with eta 0 over 25 "
        "steps, overlapping 512x512 windows with stride 64 whose noise estimates are averaged, and condition "
        "features computed per window (`default_condition_per_window=True`). The output is clamped to [0, 1] in "
        "the mu-law domain (mu = 5000) and returned both as mu-law values and as linear radiance.")
    license_text = ("The original repository states no license; these weights carry whatever terms the authors set. "
                    "Cite the paper when you use them:\n\n" + CITATION)
    return render_model_card(
        repo_id, folder=folder, title="DiffHDR (authors' weights, converted to diffusers)", description=description,
        license="other", license_name="unspecified", license_link=ORIGINAL_REPOSITORY,
        training={"checkpoint": f"`{checkpoint.path.name}`", "sha256": f"`{sha256}`",
                  "training step": f"{checkpoint.step} (epoch {checkpoint.epoch})",
                  "UNet weights": f"`{weights}` ({used})"},
        training_title="Source", sections={"Sampler": sampler, "License": license_text},
        tags=["hdr-deghosting", "multi-exposure-fusion", "diffusion", "diffhdr-diffusers"])
