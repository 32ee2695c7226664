"""`phoneprov apply`: the inventory → per-device files in dhcp-hostsdir / dhcp-optsdir.

Validation first (the whole inventory, every option computed), then write: a broken
inventory never touches what dnsmasq runs with. Each file is written as a dot-named temp
file (dnsmasq's inotify ignores those), made 0644 (dnsmasq reads as `nobody`), flushed to
disk and renamed into place. An unchanged file is not touched. A changed device's opts file
is renamed before its host file, so its new tag never points at options not loaded yet.
Never SIGHUP dnsmasq (DESIGN §3): removed devices get tombstones instead. A file goes by a
rename to a dot name, then unlink (a deleted name makes dnsmasq log `cannot read`).
Modes are set explicitly, whatever the umask: directories 0755, files 0644. A failed write
(disk full) removes its temp files and names the path; each apply first removes the temp
files of applies that died (`kill -9`), recognised by the PID in their name.
Many temp files are flushed with one `syncfs` of their filesystem (not `sync`: the whole
system), then renamed. A manifest (manifest.py) spares reading unchanged files back.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import Config
from ..core import dnsmasq_conf as conf
from ..core.inventory import Inventory
from ..core.layout import device_token
from ..site import full_inventory, resolve_settings, token_secret
from .applied import APPLIED_NAME, dump_applied, load_applied
from .bulk import create_new
from .fields import record_fields
from .fragdir import DIR_MODE, SYNC_ALL_ABOVE
from .fragdir import Dir as _Dir
from .inputs import inputs_digest
from .manifest import MANIFEST_NAME, Manifest

LOCK_FILE = ".phoneprov.lock"


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
        "config": str(config.source.absolute()),  # with [sync]: the appliance's own file
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
    """Every device's files, computed before anything is written (raises on any bad one).
    Each line is checked for the first device only: the others differ in MAC and token."""
    if settings.mode not in conf.PER_MAC_MODES:
        return {}
    files: dict[str, conf.DeviceFiles] = {}
    for mac in macs:
        token = device_token(secret, mac) if secret is not None else None
        options = conf.device_options(settings, token)
        files[mac] = conf.device_files(settings, mac, options, check=not files)
    return files


def apply(
    config: Config,
    settings: conf.DhcpSettings | None = None,
    inventory: Inventory | None = None,
    desired: Mapping[str, conf.DeviceFiles] | None = None,
) -> ApplyResult:
    """Write the files for `inventory` (default: the config's); `desired`, when the caller
    has already computed `plan(...)` for it, is written as it is (pass its `inventory` too,
    or no record of the applied fields is kept: fields.py). With neither, an apply whose
    inputs (inputs.py) and files are as the last one left them stops early."""
    settings = settings or resolve_settings(config)
    hostsdir, optsdir = config.dhcp.hostsdir, config.dhcp.optsdir
    for directory in (hostsdir, optsdir):
        make_dirs(directory)
    started = dnsmasq_started_at(config.dhcp.dnsmasq_pidfile)
    applied = dump_applied(applied_values(config, settings))
    inputs = ""
    if desired is None:
        secret = token_secret(config, settings)
        if inventory is None:
            inputs = inputs_digest(config, settings, secret)
            with _locked(hostsdir):
                devices = as_left(hostsdir, optsdir, inputs, started, applied)
            if devices is not None:
                return ApplyResult(unchanged=devices)
            inventory = full_inventory(config)
        desired = plan(settings, list(inventory.devices), secret)
    with _locked(hostsdir):
        result = write_fragments(hostsdir, optsdir, desired, started, inputs)
        _write_atomic(hostsdir / APPLIED_NAME, applied)
        record_fields(hostsdir, inventory)  # what `phoneprov plan` compares with
    return result


def as_left(
    hostsdir: Path, optsdir: Path, inputs: str, dnsmasq_started: float | None, applied: str
) -> int | None:
    """The number of devices when the last apply had these inputs and everything is as it
    left it (every file by the manifest, no temp file, no tombstone to drop, the hook's
    settings file); else None: the whole apply runs."""
    with _Dir(hostsdir) as hosts, _Dir(optsdir) as opts:
        manifest = Manifest.load(hosts.fd, head_only=True)
        if not inputs or manifest.inputs != inputs or hosts.read(APPLIED_NAME) != applied:
            return None
        hosts_files = hosts.as_recorded(manifest.states.get(hosts.ident), manifest.stamp)
        if (
            hosts_files is None
            or opts.as_recorded(manifest.states.get(opts.ident), manifest.stamp) is None
            or any(
                conf.tombstone_expired(hosts.mtime(name), dnsmasq_started)
                for name in manifest.tombstones
            )
        ):
            return None
        return hosts_files - len(manifest.tombstones)


# writing -------------------------------------------------------------------------------


def write_fragments(
    hostsdir: Path,
    optsdir: Path,
    desired: Mapping[str, conf.DeviceFiles],
    dnsmasq_started: float | None,
    inputs: str = "",
) -> ApplyResult:
    """Make the two directories say `desired`; touch only what differs. `inputs`: the
    digest of what `desired` was computed from, for the manifest ("" when unknown)."""
    result = ApplyResult()
    with _Dir(hostsdir) as hosts, _Dir(optsdir) as opts:
        hosts_now, opts_now = hosts.scan(), opts.scan()
        manifest = Manifest.load(hosts.fd)
        for directory in (hosts, opts):
            directory.known = manifest.sections.get(directory.ident, {})
            directory.stamp = manifest.stamp
        opts_writes: dict[str, str] = {}
        host_writes: dict[str, str] = {}
        for name, files in desired.items():
            host_same = name in hosts_now and hosts.holds(name, files.host)
            opts_same = name in opts_now and opts.holds(name, files.opts)
            if host_same and opts_same:
                result.unchanged += 1
                continue
            result.written.append(name)
            if not opts_same:
                opts_writes[name] = files.opts
            if not host_same:
                host_writes[name] = files.host
        for name in sorted(hosts_now - desired.keys()):
            if not hosts.holds(name, conf.tombstone(name)):
                current = hosts.read(name)
                if current is None or not conf.is_tombstone(current):
                    host_writes[name] = conf.tombstone(name)
                    result.removed.append(name)
                    continue
            if conf.tombstone_expired(hosts.mtime(name), dnsmasq_started):
                hosts.remove(name)
                result.dropped.append(name)
        created = _create_many_new(opts, hosts, opts_writes, host_writes, opts_now, hosts_now)
        # Temp files in both directories at once (creating files is the cost, and each
        # directory has its own lock), then the renames: opts first, so a host line never
        # names a tag whose options dnsmasq has not read.
        opts_temps, host_temps = _prepare_both((opts, opts_writes), (hosts, host_writes))
        if created or len(opts_temps) + len(host_temps) > SYNC_ALL_ABOVE:
            try:  # one flush of our filesystem(s) instead of an fsync per file
                hosts.syncfs()
                if opts.dev != hosts.dev:
                    opts.syncfs()
            except BaseException:
                opts.discard(opts_temps)
                hosts.discard(host_temps)
                raise
        opts.commit(opts_temps)
        hosts.commit(host_temps)
        for name in sorted(opts_now - desired.keys()):
            opts.remove(name)  # its tag is no longer set by any host line
        if result.dropped or opts_now - desired.keys():
            hosts.fsync()
            opts.fsync()
        tombstones = tuple(sorted(hosts_now - desired.keys() - set(result.dropped)))
        new = Manifest({d.ident: d.seen for d in (hosts, opts)}, 0, inputs, tombstones)
        _save_manifest(hosts, manifest, new)
    return result


def _create_many_new(
    opts: _Dir,
    hosts: _Dir,
    opts_writes: dict[str, str],
    host_writes: dict[str, str],
    opts_now: set[str],
    hosts_now: set[str],
) -> bool:
    """With many files to create (more than are fsynced one by one), create them in place
    (bulk.py), taking them out of `opts_writes`/`host_writes`; True when it did."""
    opts_new = {n: t for n, t in opts_writes.items() if n not in opts_now}
    host_new = {
        n: t
        for n, t in host_writes.items()
        if n not in hosts_now and (n in opts_new or n not in opts_writes)
    }
    if len(opts_new) + len(host_new) <= SYNC_ALL_ABOVE:
        return False
    for name in opts_new:
        del opts_writes[name]
    for name in host_new:
        del host_writes[name]
    left_opts, left_hosts = create_new(opts, hosts, opts_new, host_new)
    opts_writes.update(left_opts)
    host_writes.update(left_hosts)
    return True


def _save_manifest(at: _Dir, old: Manifest, new: Manifest) -> None:
    """Rewrite the manifest when what it says changed (never after a no-op apply). Not
    flushed: a stale or lost manifest only makes the next apply do the whole work."""
    if (old.sections, old.inputs, old.tombstones) == (new.sections, new.inputs, new.tombstones):
        return
    temp, _entry = at.temp(MANIFEST_NAME, new.dump(), fsync=False)
    try:
        os.replace(temp, MANIFEST_NAME, src_dir_fd=at.fd, dst_dir_fd=at.fd)
    except OSError:
        at.unlink(temp)
        raise


def _prepare_both(
    *jobs: tuple[_Dir, Mapping[str, str]],
) -> tuple[list[tuple[str, str]], ...]:
    """Temp files in each directory at once (creating files is the cost, and each directory
    has its own lock); when one fails, the other's temp files go too, then the error."""
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(directory.prepare, writes) for directory, writes in jobs]
    errors = [e for f in futures if (e := f.exception()) is not None]
    if errors:
        for (directory, _writes), future in zip(jobs, futures, strict=True):
            if future.exception() is None:
                directory.discard(future.result())
        raise errors[0]
    return tuple(f.result() for f in futures)


def make_dirs(path: Path) -> None:
    """`path` and its missing parents, made 0755 whatever the umask (dnsmasq reads as
    `nobody`); directories that exist keep the mode their admin gave them."""
    missing = []
    while not path.is_dir() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made meanwhile by someone else: theirs
            continue
        directory.chmod(DIR_MODE)


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
