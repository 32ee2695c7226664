"""Durability helpers: a file tree on disk before the rename that makes it live.

`syncfs_fd` flushes one filesystem (not `sync`: every one); `flush_tree` flushes the
filesystem a freshly written tree is on, so after a power cut a rename that made it live
never points at empty or partial files; `fsync_dir` makes such a rename itself durable;
`write_atomic` replaces one small file so that a power cut leaves the old or the new one.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


def syncfs_fd(fd: int) -> None:
    """syncfs(2) (Python 3.11's os has none); `os.sync()` where libc lacks it."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if function is None:
        os.sync()
        return
    if function(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def flush_tree(path: Path) -> None:
    """Flush the filesystem `path` (a directory) is on: every file written under it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs_fd(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int, flush: bool = True) -> None:
    """`data` as `path` (mode `mode`, whatever the umask), whole or not at all: written to
    `.NAME.PID.tmp` beside it (the name apply's sweep knows) and renamed over it; `flush`:
    the file and the rename on disk first (a power cut leaves the old or the new one)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)
            out.write(data)
            if flush:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if flush:
        fsync_dir(path.parent)
