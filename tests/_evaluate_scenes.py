"""A tiny Kalantari-layout test set written with the io functions (no dependency on the data helpers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diffhdr_diffusers.io import write_ldr, write_radiance

EXPOSURES = (0.0, 2.0, 4.0)


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
            frame_radiance = radiance.copy()
            if moving and frame != 1:
                shift = 6 * (frame - 1)
                frame_radiance[8:16, 10 + shift:18 + shift] = 0.6
            write_ldr(folder / f"{frame + 1}.tif", expose(frame_radiance, ev), bits=16)
        (folder / "exposure.txt").write_text("".join(f"{ev:g}\n" for ev in EXPOSURES))
        ground_truth = radiance.copy()
        ground_truth[8:16, 10:18] = 0.6
        write_radiance(folder / "HDRImg.hdr", ground_truth)
    return root
