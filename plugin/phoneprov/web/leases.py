"""Who holds the lease on a client's address, asked afresh for every request (lease mode).

Two witnesses, both written by dnsmasq's doing:
- the state database, where the dnsmasq hook records each lease event (`State.lease_by_ip`
  decides in SQL whether a lease is live: active, unexpired, not superseded);
- dnsmasq's own lease file (`dhcp.leasefile`), which dnsmasq rewrites at the DHCP ACK,
  before it runs the hook: a phone that asks a moment after its ACK is found there, so
  nothing ever waits for the hook.
When both name a holder for an address and they differ, the newer one decides: the mtime of
the file's reading that named it against the time the hook last recorded anything about
that address. dnsmasq rewrites the file in place (truncate, then 4 KiB writes): a reading
may catch it empty or cut short (a boot storm of 200 phones showed both, many times), so an
address a reading does not name keeps what an earlier reading said of it; a release or an
expiry ends it through the hook's record (newer) or the lease's expiry. A reading may also
come before dnsmasq wrote a new lease at all: when nobody holds the address and the file
changed within the last second, it is read again 50 ms later (once). The answer depends on
the client address only, never on the MAC asked for, so a refusal costs the same for every
MAC.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from ..core.mac import norm_mac

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..state.db import State

log = logging.getLogger("phoneprov.web")

MAX_LEASEFILE_BYTES = 16 * 1024 * 1024
READ_TRIES = 3  # dnsmasq rewrites the file in place: read again when it changed meanwhile
READER_BUSY_MS = 1000  # a request waits at most this long for a locked database
RECHECK_WITHIN_S = 1.0  # nobody holds the address and the file changed this recently: ...
RECHECK_AFTER_S = 0.05  # ... dnsmasq may be writing the lease: read again this much later


@dataclass(frozen=True)
class LeaseFile:
    """What dnsmasq's lease file said of each IPv4 address, by the latest reading that named
    it: address → (MAC, expiry; 0 = never, that reading's mtime)."""

    by_ip: Mapping[str, tuple[str, int, float]]

    def holder(self, ip: str, now: float) -> tuple[str, float] | None:
        """(MAC, when the file said so) of the live lease on `ip`, or None."""
        found = self.by_ip.get(ip)
        if found is None or 0 < found[1] <= now:
            return None
        return found[0], found[2]


def parse_leasefile(text: str) -> dict[str, tuple[str, int]]:
    """dnsmasq's lease lines `expiry mac ip hostname client-id`; IPv6 (`duid` and after) and
    anything malformed are skipped; the first line for an address counts.

    >>> parse_leasefile("1700000000 00:09:52:00:00:0e 10.0.0.5 d200 *\\nbad\\n")
    {'10.0.0.5': ('00095200000E', 1700000000)}
    """
    found: dict[str, tuple[str, int]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] == "duid":
            if fields[:1] == ["duid"]:
                break  # DHCPv6 leases follow
            continue
        try:
            expiry, mac = int(fields[0]), norm_mac(fields[1])
        except (ValueError, InputError):
            continue
        found.setdefault(fields[2], (mac, expiry))
    return found


class DnsmasqLeases:
    """dnsmasq's lease file, read again whenever it changed (one stat per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[tuple[int, int, int], LeaseFile] | None = None
        self._stat_mtime = 0.0  # the file's mtime at the last stat
        self._lock = threading.Lock()

    def current(self) -> LeaseFile | None:
        """The file as it is now, or None when it cannot be read."""
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        self._stat_mtime = stat.st_mtime
        read = self._read
        if read is not None and read[0] == key:
            return read[1]
        with self._lock:
            return self._reread()

    def written_within(self, seconds: float) -> bool:
        """Whether the file changed in the last `seconds` (by the stat of the last request)."""
        return self._stat_mtime > time.time() - seconds

    def _reread(self) -> LeaseFile | None:
        for _ in range(READ_TRIES):
            try:
                with open(self.path, "rb") as handle:
                    before = os.fstat(handle.fileno())
                    data = handle.read(MAX_LEASEFILE_BYTES)
                    after = os.fstat(handle.fileno())
            except OSError:
                return None
            key = (after.st_ino, after.st_mtime_ns, after.st_size)
            if (before.st_mtime_ns, before.st_size) == key[1:]:
                break
        read = parse_leasefile(data.decode("utf-8", "replace"))
        known = dict(self._read[1].by_ip) if self._read is not None else {}
        known.update((ip, (mac, expiry, after.st_mtime)) for ip, (mac, expiry) in read.items())
        leases = LeaseFile(MappingProxyType(known))
        self._read = (key, leases)
        return leases

    def describe_problem(self) -> str | None:
        """Why the file cannot be read, for the log at start; None when it can."""
        try:
            with open(self.path, "rb"):
                return None
        except OSError as e:
            return e.strerror or str(e)


class LeaseLookup:
    """The MAC whose live lease a client address holds, from the database and the file.

    Raises sqlite3.Error when the database cannot answer (the request gets 503)."""

    def __init__(self, state_path: Path, leasefile: Path | None = None) -> None:
        self.state_path = state_path
        self.leasefile = DnsmasqLeases(leasefile) if leasefile is not None else None
        self._local = threading.local()

    def holder(self, ip: str, now: float) -> str | None:
        try:
            state = self._state()
            found = self._holder(state, ip, now)
            if (
                found is None
                and self.leasefile is not None
                and self.leasefile.written_within(RECHECK_WITHIN_S)
            ):
                time.sleep(RECHECK_AFTER_S)
                found = self._holder(state, ip, now + RECHECK_AFTER_S)
            return found
        except sqlite3.Error:
            self._forget()  # the next request opens the database afresh (it may be fixed)
            raise

    def _holder(self, state: State, ip: str, now: float) -> str | None:
        lease = state.lease_by_ip(ip, now)
        recorded = lease.mac if lease is not None else None
        current = self.leasefile.current() if self.leasefile is not None else None
        if current is None:
            return recorded
        found = current.holder(ip, now)
        if found is None or found[0] == recorded:
            return recorded
        written, said_at = found
        seen = state.ip_last_seen(ip)
        return written if seen is None or said_at > seen else recorded

    def _forget(self) -> None:
        state: State | None = getattr(self._local, "state", None)
        self._local.state = None
        if state is not None:
            state.close()

    def _state(self) -> State:
        state: State | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _open(self.state_path)
        return state


def _open(path: Path) -> Any:
    from ..state.db import State

    state = State(path)
    state.db.execute(f"PRAGMA busy_timeout={READER_BUSY_MS}")
    return state
