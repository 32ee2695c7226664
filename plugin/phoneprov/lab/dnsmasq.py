"""The real dnsmasq in a lab namespace: started in the foreground, ready when it says so.

DESIGN §3: dnsmasq drops to `nobody`, so its work directory is 0755 and files it reads later
are 0644 (`write_file` does that, atomically, with a dot-name temp file). Never SIGHUP it:
2.90 crashes on reload once a `set:` host line from a hostsdir has matched; restart instead.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from phoneprov.core.errors import InputError

from ..phone.process import LineProcess, ProcessError

BINARY = "dnsmasq"
DEFAULT_RANGE = "10.231.0.100,10.231.0.199,255.255.255.0,1h"
READY = re.compile(r"^dnsmasq\[\d+\]: started, version ")
START_TIMEOUT = 5.0
STOP_TIMEOUT = 5.0


class DnsmasqError(ProcessError):
    """dnsmasq did not start, died, or did not log what we waited for."""


class Dnsmasq(LineProcess):
    """One dnsmasq process: `with Dnsmasq(ns, "eth0", extra_args=[...]) as dm: dm.pid`.

    `extra_args` are appended to the fixed test command line (DESIGN §3), so they can add
    `--conf-file=…`, `--dhcp-hostsdir=…`, `--dhcp-optsdir=…`, `--dhcp-script=…`. `lines`,
    `wait_for_line(pattern, timeout)`, `pid` and `alive()` are the runner's (its log).
    """

    name = "dnsmasq"
    error = DnsmasqError

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
        super().__init__(netns)
        self.iface = iface
        self.dhcp_range = dhcp_range
        self.extra_args = list(extra_args)
        self.binary = binary
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="phoneprov-dm-"))
        self.workdir.chmod(0o755)  # nobody must be able to reach files we add later
        self.leasefile = self.workdir / "dnsmasq.leases"
        self.pidfile = self.workdir / "dnsmasq.pid"

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
        self.spawn(self.argv)
        try:
            self.wait_for_line(READY, timeout)
        except DnsmasqError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID (never SIGHUP), reap, join the log reader; remove our own workdir."""
        code = self.halt(timeout)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return code

    def restart(self, timeout: float = START_TIMEOUT) -> Dnsmasq:
        """The safe way to reload (DESIGN §3): stop, start again; the lease file is kept."""
        self.halt(STOP_TIMEOUT, join=timeout)
        self.forget()
        return self.start(timeout)

    # state

    def pidfile_pid(self) -> int | None:
        """The PID dnsmasq wrote to its pid file (equals `.pid`: `ip netns exec` execs)."""
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def leases(self) -> list[list[str]]:
        """The lease file as rows: expiry, MAC, IP, hostname, client-id."""
        try:
            text = self.leasefile.read_text()
        except FileNotFoundError:
            return []
        return [line.split() for line in text.splitlines() if line.strip()]

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
