"""The dhcp-script dnsmasq runs: `main(argv, environ)` records lease events, always exits 0.

dnsmasq runs it as root, one event at a time, as `add|old|del MAC IP [HOSTNAME]` with
DNSMASQ_* variables (DESIGN §3), and `init` at start when --leasefile-ro is set (then we
print the leases we know, in lease-file format). Anything else is logged and ignored:
a failing script would only make dnsmasq log noise, never help.

dnsmasq runs the next event only when this one ends, so the hook waits for the database's
write lock about half a second at most. A busy (or broken) database does not lose the event:
it goes to a spool beside the database (`state.spool`), which the next run replays first, in
order, and which a detached drainer the hook forks writes as soon as the database frees.

It stays cheap: the common path imports the settings `apply` wrote for it (`dnsmasq.applied`,
no TOML parser), `core.mac` and the lean state path (`state.hookdb`: `_sqlite3` without the
sqlite3 package or functools), nothing else (no Flask, no lxml, no pyroute2, not even `re`
or `collections`), and the script skips the interpreter's teardown. Only auto-enrolment
loads the full config and inventory, once per new phone.
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

    from ..state.spool import Spool

IGNORED_ACTIONS = ("tftp", "arp", "arp-old", "arp-add", "arp-del", "relay-snoop")
MAX_TEXT = 255
DRAIN_WAIT_S = 5.0  # the drainer's busy timeout per attempt
DRAIN_FOR_S = 900.0  # after this the drainer gives up; the next event writes the spool


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
    from ..state.spool import Spool

    spool = Spool(config.state)
    with StateOwner(config.state):
        if action == "init":
            print_leases(config, spool, out, now)
            return
        enrolling = _record_event(config, spool, action, argv, environ, now)
    if enrolling:
        enrol(config, norm_mac(argv[2]), now)


def _record_event(
    config: HookSettings,
    spool: Spool,
    action: str,
    argv: list[str],
    environ: Mapping[str, str],
    now: float,
) -> bool:
    """Record one add/old/del event; True when the phone is to be auto-enrolled now."""
    from ..state.hookdb import LeaseDb

    if len(argv) < 4:
        raise HookError(f"{action}: expected MAC and IP, got {_clip(repr(argv[2:]))}")
    mac, ip = norm_mac(argv[2]), check_ipv4(argv[3])
    if action == "del":
        record(config, spool, [("release", LeaseDb.release_params(mac, ip, now))])
        return False
    lease = lease_from(mac, ip, argv[4] if len(argv) > 4 else None, environ, now)
    writes: list[tuple[str, tuple[object, ...]]] = [("lease", LeaseDb.lease_params(lease, now))]
    vendor_class = lease["vendor_class"] if isinstance(lease["vendor_class"], str) else None
    reason = None
    if not has_device_files(config.hostsdir, mac):
        reason = discovery_reason(config, mac, vendor_class)
    if reason is not None:
        writes.append(("discovered", LeaseDb.discovered_params(mac, ip, vendor_class, reason, now)))
    return bool(
        record(config, spool, writes) and reason and config.auto_enrol and config.mode != "vendor"
    )


class StateOwner:
    """While root touches the state database and its spool it acts as the owner of their
    directory (the service user): a link put in place of a file there cannot make root
    write through it. A no-op when not root or when root owns the directory."""

    def __init__(self, state: str) -> None:
        self.ids: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                st = os.stat(os.path.dirname(os.path.abspath(state)))
            except OSError:
                return
            if st.st_uid != 0:
                self.ids = (st.st_uid, st.st_gid)

    def __enter__(self) -> None:
        if self.ids is not None:
            os.setegid(self.ids[1])
            os.seteuid(self.ids[0])

    def __exit__(self, *_: object) -> None:
        if self.ids is not None:
            os.seteuid(0)
            os.setegid(0)


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


def record(
    config: HookSettings, spool: Spool, writes: list[tuple[str, tuple[object, ...]]]
) -> bool:
    """Write the event into the database after what the spool holds; when the database is
    busy past about HOOK_BUSY_TIMEOUT_S (or unusable), append it to the spool instead and
    make sure a drainer writes it later. True when it is in the database now."""
    from ..state.hookdb import Error, LeaseDb

    try:
        with LeaseDb(config.state) as db:
            db.commit(writes, spool)
            skipped = db.skipped
    except (Error, OSError) as e:  # OSError: the spool could not be read
        problem = str(e)
    else:
        if skipped:
            log(f"error: {spool.path}: {skipped} unreadable line(s) dropped")
        return True
    try:
        spool.append(writes)
    except OSError as e:
        log(f"error: event lost: {config.state}: {problem}; {spool.path}: {e.strerror or e}")
        return False
    log(f"{config.state}: {problem}: event kept in {spool.path}, written when it can be")
    start_drainer(config.state, spool)
    return False


def discovery_reason(config: HookSettings, mac: str, vendor_class: str | None) -> str | None:
    """Why a phone we do not provision yet looks like ours (OUI, vendor class), or None."""
    if mac[:6] in config.vendor_ouis:
        return f"oui {mac[:6]}"
    if vendor_class:
        for wanted in config.vendor_classes:
            if wanted in vendor_class:  # dnsmasq matches vendor classes as substrings
                return f"vendor class {wanted}"
    return None


# the drainer: the spool into the database once it frees -------------------------------


def start_drainer(state: str, spool: Spool) -> None:
    """Fork a detached process that writes the spool into the database as soon as it can
    (unless one runs already: it holds the drain lock, and looks again before it exits).
    The hook itself returns at once: dnsmasq waits only for the hook."""
    try:
        lock = spool.try_drain_lock()
    except OSError as e:
        log(f"error: {spool.lock_path}: {e.strerror or e}; the next event writes the spool")
        return
    if lock is None:
        return
    try:
        pid = os.fork()
    except OSError:
        os.close(lock)
        return
    if pid:
        os.close(lock)
        os.waitpid(pid, 0)
        return
    try:  # the child: a new session, and a grandchild init adopts
        os.setsid()
        if os.fork() == 0:
            _detach(lock)
            drain(state, spool, lock)
    finally:
        os._exit(0)


def drain(state: str, spool: Spool, lock: int) -> None:
    """Replay the spool until it is empty (or DRAIN_FOR_S passed), holding the drain lock."""
    from ..state.hookdb import Error, LeaseDb

    deadline = time.monotonic() + DRAIN_FOR_S
    while True:
        while spool.pending() and time.monotonic() < deadline:
            try:
                with LeaseDb(state, timeout=DRAIN_WAIT_S) as db:
                    db.commit([], spool)
            except (Error, OSError):
                time.sleep(1.0)
        os.close(lock)
        # an event spooled while we held the lock saw it held and left the spool to us
        if not spool.pending() or time.monotonic() >= deadline:
            return
        next_lock = spool.try_drain_lock()
        if next_lock is None:  # a newer drainer has it
            return
        lock = next_lock


def _detach(keep: int) -> None:
    """No inherited descriptors but `keep`: dnsmasq reads the hook's output until EOF."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))


def enrol(config: HookSettings, mac: str, now: float) -> None:
    """Add the phone with the default profile and write its files at once (rare: heavy)."""
    from ..config import load_config
    from ..site import full_inventory
    from ..state.db import State
    from .apply import applied_settings, apply

    full = load_config(config.config)
    with StateOwner(str(full.state)), State(full.state) as state:
        state.enrol(mac, full.dhcp.default_type, full.dhcp.default_profile, now)
    inventory = full_inventory(full)  # validates the enrolled record with everything else
    result = apply(full, applied_settings(full), inventory)
    log(
        f"auto-enrolled {mac} ({full.dhcp.default_type}, {full.dhcp.default_profile}): "
        f"{result.summary()}"
    )


def print_leases(config: HookSettings, spool: Spool, out: TextIO, now: float) -> None:
    """`init` with --leasefile-ro: our active, unexpired leases in dnsmasq's lease format
    (what the spool holds first, when the database takes it now)."""
    from ..state.hookdb import Error, LeaseDb

    with LeaseDb(config.state) as db:
        if spool.pending():
            try:
                db.commit([], spool)
            except (Error, OSError) as e:
                log(f"{config.state}: {e}: events in {spool.path} not written yet")
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
