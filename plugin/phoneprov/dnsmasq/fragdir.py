"""One of dnsmasq's directories by file descriptor: the atomic writes, renames and removals
that `phoneprov apply` (apply.py) makes there, and the clean-up after applies that died."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from ..core.errors import ConfigError
from ..durable import syncfs_fd
from .applied import APPLIED_NAME
from .fields import FIELDS_NAME
from .manifest import MANIFEST_NAME, Entry, Section, digest, state_digest, trusted

MAC_NAME = frozenset("0123456789ABCDEF")
DIR_MODE, FILE_MODE = 0o755, 0o644  # dnsmasq reads both directories as `nobody`
SCRATCH = ("tmp", "gone")  # `.NAME.PID.tmp` is being written, `.NAME.PID.gone` being removed
SYNC_ALL_ABOVE = 64  # more changed files than this: one syncfs() instead of one fsync each


class Dir:
    """One directory by file descriptor: plain names, no path building per file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.chmod = _umask() & FILE_MODE != 0  # else open() already makes files 0644
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        st = os.fstat(self.fd)
        self.dev, self.ident = st.st_dev, f"{st.st_dev}:{st.st_ino}"
        self.known: Section = {}  # the manifest's entries for this directory
        self.stamp = 0  # the manifest's mtime (ns)
        self.seen: Section = {}  # entries for the next manifest: files as they now are
        self._pending: Section = {}  # entries of the temp files not renamed yet

    def __enter__(self) -> Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def scan(self) -> set[str]:
        """One listing: `sweep`, then the names apply manages (12 upper-case hex digits;
        the admin's own files stay alone)."""
        self.sweep()
        return managed_names(os.listdir(self.fd))

    def as_recorded(self, state: str | None, stamp: int) -> int | None:
        """How many files apply manages here when they are exactly as the manifest's
        `state` says (names, inodes, mtimes, sizes; no temp file left by an apply that died;
        none changed in the manifest's clock tick, see manifest.py), else None."""
        names = os.listdir(self.fd)
        if state is None or any(n[0] == "." and _scratch_pid(n) is not None for n in names):
            return None
        try:
            stats = [(n, os.stat(n, dir_fd=self.fd)) for n in sorted(managed_names(names))]
        except FileNotFoundError:  # removed since the listing
            return None
        if any(st.st_mtime_ns >= stamp for _n, st in stats):
            return None
        now = [(n, st.st_ino, st.st_mtime_ns, st.st_size) for n, st in stats]
        return len(now) if state_digest(now) == state else None

    def holds(self, name: str, text: str) -> bool:
        """Whether the file `name` says `text`: the manifest's digest when its entry still
        matches the file's inode, mtime and size, else the file read back."""
        known = self.known.get(name)
        try:
            if known is not None and trusted(known, os.stat(name, dir_fd=self.fd), self.stamp):
                self.seen[name] = known
                return known[0] == digest(text.encode("utf-8"))
            fd = os.open(name, os.O_RDONLY, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        try:
            st = os.fstat(fd)  # before the read: a write after it shows as another mtime
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
        self.seen[name] = (digest(data), st.st_ino, st.st_mtime_ns, st.st_size)
        return data == text.encode("utf-8")

    def read(self, name: str) -> str | None:
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        try:
            return os.read(fd, 65536).decode("utf-8", "replace")
        finally:
            os.close(fd)

    def mtime(self, name: str) -> float:
        return os.stat(name, dir_fd=self.fd).st_mtime

    def unlink(self, name: str) -> None:
        """Unlink a dot name (dnsmasq ignores those); `remove` for the names it reads."""
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def remove(self, name: str) -> None:
        """Rename to a dot name, then unlink: on a plain unlink dnsmasq's inotify tries to
        read the name and logs `cannot read ...: No such file or directory`."""
        gone = f".{name}.{os.getpid()}.gone"
        self.seen.pop(name, None)
        try:
            os.rename(name, gone, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except FileNotFoundError:
            return
        self.unlink(gone)

    def sweep(self) -> None:
        """Remove `.NAME.PID.tmp`/`.gone` files whose process no longer runs (an apply that
        was killed; call it holding the apply lock, so none of ours is in progress)."""
        for name in os.listdir(self.fd):
            pid = _scratch_pid(name)
            if pid is not None and (pid == os.getpid() or not _running(pid)):
                self.unlink(name)

    def discard(self, temps: list[tuple[str, str]]) -> None:
        for temp, _name in temps:
            self.unlink(temp)

    def write_many(self, writes: Mapping[str, str]) -> None:
        """Write each file atomically: a flushed dot-named temp file, then a rename."""
        temps = self.prepare(writes)
        if len(temps) > SYNC_ALL_ABOVE:
            try:
                self.syncfs()
            except BaseException:
                self.discard(temps)
                raise
        self.commit(temps)

    def prepare(self, writes: Mapping[str, str]) -> list[tuple[str, str]]:
        """Temp files for `writes` ((temp, name) pairs); fsynced each when they are few
        (with many, the caller flushes them all at once with `syncfs`)."""
        fsync_each = len(writes) <= SYNC_ALL_ABOVE
        temps: list[tuple[str, str]] = []
        try:
            for name, text in writes.items():
                temp, self._pending[name] = self.temp(name, text, fsync_each)
                temps.append((temp, name))
        except BaseException:
            self.discard(temps)
            raise
        return temps

    def syncfs(self) -> None:
        """Flush the filesystem this directory is on (only it: `sync` flushes them all)."""
        try:
            syncfs_fd(self.fd)
        except OSError as e:
            raise ConfigError(f"cannot flush: {e.strerror or e}", str(self.path)) from e

    def commit(self, temps: list[tuple[str, str]]) -> None:
        """Rename the prepared temp files into place, then flush the directory."""
        if not temps:
            return
        renamed = 0
        try:
            for temp, name in temps:
                os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
                renamed += 1
                if name in self._pending:
                    self.seen[name] = self._pending.pop(name)
        except OSError as e:
            raise ConfigError(f"cannot rename into place: {e.strerror or e}", self._at(name)) from e
        finally:
            self.discard(temps[renamed:])  # only after a failed rename
        self.fsync()

    def temp(self, name: str, text: str, fsync: bool) -> tuple[str, Entry]:
        """A dot-named temp file holding `text`, and its manifest entry."""
        temp = f".{name}.{os.getpid()}.tmp"  # dot: dnsmasq's inotify ignores it
        data = text.encode("utf-8")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE, dir_fd=self.fd)
            try:
                st = self._fill(fd, data, fsync)
            finally:
                os.close(fd)
        except OSError as e:
            self.unlink(temp)
            raise ConfigError(
                f"cannot write: {e.strerror or e} (the file is unchanged)", self._at(name)
            ) from e
        return temp, (digest(data), st.st_ino, st.st_mtime_ns, st.st_size)

    def create(self, name: str, text: str) -> bool:
        """Write `name`, which does not exist, in place: no temp file, no rename (nothing
        old to keep; dnsmasq reads a file once it is closed). Not flushed: the caller
        flushes the filesystem. False when the name exists by now (write it by `temp`)."""
        data = text.encode("utf-8")
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE, dir_fd=self.fd)
        except FileExistsError:
            return False
        except OSError as e:
            raise ConfigError(f"cannot create: {e.strerror or e}", self._at(name)) from e
        try:
            st = self._fill(fd, data, fsync=False)
        except OSError as e:
            os.ftruncate(fd, 0)  # dnsmasq reads it at close: empty, never half a line
            os.close(fd)
            self.remove(name)
            raise ConfigError(f"cannot write: {e.strerror or e}", self._at(name)) from e
        os.close(fd)
        self.seen[name] = (digest(data), st.st_ino, st.st_mtime_ns, st.st_size)
        return True

    def _fill(self, fd: int, data: bytes, fsync: bool) -> os.stat_result:
        """Make the new file `fd` 0644 and hold `data`; its stat (a rename keeps it)."""
        if self.chmod:
            os.fchmod(fd, FILE_MODE)  # dnsmasq reads as nobody, whatever the umask
        if os.write(fd, data) != len(data):  # a regular file: only when it is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if fsync:
            os.fsync(fd)
        return os.fstat(fd)

    def _at(self, name: str) -> str:
        return str(self.path / name)

    def fsync(self) -> None:
        os.fsync(self.fd)


def managed_names(names: list[str]) -> set[str]:
    """Names apply manages: 12 upper-case hex digits (the admin's own files stay alone)."""
    return {n for n in names if len(n) == 12 and MAC_NAME.issuperset(n)}


def _scratch_pid(name: str) -> int | None:
    """The PID in `.NAME.PID.tmp` / `.NAME.PID.gone` (NAME: a MAC or our settings file).

    >>> _scratch_pid(".00095200000E.4242.tmp"), _scratch_pid("..phoneprov-applied.7.tmp")
    (4242, 7)
    >>> _scratch_pid(".00095200000E.x.tmp"), _scratch_pid(".admin-notes.1.tmp")
    (None, None)
    """
    base, _dot, rest = name[1:].rpartition(".")
    base, _dot, pid = base.rpartition(".")
    named = base in (APPLIED_NAME, MANIFEST_NAME, FIELDS_NAME)
    ours = named or (len(base) == 12 and MAC_NAME.issuperset(base))
    if not name.startswith(".") or rest not in SCRATCH or not ours or not pid.isdigit():
        return None
    return int(pid)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask() sets it: a race with
    threads); all bits set when it cannot be read, so files are chmod-ed explicitly."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o777


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # runs, as another user
        return True
    return True
