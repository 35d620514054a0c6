"""A method against a baseline on a realistic held-out set, by tone curve, file format and frame count.

Usage::

    diffhdr evaluate SET --method flow-merge --response auto --units model --out results/flow-merge
    diffhdr evaluate SET --model MODEL --response auto --units model --out results/model
    python benchmarks/model_heldout.py SET results/flow-merge results/model

Each results folder is a ``diffhdr evaluate --out`` folder (its ``metrics.json``); the first is the baseline.
The groups come from each scene's ``scene.json`` (``diffhdr synth --camera realistic``). The table gives the
mean PSNR-mu, PSNR-l and SSIM-mu of every results folder per group, and the last one's difference from the
baseline; then the model issue's targets, checked for the last folder against the baseline.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

METRICS = ("psnr_mu", "psnr_l", "ssim_mu")
LABELS = {"psnr_mu": "PSNR-mu", "psnr_l": "PSNR-l", "ssim_mu": "SSIM-mu"}
GROUPS = {
    "curve": lambda params: params["camera"]["curve"],
    "format": lambda params: params["camera"]["format"],
    "N": lambda params: params["num_frames"],
}


def load_rows(results: Path) -> dict[str, dict]:
    rows = json.loads((results / "metrics.json").read_text())["scenes"]
    return {row["scene"]: row for row in rows if "psnr_mu" in row}


def group_table(key: str, scenes: dict[str, dict], runs: dict[str, dict[str, dict]]) -> list[str]:
    names = list(runs)
    groups = defaultdict(list)
    for scene, params in scenes.items():
        groups[GROUPS[key](params)].append(scene)
    groups["all"] = list(scenes)
    head = [key, "scenes"] + [f"{LABELS[m]} {name}" for m in METRICS for name in names] + [
        f"{LABELS[m]} diff" for m in METRICS]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for group in sorted((g for g in groups if g != "all"), key=str) + ["all"]:
        members = groups[group]
        means = {(m, name): np.mean([runs[name][s][m] for s in members]) for m in METRICS for name in names}
        cells = [f"**{group}**" if group == "all" else str(group), str(len(members))]
        cells += [f"{means[m, name]:.4f}" if m == "ssim_mu" else f"{means[m, name]:.2f}" for m in METRICS for name in names]
        for m in METRICS:
            diff = means[m, names[-1]] - means[m, names[0]]
            cells.append(f"{diff:+.4f}" if m == "ssim_mu" else f"{diff:+.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def targets(scenes: dict[str, dict], base: dict[str, dict], ours: dict[str, dict]) -> list[tuple[bool, str]]:
    def diff(metric, members):
        return float(np.mean([ours[s][metric] - base[s][metric] for s in members]))

    everything = list(scenes)
    checks = [(diff("psnr_mu", everything) >= 1.0, f"PSNR-mu >= baseline + 1.0 dB overall: {diff('psnr_mu', everything):+.2f} dB")]
    for count in (2, 3, 5):
        members = [s for s, p in scenes.items() if p["num_frames"] == count]
        if members:
            gain = diff("psnr_mu", members)
            checks.append((gain >= 0.5, f"PSNR-mu >= baseline + 0.5 dB at N = {count}: {gain:+.2f} dB ({len(members)} scenes)"))
    for metric in ("psnr_l", "ssim_mu"):
        gain = diff(metric, everything)
        unit = "" if metric == "ssim_mu" else " dB"
        checks.append((gain >= 0, f"{LABELS[metric]} not below the baseline: {gain:+.4g}{unit}"))
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("results", type=Path, nargs="+", help="diffhdr evaluate --out folders; the first is the baseline")
    args = parser.parse_args()
    runs = {results.name: load_rows(results) for results in args.results}
    common = set.intersection(*(set(rows) for rows in runs.values()))
    scenes = {}
    for scene in sorted(common):
        path = args.data_dir / scene / "scene.json"
        if path.is_file():
            scenes[scene] = json.loads(path.read_text())
    if not scenes:
        raise SystemExit(f"{args.data_dir}: no scene scored in every results folder has a scene.json")
    print(f"{len(scenes)} scenes scored by every results folder; difference = {args.results[-1].name} - {args.results[0].name}\n")
    for key in GROUPS:
        print("\n".join(group_table(key, scenes, runs)) + "\n")
    if len(runs) > 1:
        base, ours = runs[args.results[0].name], runs[args.results[-1].name]
        for passed, text in targets(scenes, base, ours):
            print(f"- [{'x' if passed else ' '}] {text}")


if __name__ == "__main__":
    main()
