"""Register a phone's SIP identities with a real user agent: Debian's `baresip`, headless.

baresip runs in the phone's namespace, bound to the phone's address, with a throwaway config
directory (only the `account` module: no audio, video or console), one `accounts` line per
active identity. Its output is parsed per account (baresip 1.0 flushes every line):
`201@lab.test: {0/UDP/v4} 200 OK (server) [1 binding]` on success,
`reg: sip:201@lab.test: 401 Unauthorized (server)` once it gives up. On SIGTERM baresip
unregisters (REGISTER with expires 0) before it exits, so it leaves no binding behind.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from ..core.errors import InputError
from .netns import call_in_netns
from .pnp_client import interface_info
from .process import LineProcess, ProcessError

BINARY = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"  # Debian's baresip-core
SIP_PORT = 5060
REGISTER_TIMEOUT = 10.0
STOP_TIMEOUT = 2.0  # after SIGTERM baresip unregisters, then exits
PENDING_GRACE = 0.3  # the same, when a REGISTER is still unanswered (LAN round trips: ms)
KILL_AFTER = 2.0  # after the second SIGTERM (it exits at once), before SIGKILL
LAN_IF = "eth0"
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_UNQUOTABLE = re.compile(r'["\\\x00-\x1f\x7f]')  # cannot go inside "…" in an accounts line
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_OK = re.compile(r"^(?P<user>[^@\s]+)@(?P<host>[^:\s]+): \{[^}]*\} (?P<code>\d{3}) (?P<rest>.*)$")
_FAIL = re.compile(r"^reg: sips?:(?P<user>[^@\s]+)@(?P<host>[^:;>\s]+)\S*: (?P<rest>.*)$")
_CODE = re.compile(r"^(?P<code>\d{3}) (?P<reason>.*?)(?: \((?P<server>.*)\))?$")
_BINDINGS = re.compile(r" \[\d+ bindings?\]$")
_HINTS = {
    401: "wrong password (or user name)?",
    407: "wrong password (or user name)?",
    403: "forbidden: wrong domain, or this account may not register?",
    404: "the registrar does not know this user or domain",
    408: "the registrar timed out",
    480: "the registrar is temporarily unavailable",
    503: "the registrar is unavailable",
}


class RegisterError(ProcessError):
    """baresip is missing, could not start, or died before it reported every account."""


@dataclass(frozen=True)
class SipIdentity:
    """One SIP account of a phone; `register_interval` is in minutes (phone settings)."""

    index: int
    username: str
    password: str
    registrar: str
    port: int = SIP_PORT
    domain: str = ""
    display_name: str = ""
    register_interval: int = 30
    active: bool = True

    @property
    def host(self) -> str:
        """The AOR's host: the domain, or the registrar when no domain is set."""
        return self.domain or self.registrar

    @property
    def aor(self) -> str:
        port = f":{self.port}" if not self.domain and self.port != SIP_PORT else ""
        return f"sip:{self.username}@{self.host}{port}"

    def check(self) -> None:
        """InputError unless baresip's accounts line can carry every value as given."""
        where = f"SIP identity {self.index}"
        if not _USERNAME.match(self.username):
            raise InputError(f"{where}: user name must be [A-Za-z0-9._~+-]: {self.username!r}")
        if not self.password or _UNQUOTABLE.search(self.password):
            raise InputError(f"{where}: password empty or with a quote, backslash or control")
        if _UNQUOTABLE.search(self.display_name):
            raise InputError(f"{where}: display name with a quote, backslash or control")
        for name, value in (("registrar", self.registrar), ("domain", self.domain)):
            if (value or name == "registrar") and not _HOST.match(value):
                raise InputError(f"{where}: {name} is not a host name or address: {value!r}")
        if not 0 < self.port < 65536:
            raise InputError(f"{where}: not a port: {self.port}")
        if self.register_interval < 1:
            raise InputError(f"{where}: register interval must be >= 1 minute")

    def account_line(self) -> str:
        """This identity as a line of baresip's `accounts` file."""
        name = f'"{self.display_name}" ' if self.display_name else ""
        line = f'{name}<{self.aor}>;auth_pass="{self.password}"'
        if self.domain and self.domain.lower() != self.registrar.lower():
            line += f';outbound="sip:{self.registrar}:{self.port}"'
        return f"{line};regint={self.register_interval * 60}"


@dataclass(frozen=True)
class RegisterResult:
    """The REGISTER outcome of one identity: `status` "200 OK", "401 Unauthorized", "timeout"…"""

    index: int
    aor: str
    ok: bool
    status: str
    detail: str


def render_config(local_ip: str, local_port: int = SIP_PORT) -> str:
    """baresip's `config`: listen on the phone's address, load nothing but the accounts."""
    return (
        "# written by phoneprov.phone.register: headless, REGISTER only\n"
        "poll_method\t\tepoll\n"
        f"sip_listen\t\t{local_ip}:{local_port}\n"
        f"module_path\t\t{MODULE_PATH}\n"
        "module_app\t\taccount.so\n"
    )


@dataclass(frozen=True)
class Outcome:
    """One REGISTER outcome line of baresip: whose, the SIP code (None: no answer), status."""

    user: str
    host: str
    code: int | None
    status: str  # "200 OK", "401 Unauthorized", or baresip's error ("Connection timed out")
    server: str = ""  # the registrar's Server header, when it sent one

    @property
    def key(self) -> tuple[str, str]:
        return self.user, self.host.lower()

    def result(self, identity: SipIdentity) -> RegisterResult:
        """This outcome as the identity's result, with a reason a person can act on."""
        where = f"the registrar {identity.registrar}:{identity.port}"
        server = f" ({self.server})" if self.server else ""
        ok = self.code is not None and 200 <= self.code < 300
        if ok:
            detail = f"registered with {where}{server}"
        elif self.code is None:
            detail = f"no usable answer from {where}: {self.status}"
        else:
            hint = _HINTS.get(self.code, self.status)
            detail = f"{self.code} from {where}{server}: {hint}"
        return RegisterResult(identity.index, identity.aor, ok, self.status, detail)


def parse_outcome(line: str) -> Outcome | None:
    """The REGISTER outcome in one line of baresip's output, or None.

    >>> parse_outcome("reg: sip:201@lab.test: 401 Unauthorized (kamailio (5.6.3))").status
    '401 Unauthorized'
    >>> parse_outcome("201@lab.test: {0/UDP/v4} 200 OK (kamailio) [1 binding]").server
    'kamailio'
    """
    line = _ANSI.sub("", line).strip()
    match = _OK.match(line) or _FAIL.match(line)
    if not match:
        return None
    rest = _BINDINGS.sub("", match["rest"])
    if "code" in match.groupdict():
        rest = f"{match['code']} {rest}"
    coded = _CODE.match(rest)
    if not coded:  # a transport error ("Connection timed out", …)
        return Outcome(match["user"], match["host"], None, rest)
    status = f"{coded['code']} {coded['reason']}".strip()
    return Outcome(match["user"], match["host"], int(coded["code"]), status, coded["server"] or "")


class UaPlace(TypedDict, total=False):
    """Where baresip runs in the phone: `iface`'s address (unless `local_ip`), `local_port`."""

    iface: str
    local_ip: str | None
    local_port: int


def outcomes(lines: Iterable[str]) -> dict[tuple[str, str], Outcome]:
    """The first final REGISTER outcome per account (`Outcome.key`) in baresip's output."""
    found: dict[tuple[str, str], Outcome] = {}
    for line in lines:
        outcome = parse_outcome(line)
        if outcome is not None:
            found.setdefault(outcome.key, outcome)  # the first final answer counts
    return found


class Baresip(LineProcess):
    """One baresip for a phone's identities: `start()`, `wait(timeout)` → results, `stop()`.

    `lines` is everything it printed so far, colour codes removed.
    """

    name = "baresip"
    error = RegisterError

    def __init__(
        self,
        netns: str | None,
        identities: Sequence[SipIdentity],
        *,
        iface: str = LAN_IF,
        local_ip: str | None = None,
        local_port: int = SIP_PORT,
        binary: str = BINARY,
    ) -> None:
        super().__init__(netns)
        self.identities = [i for i in identities if i.active]
        keys: set[tuple[str, str]] = set()
        for identity in self.identities:
            identity.check()
            key = (identity.username, identity.host.lower())
            if key in keys:
                raise InputError(f"SIP identity {identity.index}: {identity.aor} given twice")
            keys.add(key)
        self.iface = iface
        self.local_ip = local_ip
        self.local_port = local_port
        self.binary = binary
        self.confdir: Path | None = None

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> Baresip:
        """Write the throwaway config dir and start baresip in the namespace."""
        self._unstarted()
        if self.local_ip is None:
            self.local_ip = call_in_netns(self.netns, interface_info, self.iface)[0]
        try:
            ipaddress.IPv4Address(self.local_ip)
        except ValueError as exc:
            raise InputError(f"the phone's SIP address must be IPv4: {self.local_ip!r}") from exc
        self.confdir = Path(tempfile.mkdtemp(prefix="phoneprov-ua-"))
        (self.confdir / "config").write_text(render_config(self.local_ip, self.local_port))
        lines = "".join(f"{i.account_line()}\n" for i in self.identities)
        accounts = self.confdir / "accounts"
        accounts.touch(mode=0o600)  # carries passwords
        accounts.write_text(lines)
        try:
            self.spawn([self.binary, "-f", str(self.confdir)])
        except RegisterError:
            self.stop()
            raise
        return self

    def wait(self, timeout: float = REGISTER_TIMEOUT) -> list[RegisterResult]:
        """Each active identity's outcome (input order); "timeout" for those without one."""
        wanted = {(i.username, i.host.lower()) for i in self.identities}

        def complete(lines: list[str]) -> dict[tuple[str, str], Outcome] | None:
            found = outcomes(lines)
            return found if wanted <= found.keys() else None

        found = self.wait_for(complete, timeout, "before every account registered")
        if found is None:  # timed out: what came so far
            found = outcomes(self.lines)
        results = []
        for identity in self.identities:
            outcome = found.get((identity.username, identity.host.lower()))
            if outcome is not None:
                results.append(outcome.result(identity))
                continue
            where = f"the registrar {identity.registrar}:{identity.port}"
            detail = f"no final answer from {where} within {timeout:g} s: is it up, reachable?"
            results.append(RegisterResult(identity.index, identity.aor, False, "timeout", detail))
        return results

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID (baresip unregisters), again after `timeout`, then SIGKILL; remove
        the config. A REGISTER still unanswered would hold baresip ~32 s: then wait briefly."""
        pending = len(outcomes(self.lines)) < len(self.identities)
        grace = min(timeout, PENDING_GRACE) if pending else timeout
        code = self.halt(grace, KILL_AFTER, join=timeout)  # the second SIGTERM: it exits at once
        if self.confdir is not None:
            shutil.rmtree(self.confdir, ignore_errors=True)
            self.confdir = None
        return code

    def _clean(self, line: str) -> str:
        return _ANSI.sub("", line)


@contextmanager
def registered(
    netns: str | None,
    identities: Sequence[SipIdentity],
    timeout: float = REGISTER_TIMEOUT,
    **place: Unpack[UaPlace],
) -> Iterator[list[RegisterResult]]:
    """The results while baresip stays up (registered, refreshing); unregisters on exit."""
    ua = Baresip(netns, identities, **place)
    if not ua.identities:
        yield []
        return
    try:
        ua.start()
        yield ua.wait(timeout)
    finally:
        ua.stop()


def register_identities(
    netns: str | None,
    identities: Sequence[SipIdentity],
    timeout: float = REGISTER_TIMEOUT,
    **place: Unpack[UaPlace],
) -> list[RegisterResult]:
    """Register every active identity once from the phone's address; results in input order.

    Inactive identities get no result. The address is `iface`'s in `netns` unless `local_ip`
    is given. On return baresip has unregistered and is gone, with its config directory.
    """
    with registered(netns, identities, timeout, **place) as results:
        return results
