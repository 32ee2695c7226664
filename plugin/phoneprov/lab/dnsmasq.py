"""The real dnsmasq in a lab namespace: started in the foreground, ready when it says so.

DESIGN §3: dnsmasq drops to `nobody`, so its work directory is 0755 and files it reads later
are 0644 (`write_file` does that, atomically, with a dot-name temp file). Never SIGHUP it:
2.90 crashes on reload once a `set:` host line from a hostsdir has matched; restart instead.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phoneprov.core.errors import InputError, PhoneprovError

from .netns import netns_argv, stop_process

BINARY = "dnsmasq"
DEFAULT_RANGE = "10.231.0.100,10.231.0.199,255.255.255.0,1h"
READY = re.compile(r"^dnsmasq\[\d+\]: started, version ")
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


class DnsmasqError(PhoneprovError):
    """dnsmasq did not start, died, or did not log what we waited for."""


class Dnsmasq:
    """One dnsmasq process: `with Dnsmasq(ns, "eth0", extra_args=[...]) as dm: dm.pid`.

    `extra_args` are appended to the fixed test command line (DESIGN §3), so they can add
    `--conf-file=…`, `--dhcp-hostsdir=…`, `--dhcp-optsdir=…`, `--dhcp-script=…`.
    """

    def __init__(
        self,
        netns: str | None,
        iface: str = "eth0",
        *,
        dhcp_range: str = DEFAULT_RANGE,
        extra_args: Sequence[str] = (),
        workdir: str | Path | None = None,
        binary: str = BINARY,
    ) -> None:
        self.netns = netns
        self.iface = iface
        self.dhcp_range = dhcp_range
        self.extra_args = list(extra_args)
        self.binary = binary
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="phoneprov-dm-"))
        self.workdir.chmod(0o755)  # nobody must be able to reach files we add later
        self.leasefile = self.workdir / "dnsmasq.leases"
        self.pidfile = self.workdir / "dnsmasq.pid"
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False

    @property
    def argv(self) -> list[str]:
        return [
            self.binary,
            "-k",
            "--conf-file=/dev/null",
            "--port=0",
            f"--interface={self.iface}",
            "--bind-interfaces",
            f"--dhcp-range={self.dhcp_range}",
            f"--dhcp-leasefile={self.leasefile}",
            f"--pid-file={self.pidfile}",
            "--log-facility=-",
            "--log-dhcp",
            "--no-ping",
            "--dhcp-authoritative",
            *self.extra_args,
        ]

    # lifecycle

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT) -> Dnsmasq:
        """Start and wait for the `started, version` line (its sockets are bound by then)."""
        if self._proc is not None:
            raise DnsmasqError("dnsmasq already started")
        argv = netns_argv(self.netns, self.argv) if self.netns else self.argv
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        self._reader = threading.Thread(target=self._read, name=f"dnsmasq-{self._proc.pid}")
        self._reader.start()
        try:
            self.wait_for_line(READY, timeout)
        except DnsmasqError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID (never SIGHUP), reap, join the log reader; remove our own workdir."""
        code = None
        if self._proc is not None:
            code = stop_process(self._proc, timeout)
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code

    def restart(self, timeout: float = START_TIMEOUT) -> Dnsmasq:
        """The safe way to reload (DESIGN §3): stop, start again; the lease file is kept."""
        if self._proc is not None:
            stop_process(self._proc)
        if self._reader is not None:
            self._reader.join(timeout)
        self._proc, self._reader, self._eof = None, None, False
        with self._changed:
            self._lines.clear()
        return self.start(timeout)

    # state

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise DnsmasqError("dnsmasq not started")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def pidfile_pid(self) -> int | None:
        """The PID dnsmasq wrote to its pid file (equals `.pid`: `ip netns exec` execs)."""
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def lines(self) -> list[str]:
        """A copy of every log line so far (stdout and stderr, newline stripped)."""
        with self._changed:
            return list(self._lines)

    def leases(self) -> list[list[str]]:
        """The lease file as rows: expiry, MAC, IP, hostname, client-id."""
        try:
            text = self.leasefile.read_text()
        except FileNotFoundError:
            return []
        return [line.split() for line in text.splitlines() if line.strip()]

    def wait_for_line(self, pattern: str | re.Pattern[str], timeout: float = 5.0) -> str:
        """The first log line (so far or to come) that matches `pattern` (re.search)."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "exited" if self._eof else f"did not log it within {timeout} s"
                    tail = "\n".join(self._lines[-15:])
                    raise DnsmasqError(f"dnsmasq {why} (waiting for {rx.pattern!r}):\n{tail}")
                self._changed.wait(left)

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    # files dnsmasq reads later (hostsdir / optsdir)

    def write_file(self, relpath: str | Path, text: str, mode: int = 0o644) -> Path:
        """Write `workdir/relpath` atomically, readable by `nobody` (dirs 0755).

        The temp file's name starts with '.', which dnsmasq's inotify ignores.
        """
        path = self.workdir / relpath
        if not path.resolve().is_relative_to(self.workdir.resolve()):
            raise InputError(f"not inside the dnsmasq work directory: {relpath}")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in [path.parent, *path.parent.parents]:
            if parent == self.workdir:
                break
            parent.chmod(0o755)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def start_dnsmasq(netns: str | None, iface: str = "eth0", **kwargs: Any) -> Dnsmasq:
    """`Dnsmasq(...).start()` in one call."""
    return Dnsmasq(netns, iface, **kwargs).start()
