"""Writes that are never seen half-done: write to a temporary name beside the target, then rename."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

# mkstemp creates files readable by the owner only; finished files get the usual umask permissions.
# Read once at import (os.umask can only be read by setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: Union[str, Path], suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path in the target's folder; renames it over ``target`` on success only.

    ``suffix`` keeps an extension on the temporary name for writers that infer the format from it.
    The temporary name starts with '.' and contains '.part', so it never looks like a finished file.
    """
    target = Path(target)
    tmp_path = temporary_path(target, suffix)
    try:
        yield tmp_path
        publish(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def temporary_path(target: Union[str, Path], suffix: str = "") -> Path:
    """An empty file with a unique temporary name beside ``target`` (see ``atomic_path``): for a
    write whose rename happens elsewhere (``ccv convert --ray`` writes on a worker, and the driver
    records and renames)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".part{suffix}", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp_path: Path, target: Union[str, Path]) -> None:
    """The finished temporary file takes the target's name, with the usual permissions."""
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    os.replace(tmp_path, target)


def atomic_write_bytes(target: Union[str, Path], data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_torch_save(obj: object, target: Union[str, Path]) -> None:
    import torch

    with atomic_path(target) as tmp:
        torch.save(obj, tmp)


def ensure_writable_folder(folder: Union[str, Path]) -> None:
    """Makes ``folder`` (with its parents) if it is missing; OSError when that fails (a file in the
    way, no permission, a read-only disk) or when files cannot be made in it. Callers check this
    before long work, and say in their own words what to choose instead."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "not writable", str(folder))
