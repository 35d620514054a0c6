"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tests use tiny models: one thread is as fast as two and immune to OpenMP spin-waiting on a busy machine.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_data_dir() -> Path:
    """The real sample data folder: ``$DIFFHDR_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    override = os.environ.get("DIFFHDR_SHARED_DATA")
    if override:
        return Path(override)
    return (Path(__file__).resolve().parents[1] / "../shared/data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real sample data (real_hdr/, real_brackets/); skips the test when it is absent."""
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.skip(f"shared sample data not found at {folder} (set DIFFHDR_SHARED_DATA)")
    return folder


@pytest.fixture(scope="session")
def synthetic_scenes(tmp_path_factory) -> Path:
    """A dataset root holding ``Training/00000..00002``: three synthetic 64x96 Kalantari-layout scenes
    (``diffhdr_diffusers.data.synthesize_scenes``, seed 0, procedural, with motion and noise), made once
    per session. Read-only: copy it before changing files."""
    from diffhdr_diffusers.data import synthesize_scenes

    root = tmp_path_factory.mktemp("synthetic_scenes")
    synthesize_scenes(root / "Training", 3, size=(64, 96), seed=0)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A saved tiny random-weights pipeline (``merge_support.save_tiny_pipeline``)."""
    from merge_support import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny_model") / "model")


@pytest.fixture
def scene(tmp_path) -> Path:
    """A 36x20 Kalantari-style scene folder of gamma-2.2 frames at EV 0, 2, 4 (``merge_support.write_scene``)."""
    from merge_support import write_scene

    folder = tmp_path / "scene"
    write_scene(folder, size=(20, 36))
    return folder
