"""Tables of per-scene metrics: means, Markdown summary, CSV and JSON, as ``diffhdr evaluate`` writes them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from ..io import atomic_path
from . import KALANTARI_METRICS, PERCEPTUAL_METRICS
from .pu21 import DisplayAssumptions

METRIC_LABELS = {
    "psnr_mu": "PSNR-mu",
    "psnr_l": "PSNR-l",
    "ssim_mu": "SSIM-mu",
    "ssim_l": "SSIM-l",
    "pu21_psnr": "PU21-PSNR",
    "pu21_ssim": "PU21-SSIM",
    "cvvdp_jod": "CVVDP (JOD)",
}


def json_value(value):
    """A float for JSON: NaN becomes null and infinities the strings 'inf' / '-inf'."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def summarize(rows: list[dict]) -> dict:
    """Mean of every metric over the scenes that have it, mean seconds per scene, scene count."""
    names = [name for name in (*KALANTARI_METRICS, *PERCEPTUAL_METRICS, "cvvdp_jod") if any(name in r for r in rows)]
    means = {name: _mean([row[name] for row in rows if name in row]) for name in names}
    means["seconds"] = _mean([row["seconds"] for row in rows])
    means["scenes"] = len(rows)
    means["scored_scenes"] = sum(1 for row in rows if "psnr_mu" in row)
    return means


def _format(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def markdown_table(label: str, means: dict, memory: dict) -> str:
    """One Markdown table row of means, in the papers' column order, with time and memory."""
    metric_names = [name for name in METRIC_LABELS if name in means]
    header = ["method", "scenes", *(METRIC_LABELS[n] for n in metric_names), "s / scene", "peak RSS (MiB)",
              "peak GPU (MiB)"]
    cells = [label, str(means["scenes"])]
    cells += [_format(means[n], 2 if "psnr" in n or n == "cvvdp_jod" else 4) for n in metric_names]
    cells += [_format(means["seconds"], 3), _format(memory.get("peak_rss_mib"), 0), _format(memory.get("peak_gpu_mib"), 0)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), "| " + " | ".join(cells) + " |"]
    return "\n".join(lines)


def write_tables(rows: list[dict], out_dir: Path, label: str, settings: dict, memory: dict,
                 display: DisplayAssumptions, data_dir: str, overwrite: bool = False) -> str:
    """Write ``metrics.csv``, ``metrics.json`` and ``summary.md``; return the summary text."""
    rows = sorted(rows, key=lambda row: row["scene"])
    means = summarize(rows)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(out_dir / "metrics.csv", overwrite=overwrite) as temporary, \
            open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    document = {
        "method": label,
        "data_dir": str(data_dir),
        "settings": settings,
        "display_assumptions": {**vars(display), "description": display.describe()},
        "memory": memory,
        "means": {key: json_value(value) for key, value in means.items()},
        "scenes": [{key: json_value(value) for key, value in row.items()} for row in rows],
    }
    with atomic_path(out_dir / "metrics.json", overwrite=overwrite) as temporary:
        temporary.write_text(json.dumps(document, indent=2) + "\n")
    settings_text = ", ".join(f"{key}={value}" for key, value in settings.items())
    summary = "\n".join([
        f"# Evaluation of {label}",
        "",
        markdown_table(label, means, memory),
        "",
        f"- Data: `{data_dir}` ({means['scored_scenes']} of {means['scenes']} scenes have ground truth).",
        f"- Settings: {settings_text}.",
        (
            "- Kalantari protocol: PSNR with data range 1 on linear and mu-law (mu=5000) radiance; SSIM on values "
            "clipped to [0,1] x 255, 11x11 Gaussian (sigma 1.5), 5-pixel border dropped, mean over channels."
        ),
        f"- Perceptual metrics: {display.describe()}.",
        "- Time: seconds of prediction per scene (no file I/O); memory: the maximum over processes.",
        "",
    ])
    with atomic_path(out_dir / "summary.md", overwrite=overwrite) as temporary:
        temporary.write_text(summary)
    return summary
