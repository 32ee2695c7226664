"""Durability helpers: a file tree on disk before the rename that makes it live.

`syncfs_fd` flushes one filesystem (not `sync`: every one); `flush_tree` flushes the
filesystem a freshly written tree is on, so after a power cut a rename that made it live
never points at empty or partial files; `fsync_dir` makes such a rename itself durable.
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
