"""The model card (``README.md``) of a saved DiffHDR pipeline folder, as the Hugging Face Hub shows it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..errors import InputError

TAGS = ["diffhdr", "hdr", "deghosting", "diffusers", "image-to-image"]
PIPELINE_TAG = "image-to-image"

DEFAULT_DESCRIPTION = (
    "A `DiffHDRPipeline` of the `diffhdr_diffusers` library (`pip install diffhdr-diffusers`): DiffHDR "
    "(Yan et al., \"Towards High-quality HDR Deghosting with Conditional Diffusion Models\", IEEE TCSVT 2023) "
    "on Hugging Face diffusers. It merges a bracket of three LDR exposures (short, medium, long) of a scene "
    "with camera or object motion into one ghost-free linear HDR image aligned to the medium exposure. A "
    "condition network fuses the bracket into features that modulate a denoising UNet; sampling runs on "
    "overlapping windows whose noise estimates are averaged, so any image size works."
)

DEFAULT_LIMITATIONS = [
    ("The input must be exactly three exposures ordered short to long, with their exposure values (EV) known "
     "from the files' EXIF data or an `exposure.txt`; other bracket sizes need another model."),
    ("The output is relative linear radiance in the units the exposure values define (`R * 2**ev ~= ldr**2.2` "
     "where a frame is well exposed), not absolute luminance."),
    ("Sampling is iterative: every step runs the UNet on every window, so at native resolution large images are "
     "slow on a CPU; a `processing_resolution` runs the model on a downscaled bracket and carries its correction "
     "back to full size, and fewer steps or a larger stride trade quality for speed."),
]


USAGE = """## Usage

With the `diffhdr_diffusers` loader, which runs no code from the repository:

```python
from diffhdr_diffusers import DiffHDRPipeline

pipe = DiffHDRPipeline.from_pretrained("{model_ref}")
out = pipe(["short.tif", "medium.tif", "long.tif"], exposures=[0.0, 2.0, 4.0])
radiance = out.hdr[0]  # (H, W, 3) float32 linear HDR, aligned to the medium exposure
```

With the generic diffusers loader, once pushed to the Hub (the repository's `.py` files only re-export the
installed `diffhdr_diffusers` classes, so `diffhdr-diffusers` must be installed):

```python
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained("{model_ref}", trust_remote_code=True)
```

On the command line:

```
diffhdr merge short.tif medium.tif long.tif --exposures 0,2,4 --model {model_ref} -o merged.exr --preview merged.png
```"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """A markdown table of ``{"PSNR-mu": 40.1, ...}`` (one row) or ``{method: {metric: value}}`` (a row per method)."""
    if not metrics:
        return ""
    if all(isinstance(value, Mapping) for value in metrics.values()):
        rows = {str(method): dict(values) for method, values in metrics.items()}
    elif any(isinstance(value, Mapping) for value in metrics.values()):
        raise InputError("model_card metrics: pass either {metric: value} or {method: {metric: value}}, not a mix.")
    else:
        rows = {"this model": dict(metrics)}
    columns = list(dict.fromkeys(name for values in rows.values() for name in values))
    lines = ["| method | " + " | ".join(_cell(name) for name in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for method, values in rows.items():
        lines.append(f"| {_cell(method)} | " + " | ".join(_cell(values.get(name, "")) for name in columns) + " |")
    return "\n".join(lines)


def _key_value_table(items: Mapping[str, Any]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in items.items():
        text = _cell(value)
        lines.append(f"| {_cell(key)} | {f'`{text}`' if key == 'command' else text} |")
    return "\n".join(lines)


def any_count_limitation(low: int, high: int) -> str:
    """The bracket limitation of a frame-count-independent model (``frame_pooling``), replacing the three-frame one."""
    return (f"The input must be {low} to {high} exposures ordered short to long, with their exposure values (EV) "
            "known from the files' EXIF data or an `exposure.txt`; the output is aligned to the middle frame "
            "(frame N // 2, counting from 0); other bracket sizes need another model or the flow-merge.")


MOTION_LIMITATION = {
    False: ("Motion is handled by the network, not by explicit alignment: very large displacements, or content that "
            "is saturated or black in the medium exposure and moving in the others, can still leave ghosts or blur."),
    True: ("Motion is handled by optical-flow alignment before the network (the flow-merge prior and its confidence); "
           "where the flow fails and the reference is saturated, the model has to repair the prior, and what it "
           "repairs depends on how long it was trained."),
}


def _exposure_counts(folder: Path) -> tuple[int, int] | None:
    """The fewest and the most frames of a frame-count-independent model's brackets; ``None`` for a fixed count."""
    from ..models.condition_encoder import MIN_EXPOSURES

    try:
        encoder = json.loads((folder / "condition_encoder" / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return (MIN_EXPOSURES, int(encoder["num_exposures"])) if encoder.get("frame_pooling") else None


def _pipeline_summary(folder: Path) -> dict[str, Any]:
    """Sampler defaults and network sizes read from a saved pipeline folder (empty when it is not one)."""
    summary: dict[str, Any] = {}
    try:
        index = json.loads((folder / "model_index.json").read_text())
        unet = json.loads((folder / "unet" / "config.json").read_text())
        scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
    except (OSError, ValueError):
        return summary

    summary["scheduler"] = scheduler.get("_class_name", "?")
    for key in ("default_num_inference_steps", "default_patch_size", "default_stride", "default_condition_per_window",
                "default_window_blend", "default_processing_resolution"):
        if key in index:
            summary[key.removeprefix("default_")] = index[key]
    summary["alignment"] = "none (the paper's inputs)" if index.get("alignment") is None else (
        f"flow-merge prior, residual sampling ({json.dumps(index['alignment'])})")
    if index.get("correction_gate"):
        start, end = index["correction_gate"]
        summary["correction gate"] = (f"corrects the prior only where the reference's brightest channel reaches {start:g} "
                                      f"(fully from {end:g}); flow-merge elsewhere")
    counts = _exposure_counts(folder)
    if counts:
        summary["exposures"] = f"{counts[0]} to {counts[1]} (one set of weights)"
    # sample_size places the attention levels; it is the config's, not the crop a run trained on (--resolution).
    summary["UNet"] = (f"ch {unet.get('ch')}, ch_mult {unet.get('ch_mult')}, attention at {unet.get('attn_resolutions')}"
                       f" of a {unet.get('sample_size')}-pixel input")
    return summary


def render_model_card(
    repo_id: str | None = None,
    *,
    folder: str | Path | None = None,
    title: str = "DiffHDR: ghost-free HDR merging of exposure brackets",
    description: str = DEFAULT_DESCRIPTION,
    license: str = "apache-2.0",
    license_name: str | None = None,
    license_link: str | None = None,
    training: Mapping[str, Any] | None = None,
    training_title: str = "Training",
    metrics: Mapping[str, Any] | None = None,
    metrics_note: str | None = None,
    sections: Mapping[str, str] | None = None,
    limitations: list[str] | None = None,
    tags: list[str] | None = None,
) -> str:
    """The text of a model card for a DiffHDR pipeline.

    Args:
        repo_id: the Hub repo id the usage snippet loads; a placeholder path when `None`.
        folder: a saved pipeline folder whose sampler defaults and UNet size are listed.
        title: the card's heading.
        description: the opening paragraph.
        license: the Hub license identifier for the front matter.
        license_name, license_link: with ``license="other"``, the license's name and where its terms are.
        training: what the model was trained on and for how long, e.g. ``{"data": ..., "steps": ...,
            "duration": ..., "command": ...}``; rendered as a table.
        training_title: the heading of that table (e.g. ``"Source"`` for converted weights).
        metrics: ``{"PSNR-mu": 40.1, ...}`` or ``{method: {metric: value}}`` (the model next to baselines);
            rendered as a table.
        metrics_note: a sentence on how and on what the metrics were measured.
        sections: further ``{heading: markdown}`` sections, placed before the limitations.
        limitations: extra limitations, listed after the general ones.
        tags: extra Hub tags, added to the standard ones.
    """
    links = {key: value for key, value in (("license_name", license_name), ("license_link", license_link)) if value}
    card_data = ModelCardData(license=license, library_name="diffusers", pipeline_tag=PIPELINE_TAG,
                              tags=list(dict.fromkeys([*TAGS, *(tags or [])])), **links)
    model_ref = repo_id or "path/to/this/folder"
    parts = [f"# {title}", description, USAGE.format(model_ref=model_ref)]

    summary = _pipeline_summary(Path(folder)) if folder is not None else {}
    if summary:
        parts += ["## Sampler defaults", _key_value_table(summary)]
    if training:
        parts += [f"## {training_title}", _key_value_table(training)]
    if metrics:
        parts += ["## Evaluation", *([metrics_note] if metrics_note else []), metrics_table(metrics)]
    for heading, text in (sections or {}).items():
        parts += [f"## {heading}", text]
    aligned = summary.get("alignment", "none").startswith("flow-merge")
    general = list(DEFAULT_LIMITATIONS)
    counts = _exposure_counts(Path(folder)) if folder is not None else None
    if counts:  # a frame-count-independent model
        low, high = counts
        general[0] = any_count_limitation(low, high)
        if description == DEFAULT_DESCRIPTION:
            parts[1] = description.replace("a bracket of three LDR exposures (short, medium, long)",
                                           f"a bracket of {low} to {high} LDR exposures").replace(
                                           "aligned to the medium exposure", "aligned to the middle exposure")
    limitation_lines = [f"- {line}" for line in [*general, MOTION_LIMITATION[aligned], *(limitations or [])]]
    parts += ["## Limitations", "\n".join(limitation_lines)]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(parts) + "\n"
    return str(ModelCard(content))


def write_model_card(folder: str | Path, repo_id: str | None = None, overwrite: bool = False,
                     **card: Any) -> Path:
    """Write ``README.md`` into a saved pipeline folder; keeps an existing one unless ``overwrite``.

    ``card`` takes the keyword arguments of [`render_model_card`] (``training=``, ``metrics=``, ...).
    Returns the path of the README.
    """
    folder = Path(folder)
    path = folder / "README.md"
    if path.exists() and not overwrite:
        return path
    fields = ("title", "description", "license", "license_name", "license_link", "training", "training_title",
              "metrics", "metrics_note", "sections", "limitations", "tags")
    unknown = set(card) - set(fields)
    if unknown:
        raise InputError(f"model_card: unknown field(s) {', '.join(sorted(unknown))}; use {', '.join(fields)}.")
    path.write_text(render_model_card(repo_id, folder=folder, **card), encoding="utf-8")
    return path
