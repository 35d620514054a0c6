"""Helpers shared by the tests of the front ends: tiny pipelines, small brackets and Kalantari-layout scenes, CLI runs,
folder snapshots."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from diffhdr_diffusers import DiffHDRPipeline, cli
from diffhdr_diffusers.io import write_ldr, write_radiance
from diffhdr_diffusers.model_configs import build_models
from diffhdr_diffusers.schedulers import original_ddim_scheduler

EXPOSURES = (0.0, 2.0, 4.0)
NAMES = ("short", "medium", "long")
ERROR_PREFIX = "diffhdr merge: error:"
PROGRESS_LINE = re.compile(r"^(Sampling: )?\s*\d+%\|")  # tqdm's progress bar (labelled "Sampling"), drawn on stderr


def tiny_pipeline(seed: int = 0, steps: int = 2) -> DiffHDRPipeline:
    """A randomly initialised tiny-config pipeline: 32-pixel windows, stride 16, ``steps`` DDIM steps."""
    torch.manual_seed(seed)
    unet, encoder = build_models("tiny")
    pipe = DiffHDRPipeline(unet, encoder, original_ddim_scheduler(), default_num_inference_steps=steps,
                           default_patch_size=32, default_stride=16)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_tiny_pipeline(folder: Path, nan_weights: bool = False) -> Path:
    """Save a tiny pipeline to ``folder``; ``nan_weights`` fills every UNet weight with NaN."""
    pipe = tiny_pipeline()
    if nan_weights:
        with torch.no_grad():
            for parameter in pipe.unet.parameters():
                parameter.fill_(float("nan"))
    pipe.save_pretrained(folder)
    return folder


def bracket_arrays(size: tuple[int, int] = (16, 24), seed: int = 0) -> list[np.ndarray]:
    """Three float (H, W, 3) exposures in [0, 1] of one random radiance map, at EV 0, 2 and 4."""
    radiance = np.random.default_rng(seed).random((*size, 3)) * 0.3
    return [np.clip(radiance * 2.0**ev, 0.0, 1.0) ** (1 / 2.2) for ev in EXPOSURES]


def write_scene(folder: Path, size: tuple[int, int] = (16, 24), exposure_txt: str | None = "0\n2\n4\n",
                names: Sequence[str] = NAMES, suffix: str = ".tif") -> list[Path]:
    """A Kalantari-style scene: 16-bit images ``short/medium/long`` and ``exposure.txt`` (if given)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_ldr(folder / f"{name}{suffix}", image) for name, image in zip(names, bracket_arrays(size))]
    if exposure_txt is not None:
        (folder / "exposure.txt").write_text(exposure_txt)
    return paths


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry of ``folder`` (hidden ones included) with its modification time and bytes."""
    return {entry.name: (entry.stat().st_mtime_ns, entry.read_bytes() if entry.is_file() else b"")
            for entry in sorted(folder.iterdir())}


def run_cli(argv: Sequence[str], capfd) -> tuple[int, str, str]:
    """Run ``diffhdr`` in this process; return (exit code, stdout, stderr) as seen on file descriptors 1 and 2."""
    capfd.readouterr()
    try:
        code = cli.main([str(arg) for arg in argv])
    except SystemExit as exit_:  # argparse rejects arguments by exiting
        code = exit_.code
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    out, err = capfd.readouterr()
    return code, out, err


def single_error_line(err: str) -> str:
    """Check that ``err`` holds exactly one ``diffhdr merge: error:`` line and nothing else but tqdm progress bars
    (argument errors too: the CLI's parser prints no usage text)."""
    assert "Traceback" not in err, err
    lines = [line for line in re.split(r"[\r\n]+", err) if line.strip()]
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, err
    others = [line for line in lines if line not in errors and not PROGRESS_LINE.match(line)]
    assert not others, f"unexpected stderr lines: {others}"
    return errors[0]


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: one thread, offline Hub, this checkout importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else root
    return env


def scene_radiance(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth log-normal radiance over about 10 stops, max about 1 (Kalantari's scale)."""
    coarse = rng.normal(size=(height // 8 + 2, width // 8 + 2, 3))
    fine = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    log_radiance = np.cumsum(fine, axis=0) * 0.05 + np.cumsum(fine, axis=1) * 0.05
    log_radiance = (log_radiance - log_radiance.max()) * (10 * np.log(2) / np.ptp(log_radiance))
    return np.exp(log_radiance).astype(np.float32)


def expose(radiance: np.ndarray, ev: float) -> np.ndarray:
    """Kalantari's forward model: clip((radiance * 2**ev) ** (1 / 2.2)) in [0, 1]."""
    return np.clip((radiance * 2.0**ev) ** (1 / 2.2), 0.0, 1.0)


def moved(radiance: np.ndarray, frame: int, moving: bool) -> np.ndarray:
    """The radiance seen by ``frame``: with ``moving``, a bright square shifted by 6 px per frame from
    where the reference (medium, frame 1) frame and the ground truth have it."""
    frame_radiance = radiance.copy()
    shift = 6 * (frame - 1) if moving else 0
    frame_radiance[8:16, 10 + shift:18 + shift] = 0.6
    return frame_radiance


def write_scenes(root: Path, num_scenes: int = 2, size: tuple[int, int] = (32, 48), seed: int = 0,
                 moving: bool = True) -> Path:
    """Write ``num_scenes`` scene folders (three 16-bit TIFFs, exposure.txt, HDRImg.hdr) under ``root``.

    With ``moving``, a bright square sits elsewhere in the short and long frames than in the reference
    (medium) frame and the ground truth, so merges without alignment ghost.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    for index in range(num_scenes):
        folder = root / f"scene_{index:03d}"
        folder.mkdir(parents=True)
        radiance = scene_radiance(rng, height, width)
        for frame, ev in enumerate(EXPOSURES):
            write_ldr(folder / f"{frame + 1}.tif", expose(moved(radiance, frame, moving), ev), bits=16)
        (folder / "exposure.txt").write_text("".join(f"{ev:g}\n" for ev in EXPOSURES))
        write_radiance(folder / "HDRImg.hdr", moved(radiance, 1, moving))
    return root


# A batch merge that sleeps before each scene: tests kill it mid-run (SIGKILL) and restart it.
SLOW_MERGE = """
import sys, time
import diffhdr_diffusers.merging as merging
original = merging.flow_merge_radiance
def slow(*args, **kwargs):
    time.sleep(0.4)  # give the test time to kill the run between (and during) scenes
    return original(*args, **kwargs)
merging.flow_merge_radiance = slow
from diffhdr_diffusers.commands.merge import main
sys.exit(main(sys.argv[1:]))
"""


def free_port() -> str:
    """A TCP port free on this machine now, for an ``accelerate launch`` rendezvous (fixed ports collide when
    two test runs share a machine)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])
