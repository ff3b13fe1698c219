"""Crash-safe file primitives shared by the model store and the update publisher.

A write goes to a temp file in the same folder, is fsynced, renamed over the target with
``os.replace`` (atomic on POSIX) and the folder is fsynced, so a crash or a power cut leaves
either the old or the new content, never a mix. A lock file held with ``flock``
(``msvcrt.locking`` on Windows) serializes writers; the kernel drops the lock when its process
dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TEMP_PREFIX", "atomic_write", "fsync_dir", "fsync_tree", "locked", "remove_tree"]

TEMP_PREFIX = ".tmp-"  # every temp name starts with this, so leftovers can be found


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (a rename or a new file inside it) to disk."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows: folders cannot be opened or fsynced
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: str | os.PathLike[str]) -> None:
    """fsync every file and folder under ``path`` (before renaming it into place)."""
    for folder, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(Path(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(folder)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(mode)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove a file or folder if it exists (never follows a symlink to a folder)."""
    p = Path(path)
    if p.is_symlink() or p.is_file():
        p.unlink(missing_ok=True)
    elif p.is_dir():
        shutil.rmtree(p)


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike[str], *, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``lock_file`` for the block.

    Yields:
        True when the lock is held; False only with ``blocking=False`` when another process
        holds it.
    """
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _lock(fd, blocking=blocking):
            yield False
            return
        try:
            yield True
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - msvcrt byte-range lock on Windows
    import msvcrt

    def _lock(fd: int, *, blocking: bool) -> bool:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.05)

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int, *, blocking: bool) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
