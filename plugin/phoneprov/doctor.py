"""`phoneprov doctor`: gather what the appliance really looks like, for `core.findings`.

Read only, never a signal: dnsmasq processes from /proc (comm, cmdline, status) and the
config files their command line names; modes of the directories dnsmasq reads as `nobody`
and of the inventory (SIP passwords: not for every user);
a write transaction on the state database that is rolled back; a TCP connect to the HTTP
endpoint; per device the options `phoneprov options` computes and the phone's fetch chain
run against the real server. In security mode "lease" the doctor is not the lease holder,
so it fetches the same routes with the device's token (`t/<token>/...`, from the secret).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from .config import Config
from .core.chain import provision
from .core.dnsmasq_cmdline import (
    cmdline_directives,
    conf_dir_includes,
    conf_directives,
    parse_version,
)
from .core.dnsmasq_conf import DhcpSettings
from .core.findings import DeviceCheck, DnsmasqProcess, Facts, PathState, blocked_for_others
from .core.layout import device_token
from .core.markers import DeviceInfo, replace_markers

PROC = Path("/proc")
DEFAULT_CONF = "/etc/dnsmasq.conf"  # read when the command line names no --conf-file
DEBIAN_CONF_DIR = "/etc/dnsmasq.d,.dpkg-dist,.dpkg-old,.dpkg-new"  # Debian's init adds it
PATH_KEYS = ("dhcp-hostsdir", "dhcp-optsdir", "dhcp-script", "conf-file")
MAX_INCLUDES = 200
CONNECT_TIMEOUT = 2.0
Fetch = Callable[[str], tuple[int, bytes]]


def gather(config: Config, only: str | None = None, fetch: Fetch | None = None) -> Facts:
    """Everything `core.findings.diagnose` needs; `only` restricts the devices to one MAC."""
    from .render.check import world_readable_inventory
    from .site import resolve_settings
    from .sync.report import sync_facts

    settings = resolve_settings(config)
    hostsdir = os.path.normpath(os.path.abspath(config.dhcp.hostsdir))
    optsdir = os.path.normpath(os.path.abspath(config.dhcp.optsdir))
    procs = tuple(running_dnsmasq())
    mine = [p for p in procs if hostsdir in p.values("dhcp-hostsdir")]
    directives = mine[0].directives if mine else tuple(follow([("", "conf-dir", DEBIAN_CONF_DIR)]))
    scripts = [v for _w, k, v in directives if k == "dhcp-script"]
    listen, http_error = config.server.listen, connect_error(config.server.listen)
    facts = Facts(
        hostsdir=hostsdir,
        per_mac=settings.mode != "vendor",
        security_mode=config.security.mode,
        dnsmasq=procs,
        version=dnsmasq_version(mine[0].pid if mine else None),
        dirs=(path_state(hostsdir), path_state(optsdir)),
        hook=script_state(scripts[-1]) if scripts else None,
        state=str(config.state),
        state_exists=config.state.exists(),
        state_error=state_error(config.state),
        listen=listen,
        http_error=http_error,
        ntp=settings.ntp,
        inventory=str(config.inventory_path),
        world_readable=tuple(world_readable_inventory(config)),
        sync=sync_facts(config),
    )
    if fetch is None:
        from .phone.simulator import http_get as fetch
    devices = device_checks(config, settings, only, None if http_error else fetch)
    return replace(facts, devices=tuple(devices))


# dnsmasq ---------------------------------------------------------------------------------


def running_dnsmasq() -> Iterator[DnsmasqProcess]:
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "dnsmasq":
                continue
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            status = (entry / "status").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if _is_dnsmasq(fields.get("PPid", "").strip()):
            continue  # the helper dnsmasq forks to run the dhcp-script
        uid = int(fields["Uid"].split()[1]) if "Uid" in fields else None
        args = [a.decode("utf-8", "replace") for a in argv]
        found = [(f"command line of pid {entry.name}", k, v) for k, v in cmdline_directives(args)]
        if not any(k == "conf-file" for _w, k, _v in found):
            found.append(("default", "conf-file", DEFAULT_CONF))
        yield DnsmasqProcess(int(entry.name), uid, tuple(follow(found)))


def _is_dnsmasq(pid: str) -> bool:
    try:
        return (PROC / pid / "comm").read_text().strip() == "dnsmasq"
    except OSError:
        return False


def follow(directives: list[tuple[str, str, str]]) -> Iterator[tuple[str, str, str]]:
    """The directives with each conf-file / conf-dir replaced by what it includes."""
    queue, seen = list(directives), 0
    while queue and seen < MAX_INCLUDES:
        where, key, value = queue.pop(0)
        if key in PATH_KEYS and value:
            value = os.path.normpath(value)
        yield where, key, value
        files = []
        if key == "conf-file":
            files = [value]
        elif key == "conf-dir":
            directory = value.split(",")[0]
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                names = []
            files = [os.path.join(directory, n) for n in names if conf_dir_includes(value, n)]
        for name in files:
            seen += 1
            try:
                text = Path(name).read_text(errors="replace")
            except OSError:
                continue
            queue[0:0] = [(name, k, v) for k, v in conf_directives(text)]


def dnsmasq_version(pid: int | None) -> str | None:
    """The running binary's version (`/proc/PID/exe --version`), else the one on PATH."""
    binary = "dnsmasq"
    if pid is not None:
        with contextlib.suppress(OSError):
            binary = os.readlink(PROC / str(pid) / "exe").removesuffix(" (deleted)")
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_version(out.stdout)


# files -----------------------------------------------------------------------------------


def path_state(path: str) -> PathState:
    """A directory dnsmasq reads as nobody: every parent passable, its files readable."""
    target = Path(path)
    try:
        mode = target.stat().st_mode
    except OSError:
        return PathState(path, exists=False)
    chain = [(str(p), p.stat().st_mode) for p in [*reversed(target.parents), target]]
    blocked = blocked_for_others(chain)
    unreadable, entries = [], 0
    if stat.S_ISDIR(mode):
        for name in sorted(os.listdir(target)):
            if name.startswith(".") or name.endswith("~"):  # dnsmasq skips these
                continue
            entries += 1
            with_mode = (target / name).stat().st_mode
            if not with_mode & stat.S_IROTH:
                unreadable.append(name)
    return PathState(
        path,
        exists=True,
        is_dir=stat.S_ISDIR(mode),
        blocked_at=blocked,
        unreadable=tuple(unreadable),
        entries=entries,
    )


def script_state(path: str) -> PathState:
    """The dhcp-script (run as root): a file with an x bit and a #! program that exists."""
    target = Path(path)
    try:
        mode = target.stat().st_mode
        with target.open("rb") as handle:
            first = handle.readline(256)
    except OSError:
        return PathState(path, exists=target.exists())
    interpreter = ""
    if first.startswith(b"#!"):
        parts = first[2:].decode("utf-8", "replace").split()
        interpreter = parts[0] if parts else ""
    return PathState(
        path,
        exists=True,
        executable=stat.S_ISREG(mode) and bool(mode & 0o111),
        interpreter=interpreter,
        interpreter_ok=not interpreter or os.access(interpreter, os.X_OK),
    )


def state_error(path: Path) -> str | None:
    """None when a write transaction on the state database works (it is rolled back)."""
    if not path.exists():  # the hook creates it at its first event: can it?
        parent = path.parent
        if parent.is_dir() and os.access(parent, os.W_OK):
            return None
        return f"does not exist, and {parent} is no writable directory to create it in"
    try:
        db = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2.0, isolation_level=None)
    except sqlite3.Error as e:
        return f"cannot open: {e}"
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("CREATE TABLE phoneprov_doctor_probe (x)")
        db.execute("ROLLBACK")
    except sqlite3.Error as e:
        return f"not writable: {e}"
    finally:
        db.close()
    return None


# HTTP and devices ------------------------------------------------------------------------


def connect_error(listen: str) -> str | None:
    """None when something accepts a TCP connection at `listen` (a wildcard: loopback)."""
    host, _sep, port = listen.rpartition(":")
    host = host.strip("[]")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT):
            return None
    except (OSError, ValueError) as e:
        return str(e) or type(e).__name__


def read_secret(config: Config) -> bytes | None:
    """The secret as serve uses it; never created here (None when missing or unreadable)."""
    try:
        data = config.security.secret_file.read_bytes()
    except OSError:
        return None
    return data if len(data) >= 16 else None


def device_checks(
    config: Config, settings: DhcpSettings, only: str | None, fetch: Fetch | None
) -> list[DeviceCheck]:
    """Per device: its options (as `phoneprov options`), its URL, and (with `fetch`) the
    result of the phone's fetch chain against the server."""
    from .core.mac import norm_mac
    from .dnsmasq.options import options_for
    from .site import full_inventory

    inventory = full_inventory(config)
    macs = [norm_mac(only)] if only else list(inventory.devices)
    secret = read_secret(config) if config.security.mode == "lease" else None
    checks = []
    for mac in macs:
        report = options_for(config, settings, mac, inventory)
        device = inventory.devices.get(mac)
        check = DeviceCheck(
            mac=mac,
            type=device.type if device else "",
            source=str(report["source"]),
            options={code: report[code] for code in ("42", "43", "66", "67")},
            url=report["url"],
            applied=report["applied"],
        )
        if fetch is not None and device is not None and check.url:
            info = DeviceInfo(mac, device.type, device.serial)
            url = replace_markers(check.url, info)
            target = token_url(config, settings, info, url, secret)
            outcome = provision(target, fetch, info)
            failed = [s for s in outcome.steps if s.kind == "failed"]
            check = replace(
                check,
                fetched=target,
                files=len(outcome.files),
                size=sum(s.size for s in outcome.steps),
                error=outcome.error,
                status=failed[0].status if failed else 0,
            )
        checks.append(check)
    return checks


def token_url(
    config: Config, settings: DhcpSettings, info: DeviceInfo, url: str, secret: bytes | None
) -> str:
    """The phone's URL with the device's token path in front, when that is the Layout's URL
    (same server routes, allowed without the lease); otherwise the URL unchanged."""
    layout, server = config.server.layout, settings.server_url
    if secret is None or not info.mac or not info.type:
        return url
    if url != layout.entry_url(server, info.type, info.mac):
        return url
    return layout.entry_url(server, info.type, info.mac, device_token(secret, info.mac))
