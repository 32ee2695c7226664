"""Who may fetch a device's files: the lease holder, the token bearer, or (open mode) anyone.

- `decide` is the policy, pure: facts in, verdict out. It is asked before the inventory is,
  and knows nothing of it: a refusal costs the same and reads the same whether the MAC is
  inventoried or not (no timing or wording tells a prober which MACs exist).
- `check_device`: an allowed request names a device in the inventory, of the URL's type.
- `RefusalLimiter` counts refused requests per source IP and minute; past the limit every
  request from that IP gets 429, so MAC ranges cannot be walked at speed.
- `client_ip` takes the address from X-Forwarded-For only through the configured number of
  trusted proxies.
- The lease holder of an address comes from `leases.LeaseLookup`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.inventory import Device
from ..core.layout import ProvRequest, token_matches

WINDOW_S = 60.0
MAX_TRACKED_IPS = 10_000


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # for the log only, never sent


# the verdicts of every served request, made once (a frozen dataclass costs ~1 us to make)
OPEN_MODE = Verdict(True, "open mode")
TOKEN = Verdict(True, "token")
LEASE = Verdict(True, "lease")
KNOWN_DEVICE = Verdict(True, "known device")


def decide(
    mode: str, secret: bytes | None, req: ProvRequest, holder: str | None, client_ip: str
) -> Verdict:
    """The security policy (DESIGN §4); `holder` is the MAC whose live lease `client_ip`
    holds, if any (looked up in lease mode only)."""
    if mode == "open":
        return OPEN_MODE
    if req.token is not None:
        if secret is not None and token_matches(secret, req.mac, req.token):
            return TOKEN
        return Verdict(False, "wrong token")
    if mode == "token":
        return Verdict(False, "token required")
    if holder is None:
        return Verdict(False, f"{client_ip} holds no lease")
    if holder != req.mac:
        return Verdict(False, f"{client_ip} holds the lease of {holder}")
    return LEASE


def check_device(req: ProvRequest, device: Device | None) -> Verdict:
    """An allowed request's MAC is in the inventory, with the type its URL names."""
    if device is None:
        return Verdict(False, "unknown MAC")
    if req.device_type is not None and req.device_type != device.type:
        return Verdict(False, f"URL says {req.device_type}, inventory says {device.type}")
    return KNOWN_DEVICE


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
