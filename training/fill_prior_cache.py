"""Align a training folder into the prior cache before training, in several processes.

    python training/fill_prior_cache.py --train_data_dir data/realistic --prior_cache_dir runs/prior_cache \
        --model_config aligned-nframe-small --workers 14

``train_diffhdr.py`` fills the same cache on the fly, one scene at a time per data-loading process, so its first
epoch waits on the alignment. Filling it first spreads the alignment over every core and leaves training its
own speed. Each scene's file is written atomically, so several processes (or a killed run) never leave a broken
one, and scenes already cached are read, not aligned again. The cache key is the one training uses (the config's
alignment, the response and the EV planes), so give the same ``--model_config`` and ``--response``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from pathlib import Path

TRAINING = Path(__file__).resolve().parent
_TRANSFORM = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_data_dir", required=True)
    parser.add_argument("--prior_cache_dir", required=True)
    parser.add_argument("--model_config", default="aligned-nframe-small", help="its alignment settings key the cache")
    parser.add_argument("--response", default="auto", help="as train_diffhdr.py's --response (default auto)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    return parser.parse_args(argv)


def _start(settings: tuple) -> None:
    """A worker's set-up: one thread for every library (one process per core; threads would only contend). The
    BLAS libraries read their variables when numpy is first imported, which in a fresh worker is below."""
    global _TRANSFORM
    os.environ.update(dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"))
    import cv2
    import torch

    from diffhdr_diffusers.data import TrainingTransform

    alignment, response, cache = settings
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    _TRANSFORM = TrainingTransform(alignment=alignment, exposure_planes=True, response=response, prior_cache_dir=cache)


def _align(row: dict) -> None:
    from diffhdr_diffusers.data import decode_scene

    _TRANSFORM.scene_prior(decode_scene(row))
    _TRANSFORM._priors.clear()  # the disk holds them


def fill_prior_cache(train_data_dir, prior_cache_dir, model_config: str = "aligned-nframe-small",
                     response: str = "auto", workers: int | None = None, log=print) -> float:
    """Align every scene of ``train_data_dir`` into ``prior_cache_dir`` in ``workers`` processes; the seconds taken."""
    sys.path.insert(0, str(TRAINING))
    import train_diffhdr

    from diffhdr_diffusers.model_configs import pipeline_settings

    alignment = pipeline_settings(model_config).get("alignment")
    if alignment is None:
        raise SystemExit(f"--model_config {model_config}: not an aligned config; it uses no prior cache.")
    scenes = train_diffhdr.load_scenes(str(train_data_dir), "train", num_exposures=None)
    start = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers or os.cpu_count() or 1, _start, ((alignment, response, str(prior_cache_dir)),)) as pool:
        for done, _ in enumerate(pool.imap_unordered(_align, (scenes[i] for i in range(len(scenes))), chunksize=4), 1):
            if done % 200 == 0 or done == len(scenes):
                log(f"aligned {done}/{len(scenes)} scenes in {time.perf_counter() - start:.0f} s")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fill_prior_cache(args.train_data_dir, args.prior_cache_dir, args.model_config, args.response, args.workers,
                     log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
