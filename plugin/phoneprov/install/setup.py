"""`phoneprov setup`: a Debian box that runs dnsmasq becomes a provisioning appliance, in
steps that each say what they do and are skipped when already done (so a second run changes
nothing and says so); `--uninstall` removes what setup added, the admin's data only with
`--purge`.

What it makes (paths in `Layout`): the system user `phoneprov`; /etc/phoneprov with the
example config (its LAN interface filled in), inventory (root:phoneprov 0640: SIP passwords)
and templates, none of them ever overwritten; /var/lib/phoneprov with dnsmasq's two
directories (0755: dnsmasq reads them as `nobody`) and state/ (the service user's); the
dhcp-script bound to this install; the snippet in /etc/dnsmasq.d/; the systemd unit of
`phoneprov serve`, enabled and started when systemd runs, and those of `phoneprov admin`
(its socket enabled: the admin page starts on demand and exits when idle), and those of
`phoneprov sync` (its timer enabled only when [sync] repo is set; the first sync is run
then, since the configuration comes from the repository). Then `check` and
`apply`; dnsmasq is restarted only when asked (never reloaded: DESIGN §3), and `doctor`
reports at the end.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError
from ..site import RUNTIME_DIR

USER = "phoneprov"
UNIT = "phoneprov-http.service"
ADMIN_UNITS = ("phoneprov-admin.service", "phoneprov-admin.socket")  # `phoneprov admin`
ADMIN_SOCKET = "phoneprov-admin.socket"
SYNC_UNITS = ("phoneprov-sync.service", "phoneprov-sync.timer")  # `phoneprov sync`
SYNC_TIMER = "phoneprov-sync.timer"
SYNC_DIR_MODE = 0o2750
SOURCE = Path(__file__).resolve().parents[3]  # the tree conf/ and hooks/ ship in


@dataclass(frozen=True)
class Layout:
    etc: Path = Path("/etc/phoneprov")
    var: Path = Path("/var/lib/phoneprov")
    dnsmasq_d: Path = Path("/etc/dnsmasq.d")
    units: Path = Path("/etc/systemd/system")
    run: Path = RUNTIME_DIR  # serve makes it (its worker sockets); uninstall removes it

    @classmethod
    def under(cls, root: Path) -> Layout:
        """Every path in a directory of its own under `root` (tests)."""
        return cls(root / "etc", root / "var", root / "dnsmasq.d", root / "units", root / "run")

    @property
    def config(self) -> Path:
        return self.etc / "phoneprov.toml"

    @property
    def hook(self) -> Path:
        return self.var / "dnsmasq-dhcp-script"

    @property
    def snippet(self) -> Path:
        return self.dnsmasq_d / "phoneprov.conf"

    @property
    def unit(self) -> Path:
        return self.units / UNIT

    @property
    def admin_units(self) -> tuple[Path, ...]:
        return tuple(self.units / name for name in ADMIN_UNITS)

    @property
    def sync_units(self) -> tuple[Path, ...]:
        return tuple(self.units / name for name in SYNC_UNITS)

    @property
    def sync(self) -> Path:
        """[sync] dir's default: root's, readable by the service user's group (serve reads
        the live revision), set-group-ID so each revision's files get that group."""
        return self.var / "sync"


@dataclass
class Step:
    """One thing setup does: `needed()` says whether it is still to do."""

    what: str
    needed: Callable[[], bool]
    do: Callable[[], None]


@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def run(steps: list[Step], dry_run: bool, say: Callable[[str], None]) -> Report:
    """Each step that is needed is done (with `dry_run`, only said)."""
    report = Report()
    for step in steps:
        if step.needed():
            say(f"{'would' if dry_run else 'do':>5}  {step.what}")
            if not dry_run:
                step.do()
            report.done.append(step.what)
        else:
            say(f"{'ok':>5}  {step.what}")
            report.already.append(step.what)
    return report


# setting up ----------------------------------------------------------------------------


def setup_steps(layout: Layout, interface: str, command: str) -> list[Step]:
    """The steps, in order; `command` is how systemd starts phoneprov (this install's)."""
    conf = SOURCE / "conf"
    state = layout.var / "state"
    inventory = layout.etc / "inventory.toml"
    steps = [
        Step(f"system user {USER}", lambda: not _user_exists(USER), lambda: _add_user(layout)),
        _directory(layout.etc, 0o755),
        _directory(layout.var, 0o755),
        _directory(layout.var / "dnsmasq" / "hosts", 0o755),
        _directory(layout.var / "dnsmasq" / "opts", 0o755),
        _directory(state, 0o750, USER),
        _admin_file(
            layout.config,
            lambda: example_config(interface, layout),
            0o644,
            None,
            f"the example, server.interface = {interface}",
        ),
        _admin_file(
            inventory,
            lambda: (conf / "inventory.toml").read_text(),
            0o640,
            USER,
            f"the example; mode 0640, group {USER}: it holds SIP passwords",
        ),
        Step(
            f"{layout.etc / 'templates'} (the shipped templates)",
            lambda: not (layout.etc / "templates").exists(),
            lambda: _copy_tree(conf / "templates", layout.etc / "templates"),
        ),
        Step(
            f"{layout.sync}/ mode 2750, group {USER} (phoneprov sync's revisions)",
            lambda: (
                not layout.sync.is_dir() or _mode_or_group_differs(layout.sync, SYNC_DIR_MODE, USER)
            ),
            lambda: _make_group_dir(layout.sync, SYNC_DIR_MODE, USER),
        ),
    ]
    syncs = _syncs(layout)  # the admin set [sync] repo (never the example a first run writes)
    if syncs:  # before anything reads the configuration: it comes from the repository
        steps.append(
            Step(
                "phoneprov sync: the first revision of [sync] repo",
                lambda: not _synced(layout),
                lambda: _first_sync(command, layout.config),
            )
        )
    steps += [
        _generated(layout.hook, lambda: _hook_text(layout), 0o755, "the dnsmasq dhcp-script"),
        _generated(layout.snippet, lambda: _snippet_text(layout), 0o644, "the dnsmasq snippet"),
        _unit(layout.unit, command, "serve", "the systemd unit"),
    ]
    steps += [_unit(p, command, "admin", "the admin page's unit") for p in layout.admin_units]
    steps += [_unit(p, command, "sync", "sync's unit") for p in layout.sync_units]
    if systemd_runs():
        steps.append(Step(f"systemctl enable --now {UNIT}", _unit_stopped, _enable_unit))
        steps.append(
            Step(
                f"systemctl enable --now {ADMIN_SOCKET} (the admin page, on demand)",
                lambda: _unit_stopped(ADMIN_SOCKET),
                lambda: _systemctl("enable", "--now", ADMIN_SOCKET),
            )
        )
    if systemd_runs() and syncs:
        steps.append(
            Step(
                f"systemctl enable --now {SYNC_TIMER} ([sync] repo is set)",
                lambda: _unit_stopped(SYNC_TIMER),
                lambda: _systemctl("enable", "--now", SYNC_TIMER),
            )
        )
    return steps


def _syncs(layout: Layout) -> bool:
    """The appliance's config sets [sync] repo: its configuration comes from Git."""
    from ..config import load_sync_settings

    return layout.config.exists() and load_sync_settings(layout.config).enabled


def _first_sync(command: str, config: Path) -> None:
    """`phoneprov sync` before anything reads the configuration (it lives in the repository)."""
    argv = [*shlex.split(command), "sync", "-c", str(config)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode == 2:  # 1: a phone did not take its check-sync; set up all the same
        raise ConfigError(f"the first `phoneprov sync` failed:\n{done.stderr.strip()}")


def _synced(layout: Layout) -> bool:
    from ..config import load_sync_settings

    return os.path.lexists(load_sync_settings(layout.config).live)


def example_config(interface: str, layout: Layout) -> str:
    """conf/phoneprov.toml with `interface` as server.interface, its /var/lib/phoneprov paths
    in `layout.var`."""
    text = (SOURCE / "conf" / "phoneprov.toml").read_text()
    text = text.replace('"/var/lib/phoneprov/', f'"{layout.var}/')
    return re.sub(r'(?m)^interface = "[^"]*"', f'interface = "{interface}"', text, count=1)


def unit_text(name: str, command: str, subcommand: str) -> str:
    """conf/systemd's unit `name`, its service starting `command subcommand`."""
    text = (SOURCE / "conf" / "systemd" / name).read_text()
    return re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={command} {subcommand}", text)


def _unit(path: Path, command: str, subcommand: str, what: str) -> Step:
    return _generated(path, lambda: unit_text(path.name, command, subcommand), 0o644, what)


def detect_interface() -> list[str]:
    """Interfaces with an IPv4 address other than loopback: the LAN candidates."""
    from ..netif import interface_ipv4

    found = []
    for _index, name in socket.if_nameindex():
        try:
            address = interface_ipv4(name)
        except ConfigError:
            continue
        if not address.startswith("127."):
            found.append(name)
    return found


def _hook_text(layout: Layout) -> str:
    from ..config import load_config
    from ..dnsmasq.snippet import hook_text

    return hook_text(load_config(layout.config))


def _snippet_text(layout: Layout) -> str:
    from ..config import load_config
    from ..dnsmasq.snippet import snippet_text

    return snippet_text(load_config(layout.config), layout.hook, by="phoneprov setup")


# uninstalling --------------------------------------------------------------------------


def uninstall_steps(layout: Layout, purge: bool) -> list[Step]:
    """Remove what setup added; with `purge` the admin's data and the user too."""
    steps = []
    if systemd_runs():
        for unit in (SYNC_TIMER, ADMIN_SOCKET, ADMIN_UNITS[0], UNIT):
            steps.append(_disabled(unit, layout.units / unit))
    steps += [
        *(_removed(path, "sync's systemd unit") for path in layout.sync_units),
        *(_removed(path, "the admin page's systemd unit") for path in layout.admin_units),
        _removed(layout.unit, "the systemd unit"),
        _removed(layout.snippet, "the dnsmasq snippet"),
        _removed(layout.hook, "the dnsmasq dhcp-script"),
        _removed(layout.var / "dnsmasq", "dnsmasq's per-phone files"),
        _removed(layout.run, "serve's worker sockets"),
    ]
    if purge:
        steps += [
            _removed(layout.etc, "config, inventory and templates"),
            _removed(layout.var, "state: leases, fetches, enrolled phones, the secret"),
            Step(f"system user {USER} removed", lambda: _user_exists(USER), _del_user),
        ]
    return steps


# the steps' parts ----------------------------------------------------------------------


def _directory(path: Path, mode: int, owner: str | None = None) -> Step:
    whose = f", owner {owner}" if owner else ""
    return Step(
        f"{path}/ mode {mode:04o}{whose}",
        lambda: not path.is_dir() or _mode_or_group_differs(path, mode, owner, owner),
        lambda: _make_dir(path, mode, owner),
    )


def _make_dir(path: Path, mode: int, owner: str | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _set_mode(path, mode, owner, owner)


def _make_group_dir(path: Path, mode: int, group: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _set_mode(path, mode, None, group)


def _admin_file(
    path: Path, text: Callable[[], str], mode: int, group: str | None, what: str
) -> Step:
    """A file the admin owns: written only when missing; its mode (and group) kept right."""

    def make() -> None:
        if not path.exists():
            _write_new(path, text(), mode, group)
        _set_mode(path, mode, None, group)

    return Step(
        f"{path} ({what})",
        lambda: not path.exists() or _mode_or_group_differs(path, mode, group),
        make,
    )


def _generated(path: Path, text: Callable[[], str], mode: int, what: str) -> Step:
    """A file setup owns: (re)written whenever it differs from what setup would write."""

    def differs() -> bool:
        try:
            return path.read_text() != text() or path.stat().st_mode & 0o7777 != mode
        except FileNotFoundError:
            return True

    def write() -> None:
        _write_atomic(path, text(), mode)
        if path.suffix in (".service", ".socket", ".timer") and systemd_runs():
            _systemctl("daemon-reload")

    return Step(f"{path} ({what})", differs, write)


def _disabled(unit: str, path: Path) -> Step:
    return Step(
        f"systemctl disable --now {unit}",
        lambda: path.exists() and _unit_known(unit),
        lambda: _systemctl("disable", "--now", unit),
    )


def _removed(path: Path, what: str) -> Step:
    return Step(f"remove {path} ({what})", path.exists, lambda: _remove(path))


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    if path.suffix in (".service", ".timer") and systemd_runs():
        _systemctl("daemon-reload")


def _write_new(path: Path, text: str, mode: int, group: str | None = None) -> None:
    """A file the admin owns from now on: written only when it does not exist."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    _set_mode(path, mode, None, group)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.setup.tmp")
    temp.write_text(text)
    temp.chmod(mode)
    os.replace(temp, path)


def _mode_or_group_differs(
    path: Path, mode: int, group: str | None, owner: str | None = None
) -> bool:
    st = path.stat()
    wrong_group = group is not None and _gid(group) not in (None, st.st_gid)
    wrong_owner = owner is not None and _uid(owner) not in (None, st.st_uid)
    return st.st_mode & 0o7777 != mode or wrong_group or wrong_owner


def _set_mode(path: Path, mode: int, owner: str | None = None, group: str | None = None) -> None:
    uid, gid = _uid(owner) if owner else None, _gid(group) if group else None
    os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    path.chmod(mode)


def _uid(name: str) -> int | None:
    try:
        return pwd.getpwnam(name).pw_uid
    except KeyError:
        return None


def _gid(name: str) -> int | None:
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def _user_exists(name: str) -> bool:
    return _uid(name) is not None


def _add_user(layout: Layout) -> None:
    _command(
        "useradd", "--system", "--user-group", "--home-dir", str(layout.var),
        "--no-create-home", "--shell", "/usr/sbin/nologin", USER,
    )  # fmt: skip


def _del_user() -> None:
    _command("userdel", USER)
    if _gid(USER) is not None:  # a group left when it was not the user's private one
        _command("groupdel", USER)


def systemd_runs() -> bool:
    """systemd is PID 1 here (not in a chroot, a container without it, sysvinit)."""
    return Path("/run/systemd/system").is_dir()


def _unit_stopped(unit: str = UNIT) -> bool:
    enabled = subprocess.run(["systemctl", "is-enabled", "--quiet", unit], check=False)
    active = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False)
    return enabled.returncode != 0 or active.returncode != 0


def _enable_unit() -> None:
    _systemctl("enable", "--now", UNIT)


def _unit_known(unit: str = UNIT) -> bool:
    shown = subprocess.run(
        ["systemctl", "show", "--property=LoadState", "--value", unit],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return shown.stdout.strip() not in ("", "not-found")


def restart_dnsmasq() -> None:
    """Check dnsmasq's configuration as Debian's unit does, then restart it (never SIGHUP:
    DESIGN §3)."""
    checker = Path("/etc/init.d/dnsmasq")
    if checker.exists():
        _command(str(checker), "checkconfig")
    _systemctl("restart", "dnsmasq")


def _systemctl(*args: str) -> None:
    _command("systemctl", *args)


def _command(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(f"`{' '.join(argv)}` failed: {why[-1] if why else done.returncode}")
