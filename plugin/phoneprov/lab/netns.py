"""A throwaway L2 LAN of network namespaces: one "switch" namespace with a bridge, one
namespace per host joined to it by a veth pair. Built with pyroute2, torn down in `close()`.

Every name we create carries `<base><pid>.<n>` so parallel runs never collide, and all links
live inside our own namespaces: nothing is added to the root namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute, netns

from phoneprov.core.errors import InputError
from phoneprov.core.mac import colon_mac

from ..phone.netns import call_in_netns

LAB_NET = ipaddress.ip_network("10.231.0.0/16")  # the only range a lab may use
MULTICAST = "224.0.0.0/4"  # SIP PnP needs a multicast route on the LAN interface
BRIDGE = "br0"
LAN_IF = "eth0"  # the interface name inside every host namespace
STOP_TIMEOUT = 5.0
_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,19}$")
_LAB_SEQ = itertools.count()


def netns_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` in `ns`; `ip netns exec` execs, so the PID is argv's."""
    return ["ip", "netns", "exec", ns, *argv]


@dataclass(frozen=True)
class Host:
    """One machine on the lab LAN."""

    name: str
    netns: str
    ifname: str  # inside `netns`
    mac: str  # colon form
    addr: str | None  # "10.231.0.1/24" or None (gets one by DHCP)
    port: str  # the veth end on the bridge, in the switch namespace

    @property
    def ip(self) -> str | None:
        return self.addr.split("/")[0] if self.addr else None


def _check_addr(addr: str) -> str:
    try:
        iface = ipaddress.ip_interface(addr)
    except ValueError as exc:
        raise InputError(f"not an address with prefix: {addr!r}") from exc
    if iface.network.prefixlen == iface.max_prefixlen or iface.ip not in LAB_NET:
        raise InputError(f"lab addresses must be like 10.231.x.y/24 in {LAB_NET}: {addr!r}")
    return str(iface)


def _setup_switch() -> None:
    with IPRoute() as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
        ip.link("add", ifname=BRIDGE, kind="bridge")
        ip.link("set", index=ip.link_lookup(ifname=BRIDGE)[0], state="up")


def _add_port(port: str, host_ns: str) -> None:
    with IPRoute() as ip:
        ip.link("add", ifname=port, kind="veth", peer={"ifname": LAN_IF, "net_ns_fd": host_ns})
        bridge = ip.link_lookup(ifname=BRIDGE)[0]
        ip.link("set", index=ip.link_lookup(ifname=port)[0], master=bridge, state="up")


def _setup_host(mac: str | None, addr: str | None) -> str:
    with IPRoute() as ip:
        ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
        index = ip.link_lookup(ifname=LAN_IF)[0]
        if mac:
            ip.link("set", index=index, address=mac)
        ip.link("set", index=index, state="up")
        if addr:
            host, prefixlen = addr.split("/")
            ip.addr("add", index=index, address=host, prefixlen=int(prefixlen))
        ip.route("add", dst=MULTICAST, oif=index)
        return str(ip.get_links(index)[0].get_attr("IFLA_ADDRESS"))


def _delete_port(port: str) -> None:
    with IPRoute() as ip:
        for index in ip.link_lookup(ifname=port):
            ip.link("del", index=index)  # takes the peer in the host namespace with it


class Lab:
    """Context manager: `with Lab() as lab: appliance = lab.add_host("appl", "10.231.0.1/24")`."""

    def __init__(self, base: str = "pp") -> None:
        if not re.fullmatch(r"[a-z]{1,8}", base):
            raise InputError(f"lab base must be 1-8 lower-case letters: {base!r}")
        self.base = base
        self.prefix = f"{base}{os.getpid()}.{next(_LAB_SEQ)}"
        self.switch = f"{self.prefix}-switch"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._procs: list[subprocess.Popen[Any]] = []
        self._open = False

    # lifecycle

    def __enter__(self) -> Lab:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        if self._open:
            return
        self._open = True
        try:
            self._make_ns(self.switch)
            call_in_netns(self.switch, _setup_switch)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop our processes, delete our veths and namespaces; also after partial setup.

        Cleans up everything it can, then raises the first error it met.
        """
        errors: list[BaseException] = []
        for proc in reversed(self._procs):
            try:
                self.stop(proc)
            except OSError as exc:
                errors.append(exc)
        self._procs.clear()
        # Anything else still inside our namespaces was started there by our caller; a
        # process would keep a namespace (and its veths) alive after the unmount.
        alive = netns.ns_pids()
        for name in self._namespaces:
            for pid in alive.get(name, []):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for host in self.hosts.values():
            try:
                call_in_netns(self.switch, _delete_port, host.port)
            except OSError as exc:
                errors.append(exc)
        for name in reversed(self._namespaces):
            try:
                netns.remove(name)
            except OSError as exc:
                errors.append(exc)
        self._namespaces.clear()
        self.hosts.clear()
        self._open = False
        if errors:
            raise errors[0]

    def namespaces(self) -> list[str]:
        """Names of the namespaces this lab made and has not removed yet."""
        return list(self._namespaces)

    # building

    def add_host(self, name: str, addr: str | None = None, mac: str | None = None) -> Host:
        """A namespace `<prefix>-<name>` with `eth0` on the LAN, lo up, multicast route set."""
        if not self._open:
            raise RuntimeError("lab is not open")
        if not _HOST_NAME.match(name) or name == "switch" or name in self.hosts:
            raise InputError(f"host name must be new, [a-z][a-z0-9]{{0,19}}: {name!r}")
        addr = _check_addr(addr) if addr else None
        wanted = colon_mac(mac) if mac else None
        ns = f"{self.prefix}-{name}"
        port = f"p{len(self.hosts)}"
        self._make_ns(ns)
        # registered before the veth exists so close() removes it even if setup fails
        host = Host(name, ns, LAN_IF, wanted or "", addr, port)
        self.hosts[name] = host
        call_in_netns(self.switch, _add_port, port, ns)
        actual = call_in_netns(ns, _setup_host, wanted, addr)
        host = Host(name, ns, LAN_IF, actual, addr, port)
        self.hosts[name] = host
        return host

    def _make_ns(self, name: str) -> None:
        netns.create(name)
        self._namespaces.append(name)

    # processes

    def run(
        self, host: Host | str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the host's namespace; output captured as text."""
        return subprocess.run(
            netns_argv(_ns(host), argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def spawn(self, host: Host | str, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start a long-running process in the host's namespace; stopped by `close()`."""
        proc: subprocess.Popen[Any] = subprocess.Popen(netns_argv(_ns(host), argv), **popen)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the process by its PID, SIGKILL after `timeout`; returns its exit code."""
        if proc in self._procs:
            self._procs.remove(proc)
        return stop_process(proc, timeout)


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> int:
    """Terminate one process we started (by its PID), reap it and close its pipes."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return proc.returncode


def _ns(host: Host | str) -> str:
    return host.netns if isinstance(host, Host) else host


def stale_namespaces(base: str = "pp") -> list[str]:
    """Lab namespaces left by runs whose process is gone (e.g. killed with SIGKILL)."""
    found = []
    for name in netns.listnetns():
        match = re.match(rf"^{re.escape(base)}(\d+)\.\d+-", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            found.append(name)
    return sorted(found)


def remove_stale(base: str = "pp") -> list[str]:
    """Remove `stale_namespaces(base)`; returns what was removed."""
    gone = stale_namespaces(base)
    for name in gone:
        netns.remove(name)
    return gone
