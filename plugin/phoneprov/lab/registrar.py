"""The real kamailio (Debian 12: 5.6) as the lab's SIP registrar, run like `Dnsmasq`.

REGISTER for one domain (another gets 403): a 401 digest challenge, checked by auth_db
against a db_text `subscriber` table in the work directory (plain passwords, `calculate_ha1`),
bindings in memory (usrloc `db_mode` 0) via `save("location")`. OPTIONS gets 200, the rest
405. Bindings and counters are read back over kamailio's JSON-RPC datagram socket, also in
the work directory (no kamcmd needed). db_text reads its tables once: subscribers are fixed
for one run (restart to change them).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoneprov.core.errors import InputError

from ..phone.process import LineProcess, ProcessError, in_netns

BINARY = "kamailio"
SIP_PORT = 5060
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
CHECK_TIMEOUT = 15.0
RPC_TIMEOUT = 2.0
RPC_RETRY = 0.02  # the RPC process comes up a moment after the SIP workers
RPC_BUFFER = 1 << 20
SHM_MB = 32
PKG_MB = 8
CHILDREN = 2
READY_MARK = "phoneprov registrar ready"  # logged by the first SIP worker once it runs
SUBSCRIBER_VERSION = 7  # Debian 5.6's schema (/usr/share/kamailio/dbtext/kamailio/version)
CFG_NAME = "kamailio.cfg"
LOG_NAME = "kamailio.log"
PID_NAME = "kamailio.pid"
RPC_NAME = "rpc.sock"
DB_DIR = "db"
RUN_DIR = "run"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; our client sockets add a suffix
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]{0,63}$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_DB_ESCAPES = str.maketrans({"\\": "\\\\", ":": "\\:", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_CLIENT_SEQ = itertools.count()

MODULES = "kex corex sl pv maxfwd xlog db_text usrloc registrar auth auth_db jsonrpcs"
CONFIG_TEMPLATE = """\
#!KAMAILIO
debug=2
log_stderror=yes
children={children}
auto_aliases=no
disable_tcp=yes
enable_sctp=no
listen=udp:{ip}:{port}
alias="{domain}"
{modules}
modparam("jsonrpcs", "transport", 4)
modparam("jsonrpcs", "dgram_socket", "{rpc}")
modparam("usrloc", "db_mode", 0)
modparam("usrloc", "use_domain", 1)
modparam("auth_db", "db_url", "text://{db}")
modparam("auth_db", "calculate_ha1", yes)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "load_credentials", "")
modparam("auth_db", "use_domain", 1)
event_route[core:worker-one-init] {{
    xlog("L_NOTICE", "{ready}\\n");
}}

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (method == "ACK") {{ exit; }}
    if (method == "OPTIONS") {{ sl_send_reply("200", "OK"); exit; }}
    if (method != "REGISTER") {{ sl_send_reply("405", "Method Not Allowed"); exit; }}
    if ($(td{{s.tolower}}) != "{domain}") {{
        sl_send_reply("403", "Forbidden - not our domain");
        exit;
    }}
    if (!auth_check("{domain}", "subscriber", "1")) {{ auth_challenge("{domain}", "1"); exit; }}
    consume_credentials();
    if (!save("location")) {{ sl_reply_error(); }}
}}
"""


class RegistrarError(ProcessError):
    """kamailio refused its configuration, did not start, died, or did not answer."""


@dataclass(frozen=True)
class Subscriber:
    """One account the registrar accepts: `username@domain` with this password."""

    username: str
    password: str


@dataclass(frozen=True)
class Binding:
    """One current registration: `aor` ("201@example.test"), contact URI, seconds left."""

    aor: str
    contact: str
    expires: int


def db_escape(value: str) -> str:
    r"""A value as a db_text field: `\`, `:`, newline, CR and tab escaped.

    >>> print(db_escape("pw:1"))
    pw\:1
    """
    if "\0" in value:
        raise InputError("db_text cannot hold a NUL character")
    return value.translate(_DB_ESCAPES)


def check_subscribers(
    subscribers: Iterable[Subscriber | tuple[str, str]],
) -> tuple[Subscriber, ...]:
    """Subscribers from (username, password) pairs; InputError on a bad or repeated name."""
    found: dict[str, Subscriber] = {}
    for item in subscribers:
        sub = item if isinstance(item, Subscriber) else Subscriber(*item)
        if not _USERNAME.match(sub.username):
            raise InputError(f"SIP user name must be [A-Za-z0-9._~+-]{{1,64}}: {sub.username!r}")
        if sub.username in found:
            raise InputError(f"SIP user {sub.username!r} given twice")
        if not sub.password:
            raise InputError(f"SIP user {sub.username!r} has an empty password")
        db_escape(sub.password)
        found[sub.username] = sub
    return tuple(found.values())


def render_tables(domain: str, subscribers: Iterable[Subscriber]) -> dict[str, str]:
    """The db_text files by name: `version` and `subscriber` (plain passwords)."""
    rows = [
        f"{n}:{db_escape(s.username)}:{db_escape(domain)}:{db_escape(s.password)}\n"
        for n, s in enumerate(subscribers, 1)
    ]
    return {
        "version": "id(int,auto) table_name(string) table_version(int)\n"
        f"1:subscriber:{SUBSCRIBER_VERSION}\n",
        "subscriber": "id(int,auto) username(string) domain(string) password(string)\n"
        + "".join(rows),
    }


def parse_ul_dump(result: Mapping[str, Any]) -> list[Binding]:
    """The bindings in the `result` of JSON-RPC `ul.dump` (one entry per contact)."""
    found = []
    for domain in result.get("Domains", []):
        for aor in domain.get("Domain", {}).get("AoRs", []):
            info = aor.get("Info", {})
            for contact in (c.get("Contact", {}) for c in info.get("Contacts", [])):
                expires = contact.get("Expires")  # a number, or "permanent"
                expires = expires if isinstance(expires, int) else -1
                found.append(Binding(str(info.get("AoR")), str(contact.get("Address")), expires))
    return found


class Registrar(LineProcess):
    """One kamailio: `with Registrar(workdir, ns, "10.231.0.1", "lab.test", subs) as reg:`.

    `domain` (default: the listen address) is the realm and the only domain accepted in
    To. The work directory keeps the config, tables, pid file, runtime dir, the sockets and
    `kamailio.log` (everything kamailio printed, also in `lines`), which stays for the
    caller to read.
    """

    name = "kamailio"
    error = RegistrarError

    def __init__(
        self,
        workdir: str | Path,
        netns: str | None,
        listen_ip: str,
        domain: str = "",
        subscribers: Iterable[Subscriber | tuple[str, str]] = (),
        *,
        port: int = SIP_PORT,
        binary: str = BINARY,
    ) -> None:
        try:
            self.listen_ip = str(ipaddress.IPv4Address(listen_ip))
        except ValueError as exc:
            raise InputError(f"registrar listen address must be IPv4: {listen_ip!r}") from exc
        self.domain = (domain or self.listen_ip).lower()
        if not _DOMAIN.match(self.domain):
            raise InputError(f"not a SIP domain: {domain!r}")
        if not 0 < port < 65536:
            raise InputError(f"not a port: {port}")
        super().__init__(netns)
        self.port = port
        self.binary = binary
        self.subscribers = check_subscribers(subscribers)
        self.workdir = Path(workdir).resolve()
        if '"' in str(self.workdir) or len(str(self.workdir / RPC_NAME)) > MAX_SOCKET_PATH:
            raise InputError(f"registrar work directory path too long or quoted: {workdir}")
        self.config_path = self.workdir / CFG_NAME
        self.log_path = self.workdir / LOG_NAME
        self.pidfile = self.workdir / PID_NAME
        self.rpc_socket = self.workdir / RPC_NAME

    # files

    def config_text(self) -> str:
        return CONFIG_TEMPLATE.format(
            domain=self.domain,
            children=CHILDREN,
            ip=self.listen_ip,
            port=self.port,
            rpc=self.rpc_socket,
            db=self.workdir / DB_DIR,
            ready=READY_MARK,
            modules="\n".join(f'loadmodule "{name}.so"' for name in MODULES.split()),
        )

    def write_files(self) -> Path:
        """Write config and tables, then `kamailio -c` them; RegistrarError if refused."""
        (self.workdir / DB_DIR).mkdir(parents=True, exist_ok=True)
        (self.workdir / RUN_DIR).mkdir(mode=0o700, exist_ok=True)
        for name, text in render_tables(self.domain, self.subscribers).items():
            (self.workdir / DB_DIR / name).write_text(text)
        self.config_path.write_text(self.config_text())
        self.check_config()
        return self.config_path

    def check_config(self) -> None:
        argv = [self.binary, "-c", "-f", str(self.config_path)]
        try:
            done = subprocess.run(
                in_netns(self.netns, argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=CHECK_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RegistrarError(f"cannot run {' '.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            log = (done.stdout + done.stderr).strip()
            raise RegistrarError(f"kamailio refuses {self.config_path}:\n{log}")

    # lifecycle

    def __enter__(self) -> Registrar:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def argv(self) -> list[str]:
        """In the foreground (`-DD`: children still forked), logging to stderr (`-E`)."""
        paths = {"-f": self.config_path, "-P": self.pidfile, "-Y": self.workdir / RUN_DIR}
        fixed = f"-DD -E -m {SHM_MB} -M {PKG_MB}".split()
        return [self.binary, *fixed, *(x for kv in paths.items() for x in (kv[0], str(kv[1])))]

    def start(self, timeout: float = START_TIMEOUT) -> Registrar:
        """Write and check the files, start, wait for the ready line and an RPC answer."""
        self._unstarted()
        self.write_files()
        self.rpc_socket.unlink(missing_ok=True)
        self.spawn(self.argv, log=self.log_path)
        deadline = time.monotonic() + timeout
        try:
            self.wait_for_line(re.escape(READY_MARK), timeout)
            self._rpc_when_up("core.version", deadline)
        except RegistrarError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM by PID (its children follow), SIGKILL after `timeout`; reap, join."""
        return self.halt(timeout)

    # state

    def aor(self, username: str) -> str:
        """The address of record as kamailio keys it: `user@domain`."""
        return f"{username}@{self.domain}"

    def bindings(self, timeout: float = RPC_TIMEOUT) -> list[Binding]:
        """The current contact bindings, read from kamailio (`ul.dump`)."""
        return parse_ul_dump(self.rpc("ul.dump", timeout=timeout))

    def statistics(self, group: str = "sl:") -> dict[str, int]:
        """kamailio's counters, e.g. `{"sl:401_replies": 1, "sl:200_replies": 1, …}`."""
        found = {}
        for line in self.rpc("stats.get_statistics", group) or []:
            name, _, value = str(line).partition(" = ")
            if value.strip().lstrip("-").isdigit():
                found[name.strip()] = int(value)
        return found

    def rpc(self, method: str, *params: Any, timeout: float = RPC_TIMEOUT) -> Any:
        """One JSON-RPC call over the datagram socket; the `result`, or RegistrarError."""
        if not self.alive():
            raise RegistrarError(f"kamailio is not running (see {self.log_path})")
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
        client = self.workdir / f"rpc-{os.getpid()}-{next(_CLIENT_SEQ)}.sock"
        client.unlink(missing_ok=True)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind(str(client))
                sock.settimeout(timeout)
                sock.sendto(json.dumps(request).encode(), str(self.rpc_socket))
                reply = json.loads(sock.recv(RPC_BUFFER))
        except TimeoutError as exc:
            raise RegistrarError(f"kamailio did not answer {method} within {timeout} s") from exc
        except (OSError, ValueError) as exc:
            raise RegistrarError(f"kamailio RPC {method} failed: {exc}") from exc
        finally:
            client.unlink(missing_ok=True)
        if "error" in reply:
            raise RegistrarError(f"kamailio RPC {method}: {reply['error']}")
        return reply.get("result")

    def _rpc_when_up(self, method: str, deadline: float) -> Any:
        """`rpc(method)`, retried while the RPC socket is not there yet (a probe)."""
        while True:
            left = deadline - time.monotonic()
            try:
                return self.rpc(method, timeout=max(left, RPC_RETRY))
            except RegistrarError as exc:
                cause = exc.__cause__
                waiting = isinstance(cause, FileNotFoundError | ConnectionRefusedError)
                if not waiting or left <= 0 or not self.alive():
                    tail = "\n".join(self.lines[-15:])
                    raise RegistrarError(f"kamailio did not come up: {exc}\n{tail}") from exc
            self.pause(RPC_RETRY)  # wakes early if kamailio prints (or dies)
