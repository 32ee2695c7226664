"""A process in a network namespace whose output lines we collect and wait on.

The one runner behind the lab's dnsmasq and kamailio and the phone's baresip: stdout and
stderr on one pipe, a thread that reads it line by line, waits on a Condition (ready means
a line was printed, never a fixed sleep), stopped by its PID. `ip netns exec` execs, so the
PID is the program's own.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, ClassVar, TypeVar

from ..core.errors import PhoneprovError

T = TypeVar("T")
TAIL = 15  # output lines quoted when a wait fails


class ProcessError(PhoneprovError):
    """A process did not start, died, or did not print what we waited for."""


def in_netns(ns: str | None, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` in namespace `ns` (None or "": where we are)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


class LineProcess:
    """One process in `netns` (None: ours) whose output lines we keep and wait on.

    `spawn(argv)`, `wait_for_line(pattern, timeout)`, `lines`, `pid`, `alive()`,
    `halt(timeout)`. Subclasses name the program and their error class for messages.
    """

    name: ClassVar[str] = "process"
    error: ClassVar[type[ProcessError]] = ProcessError

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False

    def _unstarted(self) -> None:
        if self._proc is not None:
            raise self.error(f"{self.name} already started")

    def spawn(self, argv: Sequence[str], *, log: Path | None = None) -> None:
        """Start `argv` in the namespace and read its output (copied to `log` when given)."""
        self._unstarted()
        out = log.open("w", encoding="utf-8") if log is not None else None
        try:
            self._proc = subprocess.Popen(
                in_netns(self.netns, argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            if out is not None:
                out.close()
            raise self.error(f"cannot start {argv[0]}: {exc}") from exc
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stdout, out), name=f"{self.name}-{self._proc.pid}"
        )
        self._reader.start()

    def halt(self, *waits: float, join: float | None = None) -> int | None:
        """Stop it by its PID: SIGTERM, wait each of `waits` seconds in turn (SIGTERM again
        between them), then SIGKILL; reap it, join the reader (`join` s, default the first
        wait), close the pipe. The exit code; None if never started."""
        proc = self._proc
        if proc is None:
            return None
        for wait in waits:
            if proc.poll() is not None:
                break
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(waits[0] if join is None else join)
            self._reader = None
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def forget(self) -> None:
        """Drop the stopped process and its lines, so that `spawn` may start another."""
        self._proc, self._reader = None, None
        with self._changed:
            self._lines.clear()
            self._eof = False

    # state

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise self.error(f"{self.name} not started")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def lines(self) -> list[str]:
        """A copy of every output line so far (stdout and stderr, newline stripped)."""
        with self._changed:
            return list(self._lines)

    # waiting

    def wait_for(
        self, test: Callable[[list[str]], T | None], timeout: float, what: str
    ) -> T | None:
        """The first `test(lines)` that is not None, tried now and on each new line; None
        after `timeout` s; `error` if the output ends first (`what`: what we waited for).
        `test` runs under the lock and must not keep `lines`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = test(self._lines)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if self._eof:
                    raise self.error(f"{self.name} exited {what}:\n{self._tail()}")
                if left <= 0:
                    return None
                self._changed.wait(left)

    def wait_for_line(self, pattern: str | re.Pattern[str], timeout: float = 5.0) -> str:
        """The first output line (so far or to come) that matches `pattern` (re.search)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        seen = 0

        def match(lines: list[str]) -> str | None:
            nonlocal seen
            found = next((line for line in lines[seen:] if rx.search(line)), None)
            seen = len(lines)
            return found

        what = f"(waiting for {rx.pattern!r})"
        line = self.wait_for(match, timeout, what)
        if line is None:
            with self._changed:
                tail = self._tail()
            raise self.error(f"{self.name} did not log it within {timeout} s {what}:\n{tail}")
        return line

    def pause(self, seconds: float) -> None:
        """Wait up to `seconds`, less if it prints or exits meanwhile (a retry's pace)."""
        with self._changed:
            self._changed.wait(seconds)

    def _tail(self) -> str:
        return "\n".join(self._lines[-TAIL:])

    def _clean(self, line: str) -> str:
        """One output line as kept (a subclass may strip more)."""
        return line

    def _read(self, stdout: IO[str], log: IO[str] | None) -> None:
        try:
            with log if log is not None else contextlib.nullcontext():
                for raw in stdout:
                    if log is not None:
                        log.write(raw)
                        log.flush()
                    line = self._clean(raw.rstrip("\n"))
                    with self._changed:
                        self._lines.append(line)
                        self._changed.notify_all()
        finally:
            with self._changed:
                self._eof = True
                self._changed.notify_all()
