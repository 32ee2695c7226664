"""UDP glue shared by the PnP responder and the check-sync sender.

Sockets (multicast receive, unicast send), a datagram endpoint, the client-transaction
driver over `core.siptimers` (the loop's clock is the `now`), and a service runner that
stops cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

from .. import netif
from ..core.errors import ConfigError, InputError
from ..core.sipdialog import Address, describe, response_branch
from ..core.sipmsg import Request, Response, build_message, top_via
from ..core.siptimers import ClientTransaction, Timers, on_response, on_timer, start_transaction
from .bounds import LogLimiter

LOG = logging.getLogger("phoneprov.sip")
IP_MULTICAST_ALL = 49  # Linux: 0 = deliver only the groups this socket joined
MAX_DATAGRAM = 65_535

OnDatagram = Callable[[bytes, Address], None]


def interface_ipv4(interface: str) -> str:
    """The IPv4 address of `interface`; ConfigError when it has none."""
    return netif.interface_ipv4(interface, "sip interface")


def multicast_socket(interface: str, group: str, port: int) -> socket.socket:
    """A socket that receives `group:port` on `interface` only (DESIGN §3b)."""
    try:
        index = socket.if_nametoindex(interface)
    except OSError:
        raise ConfigError(f"sip interface {interface!r} does not exist") from None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
        sock.bind((group, port))
        mreqn = struct.pack("=4s4si", socket.inet_aton(group), bytes(4), index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def unicast_socket(ip: str, port: int, interface: str | None = None) -> socket.socket:
    """A socket bound to `ip:port` (port 0: any), optionally tied to `interface`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind((ip, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def source_ip_towards(ip: str, port: int) -> str:
    """The local address the kernel would send from to reach `ip` (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((ip, port))
        return str(probe.getsockname()[0])


class Endpoint(asyncio.DatagramProtocol):
    """Hands each datagram to a callback; `send` writes one."""

    def __init__(self, on_datagram: OnDatagram) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.errors = LogLimiter(LOG)  # ICMP errors: one per NOTIFY to a forged source

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.on_datagram(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.errors.warning("UDP error: %s", exc)

    def send(self, data: bytes, address: Address) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, address)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_endpoint(sock: socket.socket, on_datagram: OnDatagram) -> Endpoint:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(lambda: Endpoint(on_datagram), sock=sock)
    return protocol


@dataclass(frozen=True)
class Outcome:
    """How one request ended: a final status, or None for no answer within timer F."""

    status: int | None
    reason: str
    sends: int

    @property
    def verdict(self) -> str:
        if self.status is None:
            return "no answer"
        return "accepted" if 200 <= self.status < 300 else "refused"


@dataclass
class _Pending:
    tx: ClientTransaction
    woken: asyncio.Event
    reason: str = ""


class ClientTransactions:
    """Our outgoing requests: send, retransmit on timer E, match responses by branch."""

    def __init__(self, send: Callable[[bytes, Address], None], timers: Timers) -> None:
        self.send, self.timers = send, timers
        self._pending: dict[str, _Pending] = {}

    async def request(self, request: Request, address: Address) -> Outcome:
        loop = asyncio.get_running_loop()
        branch = top_via(request).branch or ""
        data = build_message(request)
        self.send(data, address)
        pending = _Pending(start_transaction(self.timers, loop.time()), asyncio.Event())
        self._pending[branch] = pending
        try:
            while (wake_at := pending.tx.wake_at()) is not None:
                pending.woken.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pending.woken.wait(), max(0.0, wake_at - loop.time()))
                pending.tx, resend = on_timer(pending.tx, loop.time())
                if resend:
                    LOG.debug("retransmitting %s to %s:%d (send %d)", describe(request),
                              *address, pending.tx.sends)  # fmt: skip
                    self.send(data, address)
        finally:
            del self._pending[branch]
        return Outcome(pending.tx.status, pending.reason, pending.tx.sends)

    def on_response(self, response: Response) -> bool:
        """Feed a response in; False when it answers none of our requests."""
        try:
            pending = self._pending.get(response_branch(response) or "")
        except InputError:
            return False
        if pending is None:
            return False
        pending.tx = on_response(pending.tx, response.status, asyncio.get_running_loop().time())
        pending.reason = response.reason
        pending.woken.set()
        return True


def run_service(main: Callable[[asyncio.Event], Awaitable[None]], *, signals: bool = True) -> None:
    """Run `main(stop)` until it returns; SIGTERM/SIGINT set `stop` for a clean shutdown.
    `signals=False` leaves the process's signal handling alone (inside a web server)."""
    handled = (signal.SIGTERM, signal.SIGINT) if signals else ()

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in handled:
            loop.add_signal_handler(signum, stop.set)
        try:
            await main(stop)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)

    asyncio.run(runner())
