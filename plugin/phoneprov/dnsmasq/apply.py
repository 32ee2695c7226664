"""`phoneprov apply`: the inventory → per-device files in dhcp-hostsdir / dhcp-optsdir.

Validation first (the whole inventory, every option computed), then write: a broken
inventory never touches what dnsmasq runs with. Each file is written as a dot-named temp
file (dnsmasq's inotify ignores those), made 0644 (dnsmasq reads as `nobody`), flushed to
disk and renamed into place. An unchanged file is not touched. A changed device's opts file
is renamed before its host file, so its new tag never points at options not loaded yet.
Never SIGHUP dnsmasq (DESIGN §3): removed devices get tombstones instead.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import Config
from ..core import dnsmasq_conf as conf
from ..core.inventory import Inventory
from ..core.layout import device_token
from ..site import full_inventory, resolve_settings, token_secret
from .applied import APPLIED_NAME, dump_applied, load_applied

LOCK_FILE = ".phoneprov.lock"
MAC_NAME = frozenset("0123456789ABCDEF")
SYNC_ALL_ABOVE = 64  # more changed files than this: one os.sync() instead of one fsync each


@dataclass
class ApplyResult:
    written: list[str] = field(default_factory=list)  # devices whose files were (re)written
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)  # tombstoned now
    dropped: list[str] = field(default_factory=list)  # tombstones deleted (dnsmasq restarted)

    @property
    def files_touched(self) -> int:
        return 2 * len(self.written) + 2 * len(self.removed) + len(self.dropped)

    def summary(self) -> str:
        return (
            f"{len(self.written)} written, {self.unchanged} unchanged, "
            f"{len(self.removed)} removed, {len(self.dropped)} tombstones dropped"
        )


# the settings of the last apply ------------------------------------------------------


def applied_values(config: Config, settings: conf.DhcpSettings) -> dict[str, object]:
    """What the hook needs (`dnsmasq.applied`), resolved: it never parses the config."""
    return {
        "config": str(config.path.absolute()),
        "mode": settings.mode,
        "state": str(config.state.absolute()),
        "auto_enrol": config.dhcp.auto_enrol,
        "server_url": settings.server_url,
        "vendor_ouis": settings.vendor_ouis,
        "vendor_classes": settings.vendor_classes,
        "ntp": settings.ntp,
    }


def applied_settings(config: Config) -> conf.DhcpSettings | None:
    """Settings for the hook's auto-enrol: `auto` values taken from the last apply (no
    netlink in the hook), or None when there was none."""
    settings = resolve_settings(config, address_of=lambda _ifname: "0.0.0.0")
    if config.server.url != "auto" and "auto" not in config.dhcp.ntp:
        return settings
    try:
        saved = load_applied(str(config.dhcp.hostsdir / APPLIED_NAME))
    except (OSError, ValueError):
        return None
    return replace(
        settings,
        server_url=str(saved["server_url"]) if config.server.url == "auto" else settings.server_url,
        ntp=tuple(saved["ntp"]) if "auto" in config.dhcp.ntp else settings.ntp,
    )


# what to write -------------------------------------------------------------------------


def plan(
    settings: conf.DhcpSettings, macs: list[str], secret: bytes | None
) -> dict[str, conf.DeviceFiles]:
    """Every device's files, computed before anything is written (raises on any bad one)."""
    if settings.mode not in conf.PER_MAC_MODES:
        return {}
    files = {}
    for mac in macs:
        token = device_token(secret, mac) if secret is not None else None
        files[mac] = conf.device_files(settings, mac, conf.device_options(settings, token))
    return files


def apply(
    config: Config,
    settings: conf.DhcpSettings | None = None,
    inventory: Inventory | None = None,
    desired: Mapping[str, conf.DeviceFiles] | None = None,
) -> ApplyResult:
    """Write the files for `inventory` (default: the config's); `desired`, when the caller
    has already computed `plan(...)` for it, is written as it is."""
    settings = settings or resolve_settings(config)
    if desired is None:
        inventory = inventory if inventory is not None else full_inventory(config)
        secret = token_secret(config, settings)
        desired = plan(settings, list(inventory.devices), secret)
    hostsdir, optsdir = config.dhcp.hostsdir, config.dhcp.optsdir
    for directory in (hostsdir, optsdir):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    with _locked(hostsdir):
        result = write_fragments(
            hostsdir, optsdir, desired, dnsmasq_started_at(config.dhcp.dnsmasq_pidfile)
        )
        _write_atomic(hostsdir / APPLIED_NAME, dump_applied(applied_values(config, settings)))
    return result


# writing -------------------------------------------------------------------------------


def write_fragments(
    hostsdir: Path,
    optsdir: Path,
    desired: Mapping[str, conf.DeviceFiles],
    dnsmasq_started: float | None,
) -> ApplyResult:
    """Make the two directories say `desired`; touch only what differs."""
    result = ApplyResult()
    with _Dir(hostsdir) as hosts, _Dir(optsdir) as opts:
        hosts_now, opts_now = hosts.ours(), opts.ours()
        opts_writes: dict[str, str] = {}
        host_writes: dict[str, str] = {}
        for name, files in desired.items():
            host_same = name in hosts_now and hosts.read(name) == files.host
            opts_same = name in opts_now and opts.read(name) == files.opts
            if host_same and opts_same:
                result.unchanged += 1
                continue
            result.written.append(name)
            if not opts_same:
                opts_writes[name] = files.opts
            if not host_same:
                host_writes[name] = files.host
        for name in sorted(hosts_now - desired.keys()):
            current = hosts.read(name)
            if current is None or not conf.is_tombstone(current):
                host_writes[name] = conf.tombstone(name)
                result.removed.append(name)
            elif conf.tombstone_expired(hosts.mtime(name), dnsmasq_started):
                hosts.unlink(name)
                result.dropped.append(name)
        # Temp files in both directories at once (creating files is the cost, and each
        # directory has its own lock), then the renames: opts first, so a host line never
        # names a tag whose options dnsmasq has not read.
        with ThreadPoolExecutor(2) as pool:
            opts_temps, host_temps = pool.map(
                _Dir.prepare, (opts, hosts), (opts_writes, host_writes)
            )
        if len(opts_temps) + len(host_temps) > SYNC_ALL_ABOVE:
            os.sync()  # one flush for all instead of an fsync per file
        opts.commit(opts_temps)
        hosts.commit(host_temps)
        for name in sorted(opts_now - desired.keys()):
            opts.unlink(name)  # its tag is no longer set by any host line
        if result.dropped or opts_now - desired.keys():
            hosts.fsync()
            opts.fsync()
    return result


def dnsmasq_started_at(pidfile: Path) -> float | None:
    """When the dnsmasq named by `pidfile` started (epoch seconds, ±20 ms), or None."""
    try:
        pid = int(pidfile.read_text().split()[0])
        if Path(f"/proc/{pid}/comm").read_text().strip() != "dnsmasq":
            return None
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rpartition(")")[2].split()[19])  # field 22: starttime since boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    booted = time.time() - uptime  # /proc/stat's btime is whole seconds: too coarse
    return booted + ticks / os.sysconf("SC_CLK_TCK")


class _Dir:
    """One directory by file descriptor: plain names, no path building per file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def __enter__(self) -> _Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def ours(self) -> set[str]:
        """Names apply manages: 12 upper-case hex digits (the admin's own files stay alone)."""
        return {n for n in os.listdir(self.fd) if len(n) == 12 and MAC_NAME.issuperset(n)}

    def read(self, name: str) -> str | None:
        try:
            fd = os.open(name, os.O_RDONLY, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        try:
            return os.read(fd, 65536).decode("utf-8", "replace")
        finally:
            os.close(fd)

    def mtime(self, name: str) -> float:
        return os.stat(name, dir_fd=self.fd).st_mtime

    def unlink(self, name: str) -> None:
        with suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def write_many(self, writes: Mapping[str, str]) -> None:
        """Write each file atomically: a flushed dot-named temp file, then a rename."""
        temps = self.prepare(writes)
        if len(temps) > SYNC_ALL_ABOVE:
            os.sync()
        self.commit(temps)

    def prepare(self, writes: Mapping[str, str]) -> list[tuple[str, str]]:
        """Temp files for `writes` ((temp, name) pairs); fsynced each when they are few
        (with many, the caller flushes them all at once with os.sync())."""
        fsync_each = len(writes) <= SYNC_ALL_ABOVE
        return [(self._temp(name, text, fsync_each), name) for name, text in writes.items()]

    def commit(self, temps: list[tuple[str, str]]) -> None:
        """Rename the prepared temp files into place, then flush the directory."""
        if not temps:
            return
        renamed = 0
        try:
            for temp, name in temps:
                os.replace(temp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
                renamed += 1
        finally:
            for temp, _name in temps[renamed:]:  # only after a failed rename
                self.unlink(temp)
        self.fsync()

    def _temp(self, name: str, text: str, fsync: bool) -> str:
        temp = f".{name}.{os.getpid()}.tmp"  # dot: dnsmasq's inotify ignores it
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=self.fd)
        try:
            os.fchmod(fd, 0o644)  # dnsmasq reads as nobody; the umask must not take that away
            os.write(fd, text.encode("utf-8"))
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return temp

    def fsync(self) -> None:
        os.fsync(self.fd)


def _write_atomic(path: Path, text: str) -> None:
    with _Dir(path.parent) as directory:
        directory.write_many({path.name: text})


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer at a time (the CLI and the hook's auto-enrol may both apply)."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
