"""Classical merges (reference frame, naive triangle-weighted merge, OpenCV Debevec), and the tiny
Kalantari-layout scenes that these tests and ``test_evaluate.py`` use (written with the io functions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffhdr_diffusers.errors import InputError
from diffhdr_diffusers.evaluation.baselines import BASELINES, baseline, gamma_response, linearize, to_uint8
from diffhdr_diffusers.hdr_domain import to_model_units
from diffhdr_diffusers.io import write_ldr, write_radiance
from diffhdr_diffusers.metrics import psnr_mu

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

def _bracket(radiance, moving=False):
    """Three 16-bit-quantised exposures of ``radiance`` (with the moving square when ``moving``)."""
    if not moving:
        return [np.round(expose(radiance, ev) * 65535) / 65535 for ev in EXPOSURES]
    return [np.round(expose(moved(radiance, frame, True), ev) * 65535) / 65535 for frame, ev in enumerate(EXPOSURES)]


@pytest.fixture(scope="module")
def radiance():
    return scene_radiance(np.random.default_rng(0), 32, 48)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_return_float32_radiance_in_the_ground_truth_scale(name, radiance):
    # Exposures with an arbitrary offset: the merge is in their literal units, 2**7.5 times the offset-free one.
    shift = -7.5
    merged = baseline(name)(_bracket(radiance), [ev + shift for ev in EXPOSURES])
    assert merged.dtype == np.float32 and merged.shape == radiance.shape
    assert np.isfinite(merged).all() and merged.min() >= 0
    assert psnr_mu(to_model_units(merged, [ev + shift for ev in EXPOSURES]), radiance) > 25


def test_reference_is_the_medium_frame_linearised(radiance):
    images = _bracket(radiance)
    np.testing.assert_array_equal(baseline("reference")(images, EXPOSURES), linearize(images[1], EXPOSURES[1]))
    # Highlights saturated in the medium frame stay clipped at 1 / 2**2.
    assert baseline("reference")(images, EXPOSURES).max() <= 0.25 + 1e-6


def test_merges_recover_a_static_scene_better_than_the_reference(radiance):
    # Channels of natural scenes are correlated; OpenCV weights whole pixels (not channels), so a
    # scene with independent channels would penalise Debevec for a reason unrelated to this test.
    radiance = np.clip(radiance[..., :1] * np.array([1.0, 0.8, 0.6], dtype=np.float32), 0, 1)
    images = _bracket(radiance)
    reference = psnr_mu(baseline("reference")(images, EXPOSURES), radiance)
    naive = psnr_mu(baseline("naive-merge")(images, EXPOSURES), radiance)
    debevec = psnr_mu(baseline("debevec")(images, EXPOSURES), radiance)
    assert naive > 60  # 16-bit inputs, exact response: near-lossless.
    assert naive > debevec > reference  # Debevec is limited by OpenCV's 8-bit inputs.


def test_naive_merge_ghosts_where_the_reference_does_not(radiance):
    images = _bracket(radiance, moving=True)
    target = moved(radiance, 1, True)  # The object is where the medium (reference) frame shows it.
    ghost = (slice(8, 16), slice(4, 10))  # Where only the short frame shows the (unsaturated) object.
    naive_error = np.abs(baseline("naive-merge")(images, EXPOSURES) - target)[ghost].mean()
    reference_error = np.abs(baseline("reference")(images, EXPOSURES) - target)[ghost].mean()
    assert naive_error > 10 * reference_error


def test_debevec_inputs_and_response_are_documented_8_bit():
    assert to_uint8(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 128, 255, 255]
    response = gamma_response()
    assert response.shape == (256, 1, 3) and response.dtype == np.float32
    assert response[0, 0, 0] == response[1, 0, 0] > 0  # No log(0) in OpenCV's merge.
    assert response[255, 0, 0] == pytest.approx(1.0)


def test_unknown_baseline_and_mismatched_inputs_are_rejected(radiance):
    with pytest.raises(InputError, match="naive-merge"):
        baseline("median")
    with pytest.raises(InputError, match="one exposure per image"):
        baseline("naive-merge")(_bracket(radiance), [0.0, 2.0])
