"""The web app's work, without Gradio: read an uploaded bracket, merge it, write the downloads.

Every function raises :class:`~diffhdr_diffusers.errors.DiffHDRError` (one-line message) for input the
user can fix; the UI (:mod:`diffhdr_diffusers.app.ui`) shows that message in the page.

Per-session files live in :class:`SessionFolders`: one folder per browser session under one
temporary root, removed when the session ends (the page is closed) and, with the root, when the
process exits.
"""

from __future__ import annotations

import atexit
import math
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ExposureError, InputError

METHOD_MODEL = "Bundled model"
METHOD_FLOW = "flow-merge"
METHOD_CUSTOM = "Model folder / Hub id"
METHODS = (METHOD_MODEL, METHOD_FLOW, METHOD_CUSTOM)
MAX_ENSEMBLE = 8
MIN_IMAGES = 2
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"



def _exposure_file_names() -> tuple[str, ...]:
    """The exposure files ``load_bracket`` reads from a scene folder besides the images."""
    from ..io.exposures import EXPOSURE_TIMES_TXT, EXPOSURE_TXT, RELATIVE_EXPOSURES_TXT

    return (EXPOSURE_TXT, EXPOSURE_TIMES_TXT, RELATIVE_EXPOSURES_TXT)


def _is_exposure_file(path: Path) -> bool:
    from ..io.scene import is_exposure_file

    return is_exposure_file(path)


def example_brackets(folder: Path = EXAMPLES_DIR) -> dict[str, list[Path]]:
    """Bundled example brackets: ``{scene name: [image files..., exposure file]}`` (empty without ``examples/``)."""
    from ..io.ldr import LDR_SUFFIXES

    examples = {}
    if folder.is_dir():
        for scene in sorted(path for path in folder.iterdir() if path.is_dir()):
            files = sorted(path for path in scene.iterdir() if path.suffix.lower() in LDR_SUFFIXES)
            files += [path for path in sorted(scene.iterdir()) if path.is_file() and _is_exposure_file(path)]
            if len(files) > MIN_IMAGES:
                examples[scene.name] = files
    return examples


def parse_exposures(text: str | None) -> list[float] | None:
    """EVs typed as ``0, 2, 4`` (commas, semicolons or spaces); ``None`` for an empty box (read them instead)."""
    tokens = [token for token in re.split(r"[\s,;]+", text or "") if token]
    if not tokens:
        return None
    values = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            raise ExposureError(
                f"exposures: {token!r} is not a number; type one EV per image, short to long, e.g. 0, 2, 4 "
                "(or clear the box to read them from EXIF or exposure.txt)."
            ) from None
        if not math.isfinite(value):
            raise ExposureError(f"exposures: {token!r} is not finite; type finite EV values, e.g. 0, 2, 4.")
        values.append(value)
    return values


def stage_upload(paths: Sequence[str | Path], folder: Path) -> Path:
    """Copy uploaded files into a fresh ``folder`` (a scene folder for ``load_bracket``); return it.

    Accepts LDR images and at most one exposure file (``exposure.txt``, ``exposure_times.txt``,
    ``relative_exposures.txt``). Anything else, fewer than two images or two files of one name raise
    :class:`InputError`.
    """
    from ..io.ldr import LDR_SUFFIXES

    paths = [Path(path) for path in paths or []]
    exposure_names = _exposure_file_names()
    images = [path for path in paths if path.suffix.lower() in LDR_SUFFIXES]
    exposure_files = [path for path in paths if _is_exposure_file(path)]
    others = [path for path in paths if path not in images and path not in exposure_files]
    if others:
        raise InputError(
            f"{', '.join(path.name for path in others)}: not a bracket image; upload .tif, .tiff, .png, .jpg or "
            f".jpeg exposures (and optionally one of {', '.join(exposure_names)})."
        )
    if len(images) < MIN_IMAGES:
        raise InputError(
            f"got {len(images)} image{'s' if len(images) != 1 else ''}: a bracket needs at least {MIN_IMAGES} "
            "exposures of the same scene; upload them together."
        )
    if len(exposure_files) > 1:
        raise InputError(f"several exposure files ({', '.join(p.name for p in exposure_files)}); upload only one.")
    names = [path.name for path in paths]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"two uploads are named {', '.join(repeated)}; give each exposure its own file name.")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for path in paths:
        shutil.copyfile(path, folder / path.name)
    return folder


def read_bracket(folder: Path, exposures: Sequence[float] | None = None):
    """The staged upload as a bracket: as many images as it holds, EVs typed, from its file or from EXIF."""
    from ..methods.frames import read_bracket as read_frames

    return read_frames(folder, exposures=exposures)


@dataclass
class MergeSettings:
    method: str = METHOD_FLOW
    model: str | None = None  # folder or Hub id, for METHOD_CUSTOM
    fast: bool = True
    seed: int = 0
    ensemble: int = 1
    response: str = "auto"  # the camera response: auto, srgb, linear, gamma:G


@dataclass
class MergeResult:
    radiance: np.ndarray  # (H, W, 3) float32 linear radiance
    reference: np.ndarray  # (H, W, 3) float32 LDR reference frame as read
    uncertainty: np.ndarray | None  # (H, W, 3) float32 std over the ensemble, mu-law units
    seconds: float
    label: str
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # information, not a problem (the frames were sorted)
    fallback: bool = False  # a frame was not used or the response fell back
    # What the .exr carries, as the CLI writes it (methods.MergeResult.metadata): method, reference frame, camera.
    metadata: dict = field(default_factory=dict)

    @property
    def camera(self) -> dict:
        """The camera model applied (``CameraModel.to_dict()``)."""
        return self.metadata.get("camera", {})

    @property
    def camera_text(self) -> str:
        """The response used, how it was chosen and the exposures merged (:func:`~diffhdr_diffusers.camera.describe_camera`)."""
        from ..camera import describe_camera

        return describe_camera(self.camera, self.metadata.get("reference_index"))


_PIPELINES: dict[str, object] = {}
_PIPELINE_LOCK = threading.Lock()


def load_pipeline(model: str | None):
    """A cached :class:`~diffhdr_diffusers.DiffHDRPipeline` (``None``: the bundled model) on the best device."""
    from ..methods import load_pipeline as load

    key = model or ""
    with _PIPELINE_LOCK:
        if key not in _PIPELINES:
            _PIPELINES[key] = load(model or None)  # its progress bar reads "Sampling", as the CLI's
        return _PIPELINES[key]


def merge(bracket, settings: MergeSettings, progress: Callable[[float, str], None] = lambda fraction, text: None) -> MergeResult:
    """Merge a loaded bracket with the chosen method (:mod:`diffhdr_diffusers.methods`, as the CLI does); raises
    ``DiffHDRError`` for unusable settings."""
    from ..methods import load_method
    from ..methods.frames import frame_names

    if settings.method not in METHODS:
        raise InputError(f"method {settings.method!r}: choose one of {', '.join(METHODS)}.")
    if not 1 <= int(settings.ensemble) <= MAX_ENSEMBLE:
        raise InputError(f"ensemble {settings.ensemble}: choose 1 to {MAX_ENSEMBLE} samples.")
    warnings: list[str] = []
    if settings.method == METHOD_FLOW:
        progress(0.0, "Aligning and merging")
        method = load_method("flow-merge", response=settings.response)
        label = "flow-merge"
        if settings.ensemble > 1:
            warnings.append("flow-merge is deterministic: the ensemble (uncertainty) applies to the model only.")
    else:
        model = None
        if settings.method == METHOD_CUSTOM:
            model = (settings.model or "").strip()
            if not model:
                raise InputError("model: type a model folder or a Hub repo id (user/name), or pick the bundled model.")
        progress(0.0, "Loading the model")
        method = load_method(load_pipeline(model), response=settings.response, fast=settings.fast,
                             seed=settings.seed, ensemble=settings.ensemble)
        label = f"DiffHDR ({model or 'bundled model'}{', fast' if settings.fast else ''}, seed {settings.seed}"
        label += f", ensemble of {settings.ensemble})" if settings.ensemble > 1 else ")"
        progress(0.0, f"Sampling {settings.ensemble} sample{'s' if settings.ensemble > 1 else ''}")
    result = method.merge_bracket(bracket)
    warnings += result.warnings(frame_names(bracket))
    return MergeResult(radiance=result.radiance, reference=bracket.images[result.reference_index],
                       uncertainty=result.uncertainty, seconds=result.seconds, label=label, warnings=warnings,
                       notes=result.notes, fallback=result.fallback, metadata=result.metadata())


def write_downloads(radiance: np.ndarray, folder: Path, stem: str, metadata: dict | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.hdr`` and ``<stem>.exr`` (with ``metadata``, e.g. the camera) into a fresh ``folder``."""
    from ..io import write_radiance

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "merged"
    return (write_radiance(folder / f"{stem}.hdr", radiance, overwrite=True),
            write_radiance(folder / f"{stem}.exr", radiance, overwrite=True, metadata=metadata))


class SessionFolders:
    """One temporary folder per browser session, under a root that is removed at exit."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="diffhdr-app-"))
        atexit.register(self.close)

    def folder(self, session: str | None) -> Path:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", session or "anonymous") or "anonymous"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def remove(self, session: str | None) -> None:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", session or "anonymous") or "anonymous"
        shutil.rmtree(self.root / name, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
