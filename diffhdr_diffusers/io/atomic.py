"""Atomic output files: write to a temporary sibling, then rename over the target.

A reader never sees a half-written output, and an error or Ctrl-C while writing leaves the target
untouched (absent, or its previous content when overwriting).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError


def check_output_path(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a ``Path`` after checking that it can be written.

    Raises :class:`OutputError` when the folder is missing or not writable, when ``path`` is a folder,
    or when it exists and ``overwrite`` is false.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{path}: output folder {folder} does not exist; create it first or choose another path.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output folder {folder} is not writable; choose a folder you can write to.")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for the output.")
    if path.exists() and not overwrite:
        raise OutputError(f"{path}: already exists; pass overwrite=True (--overwrite) to replace it.")
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
        raise OutputError(f"{path}: already exists; pass overwrite=True (--overwrite) to replace it.") from None
    except OSError:
        # File systems without hard links: check, then rename.
        if path.exists():
            raise OutputError(f"{path}: already exists; pass overwrite=True (--overwrite) to replace it.") from None
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
