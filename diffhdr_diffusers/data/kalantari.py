"""The Kalantari (SIG17) dataset, or any folder of scenes in its layout, as a ``datasets.Dataset``.

Rows hold file bytes, not decoded images: ``datasets.Image`` would turn 16-bit TIFF into 8 bits and
cannot read ``.hdr``. Decode with :func:`~diffhdr_diffusers.data.transforms.decode_scene` or the
transforms. The dataset can be ``save_to_disk``'d and pushed to the Hub like any other.
"""

from __future__ import annotations

import logging
import os

import datasets
import numpy as np

from ..hdr_domain import GAMMA
from .decode import decode_ldr
from .scenes import SceneFiles, find_scenes

logger = logging.getLogger(__name__)

_List = getattr(datasets, "List", None) or datasets.Sequence  # datasets < 4 has only Sequence

FEATURES = datasets.Features(
    {
        "scene": datasets.Value("string"),
        "ldr": _List(datasets.Value("binary")),
        "ldr_names": _List(datasets.Value("string")),
        "exposures": _List(datasets.Value("float64")),
        "hdr": datasets.Value("binary"),
        "hdr_name": datasets.Value("string"),
        "height": datasets.Value("int32"),
        "width": datasets.Value("int32"),
    }
)
"""Columns: scene id, the LDR files' bytes (short to long) and names, EV per exposure, the ground
truth's bytes and name (``None`` when absent), and the image size."""

_WELL_EXPOSED = (0.05, 0.9)  # LDR values trusted when comparing the brightness of two exposures


def measured_stops(darker: np.ndarray, brighter: np.ndarray, gamma: float = GAMMA) -> float | None:
    """Median ratio, in stops, of linearised ``brighter`` over ``darker``, compared quantile by quantile.

    The q-quantiles of two exposures of one scene see the same radiance whatever moves between them (the
    response is monotone), so the comparison needs no alignment; levels where either image is not well
    exposed are left out. Returns ``None`` when fewer than 5 of the 99 levels are well exposed in both.
    """
    low, high = _WELL_EXPOSED
    levels = np.linspace(0.01, 0.99, 99)
    darker_levels = np.quantile(np.asarray(darker, dtype=np.float32), levels)
    brighter_levels = np.quantile(np.asarray(brighter, dtype=np.float32), levels)
    usable = (darker_levels > low) & (darker_levels < high) & (brighter_levels > low) & (brighter_levels < high)
    if usable.sum() < 5:
        return None
    ratio = (brighter_levels[usable].astype(np.float64) / darker_levels[usable]) ** gamma
    return float(np.log2(np.median(ratio)))


def check_brightness_order(scene: str, names: list[str], images: list[np.ndarray], exposures: list[float]) -> list[str]:
    """Compare the exposure order of ``exposure.txt`` with the images' brightness; log and return warnings.

    For each neighbouring pair, the longer exposure must be the brighter one, quantile by quantile (so
    moving content and camera shake do not count, and any monotone camera response gives the same
    verdict); otherwise the files (or the lines of ``exposure.txt``) are out of order. How much brighter
    is not checked here: that needs the camera's response, which :func:`~diffhdr_diffusers.camera.apply_camera`
    estimates and whose exposure corrections it reports.
    """
    warnings = []
    for (name_a, image_a, ev_a), (name_b, image_b, ev_b) in zip(
        zip(names, images, exposures), list(zip(names, images, exposures))[1:]
    ):
        stops = measured_stops(image_a, image_b)
        if stops is None:
            mean_a, mean_b = float(np.mean(image_a)), float(np.mean(image_b))
            if mean_b < mean_a - 0.01:  # (nearly) all black or all clipped frames tie
                warnings.append(
                    f"scene {scene}: {name_b} is darker on average ({mean_b:.3f}) than {name_a} ({mean_a:.3f}) although "
                    f"exposure.txt gives {ev_b:g} > {ev_a:g} EV; the files may be out of order."
                )
            continue
        if stops <= 0:
            warnings.append(
                f"scene {scene}: {name_b} is {-stops:.2f} stops darker than {name_a} although exposure.txt gives "
                f"{ev_b:g} > {ev_a:g} EV; the files or the lines of exposure.txt are out of order."
            )
    for message in warnings:
        logger.warning(message)
    return warnings


def _scene_row(files: SceneFiles, check_order: bool) -> dict:
    ldr = [path.read_bytes() for path in files.ldr_paths]
    names = [path.name for path in files.ldr_paths]
    if check_order:
        # Every 4th pixel is plenty for a median ratio and keeps building the dataset fast.
        images = [decode_ldr(data, files.folder / name)[::4, ::4] for data, name in zip(ldr, names)]
        check_brightness_order(files.scene, names, images, list(files.exposures))
    return {
        "scene": files.scene,
        "ldr": ldr,
        "ldr_names": names,
        "exposures": list(files.exposures),
        "hdr": files.hdr_path.read_bytes() if files.hdr_path else None,
        "hdr_name": files.hdr_path.name if files.hdr_path else None,
        "height": files.height,
        "width": files.width,
    }


def _generate_rows(scenes: list[SceneFiles], check_order: bool):
    for files in scenes:
        yield _scene_row(files, check_order)


def load_kalantari(
    root: str | os.PathLike,
    split: str | None = "train",
    num_exposures: int | None = 3,
    require_hdr: bool | None = None,
    check_order: bool = True,
    cache_dir: str | os.PathLike | None = None,
    keep_in_memory: bool = False,
) -> datasets.Dataset:
    """Load a Kalantari-layout dataset split as a ``datasets.Dataset`` of file bytes.

    Args:
        root: the dataset folder. Scenes are looked for under ``root/Training`` for ``split="train"``
            and ``root/Test`` for ``"test"`` (any letter case; ``train``/``testing`` too); without
            split folders, ``root`` itself is the folder of scenes. Scene folders may be nested in
            groupings (``Test/PAPER/...``, ``Test/EXTRA/...``). ``split=None`` always uses ``root``.
        split: ``"train"``, ``"test"`` or ``None``.
        num_exposures: LDR images per scene; ``None`` for any bracket of 2 to 9 (scenes of several sizes).
        require_hdr: require the ground truth ``HDRImg.hdr`` (default: for the train split only).
        check_order: compare each scene's brightness order with ``exposure.txt`` and log a warning
            (logger ``diffhdr_diffusers.data.kalantari``) when they disagree. Runs when the dataset
            is built, not when it is reloaded from the cache.
        cache_dir, keep_in_memory: passed to ``Dataset.from_generator``. The cache key includes
            every file's size and modification time, so edited scenes are re-read.

    Returns:
        A dataset with the columns of :data:`FEATURES`, one row per scene, in natural order of the
        scene ids.

    Raises:
        DatasetError: naming the scene and file, for a missing file, a wrong number of LDR images,
            an unparsable ``exposure.txt``, or images of different sizes.
    """
    if require_hdr is None:
        require_hdr = split is not None and split.lower() == "train"
    scenes = find_scenes(root, split, num_exposures, require_hdr)
    return datasets.Dataset.from_generator(
        _generate_rows,
        features=FEATURES,
        cache_dir=None if cache_dir is None else str(cache_dir),
        keep_in_memory=keep_in_memory,
        gen_kwargs={"scenes": scenes, "check_order": check_order},
        split=datasets.Split(split.lower()) if split and split.lower() in ("train", "test") else datasets.Split.TRAIN,
    )
