"""Batch merging of a whole shoot: one output set per scene folder, resumable, sharded across processes.

``diffhdr merge SHOOT_DIR --out DIR`` (see :mod:`diffhdr_diffusers.commands.merge`) merges every scene
folder that :func:`~diffhdr_diffusers.evaluation.discover_scenes` finds under ``SHOOT_DIR``. Layout of
``DIR``::

    <scene>.hdr                linear radiance (and/or <scene>.exr, see ``formats``)
    <scene>.png                tonemapped 8-bit preview
    done/<scene>.json          the scene's done marker, written last (settings, the camera response used,
                               frames not used, output sizes)
    shards/rank-<N>.json       per-process summary of the last run
    summary.json               the whole run's summary (done, skipped, failed with reasons; each scene's warnings)

The flat layout is what ``diffhdr evaluate --predictions DIR`` reads.

Resuming: a scene is finished when its done marker exists, records the same merge settings and the same
files (names, sizes and a digest of their ends: :func:`frames_fingerprint`, so a card read from another mount
point still resumes), and every output it lists exists with the recorded size. A marker of other settings or
other files (another bracket of the same name) fails that scene instead of replacing its outputs, unless
overwriting is allowed. Finished scenes are skipped; the others are merged again from scratch (their leftover outputs and temporary files are replaced). Every file is
written atomically (temporary sibling, then rename) and the marker comes last, so a run killed at
any moment (even SIGKILL) and started again loses nothing and redoes only the unfinished scenes.

Fallbacks: a scene merged with a fallback (a frame not used, or a default response where the estimate failed)
is finished but not "done": it gets the status ``fallback`` and its own count, with the warnings as its reason. Its
marker records the fallback, so a later run that skips it still counts and lists it.

Failures: a scene that cannot be read or merged (a :class:`~diffhdr_diffusers.errors.DiffHDRError`,
an ``OSError`` or a ``ValueError``) fails alone; its one-line reason goes into the summary, and the
run goes on. Out-of-memory and other unexpected errors stop the run.

Sharding (:mod:`diffhdr_diffusers.sharding`): under ``accelerate launch`` each process merges its share from
``split_between_processes`` and rank 0 gathers the outcomes with ``gather_object``; without a launcher
(``RANK``/``WORLD_SIZE`` only) process ``rank`` merges ``scenes[rank::world_size]`` and rank 0 reads the
others' shard files. Rank 0 prints the overall progress bar and the summary of all ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ALLOW_OVERWRITE, DiffHDRError, InputError, OutputError

MARKER_DIR = "done"
FORMATS = ("hdr", "exr")
MARKER_VERSION = 2
# Settings of a merge that do not change its result (and so do not make a finished scene stale).
NEUTRAL_SETTINGS = ("inputs", "output", "out", "preview", "overwrite", "device", "func", "command",
                    "trust_remote_code", "format", "shard_timeout")
# Temporary names of io.atomic_path (".<stem>.<8 hex>.partial<suffix>") and of its folder probe (".<stem>.<random>.probe").
_PARTIAL = re.compile(r"^\.(?P<stem>.+)\.(?:[0-9a-f]{8}\.partial(?:\.[^.]*)?|[A-Za-z0-9_]+\.probe)$")


@dataclass
class SceneOutcome:
    """What happened to one scene: ``status`` is ``"done"``, ``"fallback"`` (merged, with the warnings as
    ``reason``), ``"skipped"`` or ``"failed"``; ``warnings``: every warning of its merge (a skipped scene's
    from its done marker), so that ``summary.json`` keeps them across runs, as it keeps ``fallback``."""

    scene: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    fallback: bool = False  # merged with a fallback (in this run, or in the run whose outputs a skip keeps)


@dataclass
class BatchSummary:
    """The outcome of a batch run (of every rank on rank 0, of this rank elsewhere)."""

    outcomes: list[SceneOutcome] = field(default_factory=list)
    processes: int = 1
    not_merged: list[tuple[str, str]] = field(default_factory=list)  # a card's frames in no bracket: (file, reason)

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def failed(self) -> list[SceneOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    def text(self) -> str:
        """The human summary: counts, then one line per scene merged with a fallback or failed, with its reason."""
        merged = [outcome for outcome in self.outcomes if outcome.status in ("done", "fallback")]
        seconds = sum(outcome.seconds for outcome in merged)
        skipped = self.count("skipped")
        earlier = [outcome for outcome in self.outcomes if outcome.status == "skipped" and outcome.fallback]
        lines = [f"{len(self.outcomes)} scene{'s' * (len(self.outcomes) != 1)}: {self.count('done')} done, {self.count('fallback')} merged with a "
                 f"fallback, {skipped} skipped (already finished"
                 + (f"; {len(earlier)} of them with a fallback" if earlier else "") + f"), {len(self.failed)} failed"
                 + (f"; {seconds / len(merged):.2f} s per merged scene" if merged else "")]
        for outcome in self.outcomes:
            if outcome.status in ("fallback", "failed"):
                lines.append(f"  {outcome.status} {outcome.scene}: {outcome.reason}")
            elif outcome in earlier:
                lines.append(f"  skipped (merged with a fallback before) {outcome.scene}: {' '.join(outcome.warnings)}")
        if self.not_merged:
            lines.append(f"{len(self.not_merged)} frame{'s' * (len(self.not_merged) != 1)} in no bracket, not merged:")
            lines += [f"  {name}: {reason}" for name, reason in self.not_merged]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"processes": self.processes, "done": self.count("done"), "fallback": self.count("fallback"),
                "skipped": self.count("skipped"), "failed": len(self.failed),
                "scenes": [{"scene": o.scene, "status": o.status, "reason": o.reason, "seconds": round(o.seconds, 3),
                            "warnings": o.warnings, "fallback": o.fallback} for o in self.outcomes],
                "not_merged": [{"file": name, "reason": reason} for name, reason in self.not_merged]}


def settings_fingerprint(settings: dict) -> dict:
    """The settings that decide a merge's result, JSON-clean (argparse namespaces give every option)."""
    clean = {}
    for key, value in sorted(settings.items()):
        if key in NEUTRAL_SETTINGS or callable(value):
            continue
        clean[key] = json.loads(json.dumps(value, default=str))
    return clean


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_marker(out_dir: Path, scene: str) -> dict:
    """A scene's done marker, or ``{}`` when it has none or it cannot be read."""
    try:
        marker = json.loads(marker_path(out_dir, scene).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _skipped(out_dir: Path, scene: str) -> SceneOutcome:
    """A finished scene's outcome in this run: skipped, with the warnings and fallback its marker recorded."""
    marker = _read_marker(out_dir, scene)
    warnings = marker.get("warnings", [])
    warnings = list(warnings) if isinstance(warnings, list) else []
    return SceneOutcome(scene, "skipped", warnings=warnings,
                        fallback=bool(marker.get("fallback", bool(marker.get("rejected")))))


def _sampled_digest(path: Path, block: int = 1 << 16) -> str:
    """sha256 of a file's first and last 64 KiB: tells frames of one size apart (uncompressed TIFFs of one camera
    all have it) without reading whole RAW files on every resume."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(block))
        handle.seek(max(path.stat().st_size - block, 0))
        digest.update(handle.read(block))
    return digest.hexdigest()[:16]


def frames_fingerprint(inputs: Sequence[Path]) -> list[list]:
    """What a scene's outputs were merged from, as ``[name, bytes, sampled digest]`` in name order: its frame
    files, and for a scene folder the frames and exposure files in it. Not their paths, so that the same card
    read from another mount point still matches."""
    from .io.formats import FRAME_SUFFIXES
    from .io.scene import is_exposure_file

    files = []
    for path in inputs:
        if path.is_dir():
            files += [entry for entry in path.iterdir() if entry.is_file() and not entry.name.startswith(".")
                      and (entry.suffix.lower() in FRAME_SUFFIXES or is_exposure_file(entry))]
        elif path.is_file():
            files.append(path)
    return sorted([path.name, path.stat().st_size, _sampled_digest(path)] for path in files)


def other_frames(marker: dict, scene: Scene) -> str:
    """What differs when a scene's done ``marker`` says its outputs were merged from other files than this scene's
    (another bracket of the same name: ``"1.png, 2.png, 3.png"``; files changed since: ``"exposure.txt changed"``);
    ``""`` when they are the same, or when the marker does not say (markers written before it did)."""
    recorded = marker.get("frames")
    if not isinstance(recorded, list):
        return ""
    now = frames_fingerprint(scene.inputs)
    if recorded == now:
        return ""
    before = [entry for entry in recorded if isinstance(entry, list) and entry]
    if [str(entry[0]) for entry in before] == [entry[0] for entry in now]:
        return ", ".join(entry[0] for entry, old in zip(now, before) if entry != old) + " changed"
    return ", ".join(str(entry[0]) for entry in before)


def marker_path(out_dir: Path, scene: str) -> Path:
    return out_dir / MARKER_DIR / f"{scene}.json"


def output_names(scene: str, formats: Sequence[str]) -> list[str]:
    """The files a scene's merge writes into ``out_dir``, the preview last."""
    return [f"{scene}.{suffix}" for suffix in formats] + [f"{scene}.png"]


def is_finished(out_dir: Path, scene: Scene, settings: dict, formats: Sequence[str]) -> bool:
    """Whether ``scene`` has a valid done marker for these settings and its frames, with every output in place."""
    marker = _read_marker(out_dir, scene.name)
    if marker.get("version") != MARKER_VERSION or marker.get("settings") != settings or other_frames(marker, scene):
        return False
    outputs = marker.get("outputs")
    if not isinstance(outputs, dict) or set(outputs) != set(output_names(scene.name, formats)):
        return False
    for name, record in outputs.items():
        try:
            if (out_dir / name).stat().st_size != record["bytes"]:
                return False
        except (OSError, KeyError, TypeError):
            return False
    return True


def stale_marker(out_dir: Path, scene: str, settings: dict) -> str:
    """The settings that differ (``"method flow-merge, now naive-merge"``) when ``scene`` has a done marker
    written with other merge settings; ``""`` when it has none or the same."""
    marker = _read_marker(out_dir, scene)
    if not isinstance(marker.get("settings"), dict):
        return ""
    return "; ".join(_differences(marker["settings"], json.loads(json.dumps(settings))))


def _differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    """``"key old, now new"`` for each setting that differs; nested settings by their dotted key
    (``"tonemap.detail 1.0, now 0.5"``)."""
    unset = object()
    shown = lambda value: "unset" if value is unset else repr(value)  # noqa: E731
    lines = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key, unset), now.get(key, unset)
        if isinstance(old, dict) and isinstance(new, dict):
            lines += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            lines.append(f"{prefix}{key} {shown(old)}, now {shown(new)}")
    return lines


def remove_partials(folder: Path, stem: str) -> None:
    """Delete temporary files that an interrupted atomic write of ``<stem>.*`` left in ``folder``."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _PARTIAL.match(entry.name)
        if match and match.group("stem") == stem and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def _write_json(path: Path, document: dict) -> None:
    from .io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Scene:
    """One bracket of the batch: its output name and its inputs (one scene folder, or a card bracket's frames)."""

    name: str
    inputs: tuple[Path, ...]

    def resolve(self) -> set[Path]:
        return {path.resolve() for path in self.inputs}


def find_scenes(shoot_dir: Path, group_by: str = "auto", log: Callable[[str], None] | None = None,
                exclude: Path | None = None, leftovers: list[tuple[str, str]] | None = None) -> list[Scene]:
    """The batch's scenes: scene folders (``folder``), or a flat card folder's frames grouped into brackets by
    :func:`~diffhdr_diffusers.io.grouping.group_frames` (``time``, ``count:N``). ``auto`` groups when
    ``shoot_dir`` holds frames itself, no scene folders and no exposure file (a folder of frames with an exposure
    file is one scene). ``exclude`` (the output folder, when it lies inside the shoot) is no scene and no part of
    one. Frames that fit no bracket are logged with the reason (and appended to ``leftovers`` as ``(file name,
    reason)``); a card where no frames make a bracket is an :class:`InputError`."""
    from .evaluation import discover_scenes
    from .io.formats import FRAME_SUFFIXES
    from .io.grouping import group_frames
    from .io.scene import is_exposure_file

    frames = sorted(path for path in shoot_dir.iterdir() if path.is_file() and path.suffix.lower() in FRAME_SUFFIXES
                    and not path.name.startswith("."))
    excluded = exclude.resolve() if exclude is not None else None
    outside = lambda path: excluded is None or not path.resolve().is_relative_to(excluded)  # noqa: E731
    subfolders = [path for path in shoot_dir.iterdir() if path.is_dir() and not path.name.startswith(".")
                  and outside(path)]
    if group_by == "auto":
        one_scene = any(is_exposure_file(path) for path in shoot_dir.iterdir() if path.is_file())
        group_by = "time" if frames and not subfolders and not one_scene else "folder"
    if group_by == "folder":
        return [Scene(folder.name, (folder,)) for folder in discover_scenes(shoot_dir) if outside(folder)]
    if not frames:
        raise InputError(f"{shoot_dir}: holds no frames to group; give a folder of frames (a card), or group by folder.")
    grouping = group_frames(frames, by=group_by)
    for path, reason in grouping.leftovers:
        (log or (lambda message: print(message, file=sys.stderr)))(f"warning: {path.name} not merged: {reason}")
        if leftovers is not None:
            leftovers.append((path.name, reason))
    if not grouping.brackets:
        raise InputError(f"{shoot_dir}: none of its {len(frames)} frames make a bracket by {group_by} (reasons above); "
                         "give --group-by count:N (N frames per bracket), or merge one bracket with "
                         "`diffhdr merge FRAMES... -o OUT.hdr`.")
    # Named by the first and last file name, which a card's numbering keeps in order (capture order need not:
    # sub-second EXIF times can put a bracket's second file first).
    return [Scene(f"{min(path.stem for path in paths)}-{max(path.stem for path in paths)}", tuple(paths))
            for paths in grouping.brackets]


def merge_scene(scene: Scene, out_dir: Path, method: Callable, settings: dict, formats: Sequence[str],
                log: Callable[[str], None] | None = None, reference_index: int | None = None,
                look: dict | None = None) -> tuple[float, list[str], bool]:
    """Load, merge and write one scene (outputs, then the done marker); returns the merge's seconds, its warnings
    and whether it fell back (a frame not used, a response not estimable).

    ``method`` is a :class:`~diffhdr_diffusers.methods.Method`; ``look`` the preview's tone mapping
    (:func:`~diffhdr_diffusers.tonemapping.tonemap_settings`; default its defaults).
    """
    from .io import write_preview, write_radiance
    from .methods.frames import frame_names, read_bracket

    inputs, scene = list(scene.inputs), scene.name
    for folder in (out_dir, out_dir / MARKER_DIR):
        remove_partials(folder, scene)
    marker_path(out_dir, scene).unlink(missing_ok=True)  # a stale marker must not outlive new outputs
    bracket = read_bracket(inputs[0] if len(inputs) == 1 else inputs)
    result = method.merge_bracket(bracket, reference_index=reference_index)
    warnings = result.warnings(frame_names(bracket))
    if log:
        for note in result.notes:
            log(f"note: {scene}: {note}")
        for warning in warnings:
            log(f"warning: {scene}: {warning}")
    names = output_names(scene, formats)
    metadata = result.metadata()
    for name in names[:-1]:
        write_radiance(out_dir / name, result.radiance, overwrite=True, metadata=metadata)
    reference = bracket.paths[result.reference_index] if bracket.paths else None
    write_preview(out_dir / names[-1], result.radiance, overwrite=True, reference=reference, **(look or {}))
    outputs = {name: {"bytes": (out_dir / name).stat().st_size, "sha256": _sha256(out_dir / name)} for name in names}
    marker = {"version": MARKER_VERSION, "scene": scene, "source": [str(path) for path in inputs],
              "frames": frames_fingerprint(inputs), "fallback": bool(result.fallback), "settings": settings,
              "exposures": [float(ev) for ev in bracket.exposures],
              "size": [int(result.radiance.shape[1]), int(result.radiance.shape[0])],
              "camera": metadata["camera"], "rejected": metadata["rejected"], "warnings": warnings,
              "outputs": outputs}
    _write_json(marker_path(out_dir, scene), marker)
    return result.seconds, warnings, result.fallback


def _check_formats(formats: Sequence[str]) -> list[str]:
    formats = list(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if not formats or unknown:
        raise InputError(f"radiance formats {','.join(formats)}: choose hdr, exr or hdr,exr.")
    return formats


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="scene", desc="merging", disable=not enabled, dynamic_ncols=True,
                file=sys.stderr)


def run_batch(
    shoot_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    method: Callable,
    settings: dict,
    formats: Sequence[str] = ("hdr",),
    overwrite: bool = False,
    group=None,
    shard_timeout: float = 3600.0,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    reference_index: int | None = None,
    group_by: str = "auto",
    look: dict | None = None,
) -> BatchSummary:
    """Merge every scene under ``shoot_dir`` into ``out_dir`` (this process's share of them).

    Args:
        shoot_dir: a folder of scene folders (any layout :func:`~diffhdr_diffusers.evaluation.discover_scenes` reads).
        out_dir: output folder (created); see the module docstring for its layout.
        method: a :class:`~diffhdr_diffusers.methods.Method` (``load_method``).
        settings: what decides the merge's result (method, model, steps, response, ...); part of every done
            marker, so a scene finished with other settings is not taken as finished.
        formats: radiance formats to write, ``"hdr"`` and/or ``"exr"``.
        overwrite: merge every scene again, finished or not.
        group: a :class:`~diffhdr_diffusers.sharding.ProcessGroup` (default: from the environment).
        shard_timeout: seconds rank 0 waits for the other ranks' shard files (without a launcher).
        log: where warnings go (default: standard error).
        progress: show the progress bar (rank 0 only).
        reference_index: the reference frame of every bracket (default: its middle frame).
        group_by: ``folder`` (scene folders), ``time`` or ``count:N`` (a flat card folder's frames, grouped into
            brackets, see :func:`find_scenes`), or ``auto`` (grouped when ``shoot_dir`` holds frames itself).
        look: the previews' tone mapping (``operator``, ``exposure``, ``saturation``, ``detail``:
            :func:`~diffhdr_diffusers.tonemapping.tonemap_settings`); part of ``settings`` too, if it matters there.

    Returns:
        The :class:`BatchSummary`: of every rank on rank 0, of this rank's scenes elsewhere.
    """
    from .sharding import process_group

    log = log or (lambda message: print(message, file=sys.stderr))
    formats = _check_formats(formats)
    settings = settings_fingerprint(settings)
    group = group or process_group()
    shoot_dir, out_dir = Path(shoot_dir), Path(out_dir)
    if not shoot_dir.is_dir():
        raise InputError(f"{shoot_dir}: not a folder; give a folder of scene folders.")
    leftovers: list[tuple[str, str]] = []
    scenes = find_scenes(shoot_dir, group_by, log, exclude=out_dir, leftovers=leftovers)
    if out_dir.resolve() in set().union(*(scene.resolve() for scene in scenes)) or out_dir.resolve() == shoot_dir.resolve():
        raise OutputError(f"output folder {out_dir}: is an input folder; choose a separate output folder.")
    try:
        (out_dir / MARKER_DIR).mkdir(parents=True, exist_ok=True)
        (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"output folder {out_dir}: cannot create it ({error.strerror or error}); choose a writable folder.") from None
    remove_partials(out_dir / "shards", f"rank-{group.rank}")

    mine = group.split(scenes)
    finished = set() if overwrite else {scene.name for scene in mine if is_finished(out_dir, scene, settings, formats)}
    names = [scene.name for scene in scenes]
    show = progress and group.rank == 0
    overall = group.world_size > 1
    failures_here = 0

    def overall_count() -> int:
        # Rank 0 shows every rank's progress: the done markers present, plus its own failures.
        return sum(marker_path(out_dir, name).is_file() for name in names) + failures_here

    # The bar starts at the finished scenes, so its rate and ETA count only the work still to do.
    bar = _progress(len(scenes) if overall else len(mine), overall_count() if overall else len(finished), show)

    outcomes: list[SceneOutcome] = []
    try:
        for entry in mine:
            scene = entry.name
            if scene in finished:
                for folder in (out_dir, out_dir / MARKER_DIR):
                    remove_partials(folder, scene)
                outcomes.append(_skipped(out_dir, scene))
                continue
            bar.set_postfix_str(scene, refresh=False)
            start = time.perf_counter()
            changed = "" if overwrite else stale_marker(out_dir, scene, settings)
            others = "" if overwrite else other_frames(_read_marker(out_dir, scene), entry)
            if changed or others:
                what = f"merged with other settings ({changed})" if changed else f"merged from other files ({others})"
                outcomes.append(SceneOutcome(scene, "failed", f"{out_dir} holds its outputs {what}; {ALLOW_OVERWRITE}, "
                                             "or choose another output folder"))
                failures_here += 1
            else:
                try:
                    seconds, warnings, fallback = merge_scene(entry, out_dir, method, settings, formats, log,
                                                              reference_index, look)
                    outcomes.append(SceneOutcome(scene, "fallback" if fallback else "done",
                                                 " ".join(warnings) if fallback else "", seconds, warnings, fallback))
                except (DiffHDRError, OSError, ValueError) as error:
                    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                    outcomes.append(SceneOutcome(scene, "failed", reason, time.perf_counter() - start))
                    failures_here += 1
            bar.update(max(min(overall_count(), bar.total) - bar.n, 0) if overall else 1)
    finally:
        bar.close()

    local = BatchSummary(outcomes, processes=group.world_size, not_merged=leftovers)
    documents = group.gather({"rank": group.rank, "world_size": group.world_size, **local.to_json()},
                             out_dir / "shards", shard_timeout)
    if documents is None:
        return local
    order = {name: index for index, name in enumerate(names)}
    everything = [SceneOutcome(row["scene"], row["status"], row["reason"], row["seconds"], row.get("warnings", []),
                               row.get("fallback", False))
                  for document in documents for row in document["scenes"]]
    summary = BatchSummary(sorted(everything, key=lambda outcome: order.get(outcome.scene, len(order))),
                           processes=group.world_size, not_merged=leftovers)
    _write_json(out_dir / "summary.json", summary.to_json())
    return summary


__all__ = ["BatchSummary", "SceneOutcome", "is_finished", "merge_scene", "run_batch", "settings_fingerprint"]
