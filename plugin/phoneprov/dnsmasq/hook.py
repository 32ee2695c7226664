"""The dhcp-script dnsmasq runs: `main(argv, environ)` records lease events, always exits 0.

dnsmasq runs it as root, one event at a time, as `add|old|del MAC IP [HOSTNAME]` with
DNSMASQ_* variables (DESIGN §3), and `init` at start when --leasefile-ro is set (then we
print the leases we know, in lease-file format). Anything else is logged and ignored:
a failing script would only make dnsmasq log noise, never help.

It stays cheap: the common path imports sqlite3, the settings `apply` wrote for it
(`dnsmasq.applied`, no TOML parser), `core.mac` and the lean state path, nothing else (no
Flask, no lxml, no pyroute2, not even `re`). Only auto-enrolment loads the full config and
inventory, once per new phone.
"""

from __future__ import annotations

import os
import sys
import time

from ..core.errors import InputError
from ..core.mac import colon_mac, norm_mac

TYPE_CHECKING = False  # not from typing: importing typing alone costs ~5 ms per event
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

    from ..state.hookdb import LeaseDb

IGNORED_ACTIONS = ("tftp", "arp", "arp-old", "arp-add", "arp-del", "relay-snoop")
MAX_TEXT = 255


class HookError(Exception):
    """Bad argv/environment or config: logged as one line, exit status still 0."""


class HookSettings:
    """The settings `phoneprov apply` wrote for us (`dnsmasq.applied`), from
    $PHONEPROV_HOOK_SETTINGS or the default place; the host files live beside them."""

    def __init__(self, path: str) -> None:
        from .applied import load_applied

        try:
            values = load_applied(path)
        except OSError as e:
            raise HookError(
                f"no settings from `phoneprov apply` at {path} ({e.strerror}): run it once"
            ) from None
        except (ValueError, UnicodeDecodeError) as e:
            raise HookError(str(e)) from None
        self.path = path
        self.hostsdir = os.path.dirname(path)
        self.config = str(values["config"])
        self.mode = str(values["mode"])
        self.state = str(values["state"])
        self.auto_enrol = values["auto_enrol"] is True
        self.vendor_ouis: list[str] = values["vendor_ouis"]
        self.vendor_classes: list[str] = values["vendor_classes"]


def main(argv: Sequence[str], environ: Mapping[str, str], out: TextIO | None = None) -> int:
    """Handle one dnsmasq event; never raises, always 0."""
    try:
        run(list(argv), environ, out or sys.stdout, time.time())
    except (HookError, InputError) as e:
        log(f"error: {e}")
    except Exception as e:  # the script must never fail: dnsmasq queues events behind it
        log(f"error: {type(e).__name__}: {e}")
    return 0


def log(message: str) -> None:
    """One line on stderr (dnsmasq logs what its script writes there)."""
    try:
        sys.stderr.write(f"phoneprov-hook: {message}\n".encode("ascii", "replace").decode())
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def run(argv: list[str], environ: Mapping[str, str], out: TextIO, now: float) -> None:
    action = argv[1] if len(argv) > 1 else ""
    if action in IGNORED_ACTIONS or environ.get("DNSMASQ_IAID"):  # not ours, or DHCPv6
        return
    if action not in ("add", "old", "del", "init"):
        raise HookError(f"unknown action {_clip(repr(action))} (argv {_clip(repr(argv[1:]))})")
    from .applied import DEFAULT_PATH, ENV

    config = HookSettings(environ.get(ENV) or DEFAULT_PATH)
    from ..state.hookdb import LeaseDb

    if action == "init":
        with LeaseDb(config.state) as db:
            print_leases(db, out, now)
        return
    if len(argv) < 4:
        raise HookError(f"{action}: expected MAC and IP, got {_clip(repr(argv[2:]))}")
    mac, ip = norm_mac(argv[2]), check_ipv4(argv[3])
    with LeaseDb(config.state) as db:
        if action == "del":
            db.release_lease(mac, ip, now)
            return
        lease = lease_from(mac, ip, argv[4] if len(argv) > 4 else None, environ, now)
        db.record_lease(lease, now)
        if not has_device_files(config.hostsdir, mac):
            discover(config, db, lease, now)


def lease_from(
    mac: str, ip: str, hostname: str | None, env: Mapping[str, str], now: float
) -> dict[str, object]:
    """The lease columns from dnsmasq's argv/environment; missing data stays None (kept)."""
    missing = bool(env.get("DNSMASQ_DATA_MISSING"))
    expires = _int(env.get("DNSMASQ_LEASE_EXPIRES"))
    length = _int(env.get("DNSMASQ_LEASE_LENGTH"))
    if expires is None and length is not None:
        expires = int(now) + length

    def text(name: str) -> str | None:
        return None if missing else _text(env.get(name))

    return {
        "mac": mac,
        "ip": ip,
        "hostname": _text(hostname),
        "interface": text("DNSMASQ_INTERFACE"),
        "vendor_class": text("DNSMASQ_VENDOR_CLASS"),
        "requested_options": text("DNSMASQ_REQUESTED_OPTIONS"),
        "tags": text("DNSMASQ_TAGS"),
        "expires": expires,
    }


def discover(config: HookSettings, db: LeaseDb, lease: dict[str, object], now: float) -> None:
    """A phone we do not provision yet: record it if it looks like ours; maybe enrol it."""
    mac, ip = str(lease["mac"]), str(lease["ip"])
    vendor_class = lease["vendor_class"] if isinstance(lease["vendor_class"], str) else None
    reason = None
    if mac[:6] in config.vendor_ouis:
        reason = f"oui {mac[:6]}"
    elif vendor_class:
        for wanted in config.vendor_classes:
            if wanted in vendor_class:  # dnsmasq matches vendor classes as substrings
                reason = f"vendor class {wanted}"
                break
    if reason is None:
        return
    db.record_discovered(mac, ip, vendor_class, reason, now)
    if config.auto_enrol and config.mode != "vendor":
        enrol(config, mac, now)


def enrol(config: HookSettings, mac: str, now: float) -> None:
    """Add the phone with the default profile and write its files at once (rare: heavy)."""
    from ..config import load_config
    from ..site import full_inventory
    from ..state.db import State
    from .apply import applied_settings, apply

    full = load_config(config.config)
    with State(full.state) as state:
        state.enrol(mac, full.dhcp.default_type, full.dhcp.default_profile, now)
    inventory = full_inventory(full)  # validates the enrolled record with everything else
    result = apply(full, applied_settings(full), inventory)
    log(
        f"auto-enrolled {mac} ({full.dhcp.default_type}, {full.dhcp.default_profile}): "
        f"{result.summary()}"
    )


def print_leases(db: LeaseDb, out: TextIO, now: float) -> None:
    """`init` with --leasefile-ro: our active, unexpired leases in dnsmasq's lease format."""
    for expires, mac, ip, hostname in db.active_leases():
        if not expires or expires <= now:  # unknown expiry: let the phone ask again
            continue
        name = hostname if hostname and " " not in hostname else "*"
        out.write(f"{expires} {colon_mac(mac)} {ip} {name} *\n")
    out.flush()


def has_device_files(hostsdir: str, mac: str) -> bool:
    """True when apply wrote live files for this MAC (a tombstone does not count)."""
    try:
        with open(os.path.join(hostsdir, mac), encoding="utf-8") as handle:
            return "set:phoneprov-removed" not in handle.read()
    except (OSError, UnicodeDecodeError):
        return False


def check_ipv4(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or not all(
        p.isascii() and p.isdigit() and len(p) <= 3 and int(p) < 256 for p in parts
    ):
        raise HookError(f"not an IPv4 address: {_clip(repr(text))}")
    return text


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _text(value: str | None) -> str | None:
    """Printable text up to 255 characters, or None (empty counts as not given)."""
    if not value:
        return None
    cleaned = "".join(c if c.isprintable() else "?" for c in value)
    return cleaned[:MAX_TEXT]


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
