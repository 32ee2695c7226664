"""`phoneprov doctor`'s rules: what was observed on the appliance in, findings out.

Pure: the adapter (`phoneprov.doctor`) reads /proc, files, the database and the network into
`Facts`; `diagnose` turns them into `Finding`s, each problem with the command that fixes it.
The parsers of dnsmasq's command line and config lines the adapter needs are in
`core.dnsmasq_cmdline`.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

LEVELS = ("ok", "warn", "fail")
SIGHUP_CRASHES = ("2.90",)  # verified here (DESIGN §3); other versions: not verified


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "warn" | "fail"
    topic: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class DnsmasqProcess:
    pid: int
    uid: int | None
    directives: tuple[tuple[str, str, str], ...]  # (where, key, value), includes followed

    def values(self, key: str) -> list[str]:
        return [value for _where, k, value in self.directives if k == key]

    def where(self, key: str, value: str) -> str:
        return next((w for w, k, v in self.directives if k == key and v == value), "")


@dataclass(frozen=True)
class PathState:
    """One file or directory as `nobody` (dnsmasq after start) and root see it."""

    path: str
    exists: bool
    is_dir: bool = False
    blocked_at: str = ""  # first component `nobody` cannot pass ("" = readable)
    unreadable: tuple[str, ...] = ()  # for a directory: entries `nobody` cannot read
    entries: int = 0
    executable: bool = False
    interpreter: str = ""  # a script's #! program
    interpreter_ok: bool = True


@dataclass(frozen=True)
class DeviceCheck:
    mac: str
    type: str
    source: str  # as `phoneprov options` says it
    options: dict[str, object]  # "42", "43", "66", "67" as `phoneprov options --json`
    url: str | None  # what the phone fetches
    applied: bool | None
    fetched: str = ""  # the URL the doctor fetched ("" = not fetched)
    files: int = 0
    size: int = 0
    error: str = ""  # "" when the fetch chain succeeded
    status: int = 0  # HTTP status of the failed fetch (0: no answer)


@dataclass(frozen=True)
class SyncFacts:
    """`phoneprov sync`'s record, when [sync] repo is set."""

    live: str  # "<sha> '<subject>' (committed ...); synced ... by ..."; "" none
    applied: bool
    pinned: bool
    refused: str = ""  # "<sha>: <reason>" of a revision refused since the live one was taken


@dataclass(frozen=True)
class Facts:
    hostsdir: str
    per_mac: bool  # the dhcp mode uses hostsdir/optsdir
    security_mode: str
    dnsmasq: tuple[DnsmasqProcess, ...] = ()  # every dnsmasq running
    version: str | None = None
    dirs: tuple[PathState, ...] = ()  # hostsdir, optsdir
    hook: PathState | None = None
    state: str = ""  # the state database's path
    state_exists: bool = True
    state_error: str | None = None  # None: a write transaction worked (or it can be created)
    listen: str = ""
    http_error: str | None = None  # None: TCP connect worked
    ntp: tuple[str, ...] = ()
    devices: tuple[DeviceCheck, ...] = field(default_factory=tuple)
    inventory: str = ""  # it holds SIP passwords
    world_readable: tuple[str, ...] = ()  # inventory files every local user may read
    sync: SyncFacts | None = None  # None: [sync] repo not set


def blocked_for_others(chain: Sequence[tuple[str, int]]) -> str:
    """The first path in `chain` (root first, the target last, with st_mode) that a user who
    is neither owner nor group cannot pass or read; "" when all are fine.

    >>> blocked_for_others([("/", 0o40755), ("/var", 0o40700), ("/var/h", 0o40755)])
    '/var'
    >>> blocked_for_others([("/", 0o40755), ("/f", 0o100600)])
    '/f'
    """
    for i, (path, mode) in enumerate(chain):
        last = i == len(chain) - 1
        need = stat.S_IXOTH if not last else stat.S_IROTH
        if last and stat.S_ISDIR(mode):
            need |= stat.S_IXOTH
        if mode & need != need:
            return path
    return ""


# the rules -----------------------------------------------------------------------------


def ours(facts: Facts) -> list[DnsmasqProcess]:
    """The running dnsmasq processes whose configuration includes our hostsdir."""
    return [p for p in facts.dnsmasq if facts.hostsdir in p.values("dhcp-hostsdir")]


def diagnose(facts: Facts) -> list[Finding]:
    return [
        *_dnsmasq(facts),
        *_dirs(facts),
        *_inventory(facts),
        *_hook(facts),
        *_state(facts),
        *_http(facts),
        *_ntp(facts),
        *_sync(facts),
        *(f for d in facts.devices for f in device_findings(d, facts.security_mode)),
    ]


def _dnsmasq(facts: Facts) -> list[Finding]:
    t, out = "dnsmasq", []
    version = facts.version or "(version unknown)"
    running = ours(facts)
    if not facts.dnsmasq:
        out.append(Finding("fail", t, "dnsmasq is not running", "systemctl start dnsmasq"))
    elif not running:
        pids = ", ".join(str(p.pid) for p in facts.dnsmasq)
        out.append(
            Finding(
                "fail",
                t,
                f"dnsmasq runs (pid {pids}) but none includes the phoneprov snippet "
                f"(no dhcp-hostsdir={facts.hostsdir})",
                "phoneprov dnsmasq-snippet > /etc/dnsmasq.d/phoneprov.conf && "
                "systemctl restart dnsmasq",
            )
        )
    for p in running:
        who = "root" if p.uid == 0 else f"uid {p.uid}" if p.uid is not None else "unknown user"
        where = p.where("dhcp-hostsdir", facts.hostsdir)
        out.append(
            Finding("ok", t, f"dnsmasq {version} running (pid {p.pid}, {who}); snippet in {where}")
        )
    if facts.per_mac and (running or not facts.dnsmasq):
        crashes = facts.version in SIGHUP_CRASHES
        out.append(
            Finding(
                "warn",
                t,
                "never `systemctl reload dnsmasq` or SIGHUP: "
                + (
                    f"dnsmasq {version} crashes on reload once a phone matched a host line "
                    "from dhcp-hostsdir"
                    if crashes
                    else f"dnsmasq 2.90 crashes on reload with dhcp-hostsdir ({version}: "
                    "not verified)"
                ),
                "after changing dnsmasq's own configuration: systemctl restart dnsmasq",
            )
        )
    return out


def _dirs(facts: Facts) -> list[Finding]:
    t, out = "files", []
    as_root = any(p.uid == 0 for p in ours(facts))
    for d in facts.dirs:
        if not d.exists or not d.is_dir:
            out.append(
                Finding(
                    "fail" if facts.per_mac else "warn",
                    t,
                    f"{d.path} does not exist" if not d.exists else f"{d.path} is no directory",
                    f"install -d -m 0755 {d.path} && phoneprov apply && systemctl restart dnsmasq",
                )
            )
        elif d.blocked_at and not as_root:
            out.append(
                Finding(
                    "fail",
                    t,
                    f"{d.path}: dnsmasq (user nobody) cannot read it: {d.blocked_at} "
                    "is not readable/searchable by others",
                    f"chmod o+rx {d.blocked_at}"
                    if d.blocked_at != d.path
                    else f"chmod 0755 {d.path}",
                )
            )
        elif d.unreadable and not as_root:
            shown = " ".join(d.unreadable[:5]) + (" ..." if len(d.unreadable) > 5 else "")
            out.append(
                Finding(
                    "fail",
                    t,
                    f"{d.path}: {len(d.unreadable)} file(s) dnsmasq (nobody) cannot read: {shown}",
                    f"chmod 0644 {d.path}/*",
                )
            )
        else:
            out.append(
                Finding("ok", t, f"{d.path}: {d.entries} file(s), readable by dnsmasq (nobody)")
            )
    return out


def _inventory(facts: Facts) -> list[Finding]:
    t, why = "inventory", "it holds SIP passwords"
    if not facts.world_readable:
        ok = f"{facts.inventory}: not readable by other users ({why})"
        return [Finding("ok", t, ok)] if facts.inventory else []
    return [
        Finding("warn", t, f"{p} is readable by every user, and {why}", f"chmod o-rwx {p}")
        for p in facts.world_readable
    ]


def _hook(facts: Facts) -> list[Finding]:
    t, h = "hook", facts.hook
    if h is None:
        level = "fail" if facts.security_mode == "lease" else "warn"
        why = "lease mode serves a device only to its lease's IP" if level == "fail" else ""
        return [
            Finding(
                level,
                t,
                "no dhcp-script in dnsmasq's configuration: leases are not recorded"
                + (f" ({why})" if why else ""),
                "use the snippet `phoneprov dnsmasq-snippet` prints; systemctl restart dnsmasq",
            )
        ]
    if not h.exists:
        return [Finding("fail", t, f"dhcp-script {h.path} does not exist", _HOOK_FIX)]
    if not h.executable:
        return [
            Finding("fail", t, f"dhcp-script {h.path} is not executable", f"chmod 0755 {h.path}")
        ]
    if not h.interpreter_ok:
        missing = f"dhcp-script {h.path}: its interpreter {h.interpreter} is missing"
        return [Finding("fail", t, missing, _HOOK_FIX)]
    return [Finding("ok", t, f"dhcp-script {h.path} is executable")]


_HOOK_FIX = (
    "phoneprov dnsmasq-snippet --hook /usr/local/lib/phoneprov/dnsmasq-dhcp-script "
    "> /etc/dnsmasq.d/phoneprov.conf && systemctl restart dnsmasq"
)


def _state(facts: Facts) -> list[Finding]:
    if facts.state_error is None and not facts.state_exists:
        return [Finding("ok", "state", f"{facts.state} not created yet; its directory is writable")]
    if facts.state_error is None:
        return [Finding("ok", "state", f"{facts.state} is writable")]
    return [
        Finding(
            "fail",
            "state",
            f"{facts.state}: {facts.state_error}",
            f"the hook (root) and phoneprov serve/pnp must write it and its directory: "
            f"check owner and mode of {facts.state} and its directory",
        )
    ]


def _http(facts: Facts) -> list[Finding]:
    if facts.http_error is None:
        return [Finding("ok", "http", f"phoneprov serve answers on {facts.listen}")]
    return [
        Finding(
            "fail",
            "http",
            f"nothing accepts connections on {facts.listen}: {facts.http_error}",
            "systemctl start phoneprov-http (or `phoneprov serve`); server.listen must match",
        )
    ]


def _ntp(facts: Facts) -> list[Finding]:
    if facts.ntp:
        return [Finding("ok", "ntp", f"option 42 offers {', '.join(facts.ntp)}")]
    return [
        Finding(
            "warn",
            "ntp",
            "no NTP server offered (dhcp.ntp = []): a phone without valid time does not provision",
            'set dhcp.ntp = ["auto"] (or a server address), then phoneprov apply',
        )
    ]


def _sync(facts: Facts) -> list[Finding]:
    t, sync = "sync", facts.sync
    if sync is None:
        return []
    if not sync.live:
        return [Finding("fail", t, "no revision synced yet", "phoneprov sync")]
    out = [Finding("ok", t, f"live {sync.live}")]
    if not sync.applied:
        out.append(Finding("fail", t, "the live revision is not applied", "phoneprov sync"))
    if sync.pinned:
        out.append(
            Finding(
                "warn",
                t,
                "pinned by `sync --to`: the timer takes no new commit",
                "phoneprov sync --to latest",
            )
        )
    if sync.refused:
        out.append(
            Finding(
                "warn",
                t,
                f"refused {sync.refused}",
                "fix it in the repository and commit (`phoneprov sync --status` says all)",
            )
        )
    return out


def device_findings(d: DeviceCheck, security_mode: str) -> list[Finding]:
    t = f"device {d.mac} {d.type}".rstrip()
    shown = " ".join(
        f"{code}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for code, v in d.options.items()
        if v is not None
    )
    if not shown:
        return [Finding("fail", t, f"gets no options: {d.source}", "add it to the inventory")]
    out = [Finding("ok", t, f"options from {d.source}: {shown}")]
    if d.applied is False:
        out.append(
            Finding(
                "warn", t, "dnsmasq's files for it differ from the inventory", "phoneprov apply"
            )
        )
    out.append(Finding("ok" if d.url else "fail", t, f"url {d.url or '(none)'}"))
    if not d.fetched:
        return out
    via = f" (fetched as {d.fetched})" if d.fetched != d.url else ""
    if not d.error:
        out.append(Finding("ok", t, f"files ok: {d.files} file(s), {d.size} bytes{via}"))
    else:
        out.append(
            Finding("fail", t, f"fetch failed: {d.error}{via}", _fetch_fix(d, security_mode))
        )
    return out


def _fetch_fix(d: DeviceCheck, security_mode: str) -> str:
    if d.status == 0:
        return "is phoneprov serve running and reachable at option 66's host and port?"
    if d.status == 403:
        secret = " and the secret file" if security_mode != "open" else ""
        return f"the server refused it: check the inventory serve loaded{secret} (serve's log)"
    if d.status == 404:
        return f"phoneprov render {d.mac} --list; check the device's profile and templates"
    if d.status >= 500:
        return f"a template failed: phoneprov render {d.mac} (serve's log names template:line)"
    return f"phoneprov simulate --mac {d.mac} shows the phone's steps"
