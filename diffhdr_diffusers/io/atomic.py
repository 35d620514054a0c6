"""Atomic outputs: write to a temporary sibling, then rename over the target. The library's one implementation.

A reader never sees a half-written output, and an error or Ctrl-C while writing leaves the target
untouched (absent, or its previous content when overwriting). Files: :func:`atomic_path` (any
writer) and :func:`write_text_atomically` / :func:`write_json_atomically`. Folders:
:func:`atomic_folder` (build a folder, then swap it in) and :func:`replace_folder` (swap in a folder
staged elsewhere, e.g. under a name every process of a run agrees on).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ALLOW_OVERWRITE, OutputError


def _missing_folder(folder: Path, fix: str) -> str:
    """Why ``folder`` (not a folder) cannot hold an output, and ``fix``; where a file stands in its path, that
    file, and another path as the fix."""
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                return f"output folder {folder} cannot be made: {part} is a file; choose another path."
            break
    return f"output folder {folder} does not exist; {fix}."


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a ``Path`` after checking that it can be written.

    Raises :class:`OutputError` when the folder is missing or not writable, when ``path`` is a folder,
    or when it exists and ``overwrite`` is false.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: {_missing_folder(folder, 'create it first or choose another path')}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output folder {folder} is not writable; choose a folder you can write to.")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for the output.")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; {ALLOW_OVERWRITE}.")
    _probe_folder(path, folder)
    return path


def _probe_folder(path: Path, folder: Path) -> None:
    """Create and remove a hidden file in ``folder``: ``os.access`` says yes to root on read-only mounts and /proc."""
    try:
        descriptor, probe = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".probe", dir=folder)
    except OSError as error:
        raise OutputError(f"{path}: output folder {folder} is not writable ({error.strerror or error}); "
                          "choose a folder you can write to.") from None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _move_into_place(temporary: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temporary, path)
        return
    try:
        # A hard link fails if ``path`` appeared meanwhile, so nothing is clobbered by a race.
        os.link(temporary, path)
    except FileExistsError:
        raise OutputError(f"{path}: already exists; {ALLOW_OVERWRITE}.") from None
    except OSError:
        # File systems without hard links: check, then rename.
        if path.exists():
            raise OutputError(f"{path}: already exists; {ALLOW_OVERWRITE}.") from None
        os.replace(temporary, path)
        return
    os.unlink(temporary)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` when the block succeeds.

    The temporary name keeps the suffix of ``path`` (writers such as OpenCV pick the format from it).
    On any exception, ``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is
    left as it was. ``OSError`` raised while writing becomes :class:`OutputError`.

    Example::

        with atomic_path("out.hdr") as temporary:
            cv2.imwrite(str(temporary), bgr)
    """
    path = check_output_path(path, overwrite)
    temporary = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")
    try:
        try:
            yield temporary
            if not temporary.is_file():
                raise OutputError(f"{path}: the writer produced no file; nothing was written.")
            _move_into_place(temporary, path, overwrite)
        except OutputError:
            raise
        except OSError as error:
            raise OutputError(f"{path}: could not be written ({error.strerror or error}); check the folder and free space.") from error
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_text_atomically(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; by default replacing what is there."""
    with atomic_path(path, overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomically(path: str | os.PathLike, payload, overwrite: bool = True) -> Path:
    """Write ``payload`` as indented, key-sorted JSON to ``path`` atomically."""
    return write_text_atomically(path, json.dumps(payload, indent=1, sort_keys=True) + "\n", overwrite)


def replace_folder(staging: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rename the complete folder ``staging`` to ``target``; an existing ``target`` is replaced only then.

    The old ``target`` is first renamed to a hidden sibling and removed after the swap, so at every
    moment ``target`` is either the old or the new complete folder (one moment of absence between
    the two renames).
    """
    staging, target = Path(staging), Path(target)
    if target.is_dir() and not target.is_symlink():
        retired = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty hidden folder next to ``path``; when the block succeeds it becomes ``path``.

    The staging folder gets the permissions of a plain ``mkdir``. On any exception the staging folder
    is removed and ``path`` is left as it was. Raises :class:`OutputError` when the parent folder is
    missing, or when ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: {_missing_folder(path.parent, 'create it first')}")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; {ALLOW_OVERWRITE}, or choose another output folder.")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; choose a folder path.")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    except OSError as error:
        raise OutputError(f"{path}: output folder {path.parent} is not writable ({error.strerror or error}).") from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes 0700
    try:
        yield staging
        replace_folder(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
