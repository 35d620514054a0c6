#!/usr/bin/env python
"""Capacity pilot: train two (or more) model configs for the same wall time on the same data, then compare
what each gained over the flow-merge per CPU hour, on the same held-out crops.

    python training/capacity_pilot.py --train_data_dir data/realistic --minutes 60 \\
        --configs aligned-nframe-small aligned-nframe-medium --output_dir runs/pilot

Each config trains one after the other (so they do not share the CPUs) with ``train_diffhdr.py``
``--max_train_time_minutes MINUTES`` into ``OUTPUT_DIR/<config>``, all with one prior cache
(``OUTPUT_DIR/prior_cache``, filled before the first run: the data is aligned once, and charged to no
run) and the same held-out scenes (the last
``--num_validation_scenes`` of the training split). Running the command again resumes each run for another
MINUTES (the hours add up in the table). Arguments after ``--`` go to every run (say ``-- --learning_rate 4e-4 --train_batch_size 8``).
The table, also written to ``OUTPUT_DIR/pilot.json``, gives per config its parameters, steps, crops per
second, its final validation PSNR-mu and PSNR-l, those of the flow-merge on the same crops and camera
response (the untrained start of every aligned config), and the PSNR-mu gain per CPU hour (wall hours times
the torch threads of the run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TRAINING = Path(__file__).resolve().parent
SCRIPT = TRAINING / "train_diffhdr.py"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_data_dir", required=True, help="Scene folders (e.g. from diffhdr synth --camera realistic).")
    parser.add_argument("--configs", nargs="+", default=["aligned-nframe-small", "aligned-nframe-medium"])
    parser.add_argument("--minutes", type=float, default=60.0, help="Wall time of each run (each call).")
    parser.add_argument("--output_dir", default="runs/pilot")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--num_validation_scenes", type=int, default=8)
    parser.add_argument("--validation_size", type=int, default=128)
    parser.add_argument("--response", default="auto", help="Camera response of the training and validation frames.")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    return parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv), extra


def train(args: argparse.Namespace, config: str, extra: list[str]) -> float:
    """One run of ``config`` for ``args.minutes``; returns its wall seconds."""
    output = Path(args.output_dir) / config
    command = [sys.executable, str(SCRIPT), "--train_data_dir", args.train_data_dir, "--model_config", config,
               "--output_dir", str(output), "--prior_cache_dir", str(Path(args.output_dir) / "prior_cache"),
               "--resolution", str(args.resolution), "--max_train_time_minutes", str(args.minutes),
               "--num_validation_scenes", str(args.num_validation_scenes), "--validation_size",
               str(args.validation_size), "--response", args.response, "--validation_steps", "1000000000",
               "--checkpointing_steps", "1000", "--checkpoints_total_limit", "2", "--report_to", "none",
               "--prediction_type", "sample", "--resume_from_checkpoint", "latest", *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def split(args: argparse.Namespace):
    """(training scenes, validation scenes) as the runs split them."""
    sys.path.insert(0, str(TRAINING))
    import train_diffhdr

    scenes = train_diffhdr.load_scenes(args.train_data_dir, "train", num_exposures=None)
    held_out = min(args.num_validation_scenes, len(scenes) - 1)
    return scenes.select(range(len(scenes) - held_out)), scenes.select(range(len(scenes) - held_out, len(scenes)))


def align_once(args: argparse.Namespace) -> float:
    """Fill the shared prior cache for the aligned-nframe configs before any run (``fill_prior_cache.py``, one
    process per core), so that aligning the data is charged to none of them; returns the seconds it took."""
    from fill_prior_cache import fill_prior_cache

    return fill_prior_cache(args.train_data_dir, Path(args.output_dir) / "prior_cache", args.configs[0], args.response)


def flow_merge_scores(args: argparse.Namespace) -> dict:
    """PSNR-mu and PSNR-l of the flow-merge on the runs' validation crops, scored as their validation is."""
    import numpy as np
    import train_diffhdr

    from diffhdr_diffusers.hdr_domain import to_model_units
    from diffhdr_diffusers.methods import load_method
    from diffhdr_diffusers.metrics import psnr_l, psnr_mu

    brackets = train_diffhdr.validation_brackets(split(args)[1], args.validation_size)
    method = load_method("flow-merge", response=args.response)
    scores = []
    for bracket in brackets:
        merged = method(bracket["images"], bracket["exposures"]).radiance
        prediction, target = (to_model_units(image, bracket["exposures"]) for image in (merged, bracket["radiance"]))
        scores.append((float(psnr_mu(prediction, target)), float(psnr_l(prediction, target))))
    return {"psnr_mu": float(np.mean([s[0] for s in scores])), "psnr_l": float(np.mean([s[1] for s in scores]))}


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    path = Path(args.output_dir) / "pilot.json"
    earlier = {row["config"]: row for row in json.loads(path.read_text())["runs"]} if path.is_file() else {}
    print(f"aligning the training scenes once: {align_once(args):.0f} s")
    rows = []
    for config in args.configs:
        seconds = train(args, config, extra)
        hours = earlier.get(config, {}).get("wall_hours", 0.0) + seconds / 3600
        output = Path(args.output_dir) / config
        validation = json.loads((output / "validation.jsonl").read_text().splitlines()[-1])
        record = json.loads((output / "logs" / "rank-0.json").read_text())
        weights = sum(path.stat().st_size for path in output.glob("*/diffusion_pytorch_model.safetensors"))
        rows.append({"config": config, "weights_mb": weights / 1e6, "steps": record["final_step"],
                     "crops_per_s": record["samples"] / seconds, "psnr_mu": validation["psnr_mu"],
                     "psnr_l": validation["psnr_l"], "wall_hours": hours, "threads": threads})
    baseline = flow_merge_scores(args)
    print(f"flow-merge (--response {args.response}): PSNR-mu {baseline['psnr_mu']:.2f} dB, "
          f"PSNR-l {baseline['psnr_l']:.2f} dB on {args.num_validation_scenes} held-out crops")
    print("config | weights MB | steps | crops/s | PSNR-mu | PSNR-l | gain dB | CPU hours | gain dB per CPU hour")
    for row in rows:
        row["gain_db"] = row["psnr_mu"] - baseline["psnr_mu"]
        row["cpu_hours"] = row["wall_hours"] * threads
        row["gain_db_per_cpu_hour"] = row["gain_db"] / max(row["cpu_hours"], 1e-9)
        print(f"{row['config']} | {row['weights_mb']:.1f} | {row['steps']} | {row['crops_per_s']:.2f} | "
              f"{row['psnr_mu']:.2f} | {row['psnr_l']:.2f} | {row['gain_db']:+.2f} | {row['cpu_hours']:.2f} | "
              f"{row['gain_db_per_cpu_hour']:+.3f}")
    path.write_text(json.dumps({"flow_merge": baseline, "runs": rows, "minutes": args.minutes}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
