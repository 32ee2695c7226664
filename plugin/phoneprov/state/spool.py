"""The hook's spool: lease events the state database could not take in time, kept in order.

`<state>.spool` beside the database, one JSON line per event (a list of `[kind, params]`
writes, as `state.hookdb` runs them). Writers append each line with one O_APPEND write (atomic
for a regular file) under a shared flock; whoever replays it holds the database's write lock,
takes the exclusive flock, replays every line and truncates the file only after the commit.
The file gets the state database's mode and owner, so whoever may read one may read both.
`<state>.spool.lock` is held by the one process that waits to replay it (the hook's drainer).

Standard library only, and not even `typing`: the hook imports this module.
"""

from __future__ import annotations

import errno
import fcntl
import os

TYPE_CHECKING = False  # not from typing: importing typing alone costs ~5 ms per event
if TYPE_CHECKING:
    from collections.abc import Sequence

SUFFIX = ".spool"
MAX_BYTES = 16 << 20  # about 50,000 events: beyond this the database is broken, not busy
DEFAULT_MODE = 0o644


class Spool:
    def __init__(self, database: str) -> None:
        self.database = database
        self.path = database + SUFFIX
        self.lock_path = self.path + ".lock"

    def pending(self) -> bool:
        """True when events wait in the spool (one stat; no lock)."""
        try:
            return os.stat(self.path).st_size > 0
        except OSError:
            return False

    def append(self, writes: Sequence[tuple[str, Sequence[object]]]) -> None:
        """Add one event (its writes) as one line; OSError (with the path) when it cannot."""
        import json

        line = (json.dumps(writes, separators=(",", ":")) + "\n").encode()
        fd = self._open_for_append()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # a replay holds LOCK_EX between read and truncate
            if os.fstat(fd).st_size + len(line) > MAX_BYTES:
                raise OSError(errno.EFBIG, "spool full", self.path)
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        finally:
            os.close(fd)

    def claim(self) -> Claim:
        """The waiting events, under the exclusive lock; emptied when the `with` block ends
        without an exception (call it while holding the database's write lock)."""
        return Claim(self.path)

    def try_drain_lock(self) -> int | None:
        """A file descriptor holding the drain lock, or None when another process holds it."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _open_for_append(self) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
        try:
            return os.open(self.path, flags)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another writer created it a moment ago
            return os.open(self.path, flags)
        try:
            st = os.stat(self.database)
            mode, owner = st.st_mode & 0o666, (st.st_uid, st.st_gid)
        except OSError:
            mode, owner = DEFAULT_MODE, None
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, *owner)
        os.fchmod(fd, mode)  # explicitly: the umask must not decide who may read it
        return fd


class Claim:
    """`with spool.claim() as events:` — the decoded lines (unreadable ones as None)."""

    def __init__(self, path: str) -> None:
        self.fd: int | None = None
        self.data = b""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        if os.fstat(fd).st_size == 0:  # nothing waits (a line appended now waits for the next)
            os.close(fd)
            return
        self.fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        except BaseException:
            self.__exit__(True)
            raise
        self.data = b"".join(chunks)

    def __enter__(self) -> list[object]:
        if not self.data:
            return []
        import json

        events: list[object] = []
        for line in self.data.splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:  # a line cut short (disk full): it cannot be replayed
                events.append(None)
        return events

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.fd is None:
            return
        try:
            if exc_type is None:
                os.ftruncate(self.fd, 0)
        finally:
            os.close(self.fd)
            self.fd = None
