"""Who may fetch a device's files: the lease holder, the token bearer, or (open mode) anyone.

- `decide` is the policy, pure: facts in, verdict out.
- `LeaseLookup` asks the state database which IP holds a MAC's lease (one indexed lookup on
  a per-thread connection, remembered for a few seconds).
- `RefusalLimiter` counts refused requests per source IP and minute; past the limit every
  request from that IP gets 429, so MAC ranges cannot be walked at speed.
- `client_ip` takes the address from X-Forwarded-For only through the configured number of
  trusted proxies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.inventory import Device
from ..core.layout import ProvRequest, token_matches

LEASE_TTL_S = 2.0
LEASE_POLL_S = 0.05
WINDOW_S = 60.0
MAX_TRACKED_IPS = 10_000


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # for the log only, never sent


def decide(
    mode: str,
    secret: bytes | None,
    req: ProvRequest,
    device: Device | None,
    lease_ip: str | None,
    client_ip: str,
) -> Verdict:
    """The security policy (DESIGN §4); `lease_ip` is who holds the device's lease, if anyone."""
    if device is None:
        return Verdict(False, "unknown MAC")
    if req.device_type is not None and req.device_type != device.type:
        return Verdict(False, f"URL says {req.device_type}, inventory says {device.type}")
    if mode == "open":
        return Verdict(True, "open mode")
    if req.token is not None:
        if secret is not None and token_matches(secret, device.mac, req.token):
            return Verdict(True, "token")
        return Verdict(False, "wrong token")
    if mode == "token":
        return Verdict(False, "token required")
    if lease_ip is None:
        return Verdict(False, "device holds no lease")
    if lease_ip != client_ip:
        return Verdict(False, f"lease is held by {lease_ip}")
    return Verdict(True, "lease")


def client_ip(environ: Mapping[str, Any], trusted_proxies: int) -> str:
    """The client's address: REMOTE_ADDR, or the N-th X-Forwarded-For entry from the right."""
    remote = str(environ.get("REMOTE_ADDR") or "")
    if trusted_proxies <= 0:
        return remote
    forwarded = [v.strip() for v in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    forwarded = [v for v in forwarded if v]
    if len(forwarded) < trusted_proxies:
        return remote
    return forwarded[-trusted_proxies]


class LeaseLookup:
    """MAC → leased IP from the state database, cached for `ttl` seconds."""

    def __init__(self, state_path: Path, ttl: float = LEASE_TTL_S) -> None:
        self.state_path = state_path
        self.ttl = ttl
        self._local = threading.local()
        self._cache: dict[str, tuple[float, str | None]] = {}

    def ip_of(self, mac: str, now: float, fresh: bool = False) -> str | None:
        """The leased IP; `fresh` skips the cache (a lease may be seconds old: a refusal
        is only ever decided on the database's current answer)."""
        hit = self._cache.get(mac)
        if not fresh and hit is not None and hit[0] > now:
            return hit[1]
        lease = self._state().lease_for(mac)
        ip = lease.ip if lease else None
        if len(self._cache) > MAX_TRACKED_IPS:
            self._cache.clear()
        self._cache[mac] = (now + self.ttl, ip)
        return ip

    def await_lease(self, mac: str, ip: str, grace: float) -> bool:
        """Whether `ip` comes to hold `mac`'s lease within `grace` seconds.

        A phone may ask before the dnsmasq hook has recorded its new lease (the hook runs
        after the DHCP ACK, one event at a time). Not waited for when `ip` is known to be
        another device's: that is a refusal at once.
        """
        holder = self._state().lease_by_ip(ip)
        if holder is not None and holder.mac != mac:
            return False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(LEASE_POLL_S)
            if self.ip_of(mac, 0.0, fresh=True) == ip:
                return True
        return False

    def _state(self) -> Any:
        state = getattr(self._local, "state", None)
        if state is None:
            from ..state.db import State

            state = self._local.state = State(self.state_path)
        return state


class RefusalLimiter:
    """Refusals per source IP in a fixed one-minute window."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def blocked(self, ip: str, now: float) -> bool:
        window = self._windows.get(ip)
        return (
            self.per_minute > 0
            and window is not None
            and now - window[0] < WINDOW_S
            and window[1] >= self.per_minute
        )

    def refused(self, ip: str, now: float) -> bool:
        """Count one refusal; True when this one reached the limit (log it once)."""
        with self._lock:
            start, count = self._windows.get(ip, (now, 0))
            if now - start >= WINDOW_S:
                start, count = now, 0
            if len(self._windows) > MAX_TRACKED_IPS:
                self._windows = {k: v for k, v in self._windows.items() if now - v[0] < WINDOW_S}
            self._windows[ip] = (start, count + 1)
            return count + 1 == self.per_minute
