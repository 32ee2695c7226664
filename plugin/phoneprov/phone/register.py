"""Register a phone's SIP identities with a real user agent: Debian's `baresip`, headless.

baresip runs in the phone's namespace, bound to the phone's address, with a throwaway config
directory (only the `account` module: no audio, video or console), one `accounts` line per
active identity. Its output is parsed per account (baresip 1.0 flushes every line):
`201@lab.test: {0/UDP/v4} 200 OK (server) [1 binding]` on success,
`reg: sip:201@lab.test: 401 Unauthorized (server)` once it gives up. On SIGTERM baresip
unregisters (REGISTER with expires 0) before it exits, so it leaves no binding behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import InputError, PhoneprovError
from .netns import call_in_netns
from .pnp_client import interface_info

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


class RegisterError(PhoneprovError):
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


class Baresip:
    """One baresip for a phone's identities: `start()`, `wait(timeout)` → results, `stop()`."""

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
        self.netns = netns
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
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> Baresip:
        """Write the throwaway config dir and start baresip in the namespace."""
        if self._proc is not None:
            raise RegisterError("baresip already started")
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
        argv = [self.binary, "-f", str(self.confdir)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]  # execs: the PID is baresip's
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            self.stop()
            raise RegisterError(f"cannot start {self.binary}: {exc}") from exc
        self._reader = threading.Thread(target=self._read, name=f"baresip-{self._proc.pid}")
        self._reader.start()
        return self

    def wait(self, timeout: float = REGISTER_TIMEOUT) -> list[RegisterResult]:
        """Each active identity's outcome (input order); "timeout" for those without one."""
        deadline = time.monotonic() + timeout
        wanted = {(i.username, i.host.lower()) for i in self.identities}
        with self._changed:
            while True:
                found = self._outcomes()
                if wanted <= found.keys():
                    break
                left = deadline - time.monotonic()
                if self._eof:
                    tail = "\n".join(self._lines[-15:])
                    raise RegisterError(f"baresip exited before every account registered:\n{tail}")
                if left <= 0:
                    break
                self._changed.wait(left)
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

    def _outcomes(self) -> dict[tuple[str, str], Outcome]:
        found: dict[tuple[str, str], Outcome] = {}
        for line in self._lines:
            outcome = parse_outcome(line)
            if outcome is not None:
                found.setdefault(outcome.key, outcome)  # the first final answer counts
        return found

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID (baresip unregisters), again after `timeout`, then SIGKILL; remove
        the config. A REGISTER still unanswered would hold baresip ~32 s: then wait briefly."""
        code = None
        if self._proc is not None:
            with self._changed:
                pending = len(self._outcomes()) < len(self.identities)
            code = _stop_process(self._proc, min(timeout, PENDING_GRACE) if pending else timeout)
        if self._reader is not None:
            self._reader.join(timeout)
            self._reader = None
        if self.confdir is not None:
            shutil.rmtree(self.confdir, ignore_errors=True)
            self.confdir = None
        return code

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RegisterError("baresip not started")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def lines(self) -> list[str]:
        """A copy of everything baresip printed so far (colour codes removed)."""
        with self._changed:
            return list(self._lines)

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._changed:
                self._lines.append(_ANSI.sub("", line).rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()


def _stop_process(proc: subprocess.Popen[Any], timeout: float) -> int:
    """Stop one process we started, by its PID: SIGTERM (baresip unregisters), a second
    SIGTERM after `timeout` (baresip exits at once; a pending REGISTER kept it waiting),
    SIGKILL as a last resort; reap it and close its pipe."""
    for wait in (timeout, KILL_AFTER):
        if proc.poll() is not None:
            break
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


@contextmanager
def registered(
    netns: str | None,
    identities: Sequence[SipIdentity],
    timeout: float = REGISTER_TIMEOUT,
    *,
    iface: str = LAN_IF,
    local_ip: str | None = None,
    local_port: int = SIP_PORT,
) -> Iterator[list[RegisterResult]]:
    """The results while baresip stays up (registered, refreshing); unregisters on exit."""
    ua = Baresip(netns, identities, iface=iface, local_ip=local_ip, local_port=local_port)
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
    *,
    iface: str = LAN_IF,
    local_ip: str | None = None,
    local_port: int = SIP_PORT,
) -> list[RegisterResult]:
    """Register every active identity once from the phone's address; results in input order.

    Inactive identities get no result. The address is `iface`'s in `netns` unless `local_ip`
    is given. On return baresip has unregistered and is gone, with its config directory.
    """
    with registered(
        netns, identities, timeout, iface=iface, local_ip=local_ip, local_port=local_port
    ) as results:
        return results
