"""Sampling presets against the model's defaults: seconds and PSNR-mu per bracket, so "fast" is measured, not named.

    python benchmarks/bench_presets.py                         # the bundled model on examples/, presets only
    python benchmarks/bench_presets.py --candidates            # also the candidate settings a preset could use
    python benchmarks/bench_presets.py --model PATH --repeats 3

Each setting runs on every scene folder of ``--scenes`` (default: the repository's ``examples/``, which carry a
ground truth) as ``diffhdr merge`` runs the model on a CPU (allocator tuned, CPU window budget, seed 0). Seconds
are the minimum over ``--repeats`` calls after one warm-up call (the machine may be shared); PSNR-mu is in model
units against ``HDRImg.hdr``. The table is Markdown.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CANDIDATES = {  # settings a "fast" preset could be made of, on top of the model's defaults
    "steps 1": {"num_inference_steps": 1},
    "steps 2": {"num_inference_steps": 2},
    "steps 3": {"num_inference_steps": 3},
    "shifted windows": {"shift_windows": True},
    "paper's fast (5 steps, shifted)": {"num_inference_steps": 5, "shift_windows": True},
    "processing 256": {"processing_resolution": 256},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a pipeline folder (default: the bundled model)")
    parser.add_argument("--scenes", default=str(ROOT / "examples"), help="folder of scene folders with HDRImg.hdr")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--candidates", action="store_true", help="also time the candidate settings")
    args = parser.parse_args()

    import torch

    from diffhdr_diffusers.allocator import configure_from_environment, cpu_window_budget
    from diffhdr_diffusers.hdr_domain import to_model_units
    from diffhdr_diffusers.io import read_radiance
    from diffhdr_diffusers.io.bracket import load_bracket
    from diffhdr_diffusers.metrics import compute_metrics
    from diffhdr_diffusers.pipelines import DiffHDRPipeline
    from diffhdr_diffusers.pipelines.presets import PRESETS, sampling_preset

    configure_from_environment()
    pipe = DiffHDRPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    settings = {f"preset {name}": sampling_preset(name, pipe.config) for name in PRESETS}
    if args.candidates:
        settings.update(CANDIDATES)
    scenes = sorted(path for path in Path(args.scenes).iterdir() if (path / "HDRImg.hdr").is_file())
    brackets = [(scene.name, load_bracket(scene), read_radiance(scene / "HDRImg.hdr")) for scene in scenes]

    print(f"model: {args.model or 'bundled'}; {len(brackets)} scenes of {brackets[0][1].images[0].shape[1]}x"
          f"{brackets[0][1].images[0].shape[0]}; torch threads {torch.get_num_threads()}\n")
    print("| setting | options | seconds per bracket | PSNR-mu (dB) |\n|---|---|---|---|")
    for name, options in settings.items():
        seconds, scores = [], []
        for _, bracket, truth in brackets:
            def run():
                return pipe(bracket.images, bracket.exposures, generator=torch.Generator().manual_seed(0),
                            window_memory_budget=cpu_window_budget(), **options)
            run()  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                out = run()
                times.append(time.perf_counter() - start)
            seconds.append(min(times))
            prediction = to_model_units(out.hdr[0], bracket.exposures)
            scores.append(compute_metrics(prediction, to_model_units(truth, bracket.exposures),
                                          perceptual=False)["psnr_mu"])
        print(f"| {name} | `{options}` | {np.mean(seconds):.2f} | {np.mean(scores):.2f} |", flush=True)


if __name__ == "__main__":
    main()
