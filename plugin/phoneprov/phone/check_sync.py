"""The phone's check-sync listener: after provisioning, a simulated phone waits on UDP 5060
for `NOTIFY Event: check-sync` (DESIGN §1.6), answers `200 OK` and reports it, so the caller
provisions again. An `application/xml` body `<notifySync><checkSync><url>` (DSERIES §4.2)
names the URL to fetch instead of the phone's usual one; a body that is not one is answered
400 (bad XML) or 415 (another content type) and not reported.

`handle_datagram` is the pure part (a datagram in, the event and our answer out); the
`CheckSyncListener` is the socket around it, bound to the phone's address in its namespace.
Other requests get a proper error (405 for a method, 489 for another event package, 400 for
a NOTIFY without a usable Event); responses, ACKs and garbage get nothing.
Assumption: like a phone without a registration, the listener accepts check-sync from
anyone and asks for no authentication.
"""

from __future__ import annotations

import contextlib
import secrets
import select
import socket
import time
from dataclasses import dataclass

from ..core.errors import InputError
from ..core.sipdialog import NOTIFY_SYNC_CONTENT_TYPE, Address, NotifySync, decode_notify_sync
from ..core.sipmsg import DEFAULT_PORT, Event, Request, param, parse_event, parse_message
from .pnp_client import MAX_DATAGRAM, Out, answer, bind_sip_socket, interface_info

CHECK_SYNC = "check-sync"


@dataclass(frozen=True)
class CheckSync:
    """A check-sync NOTIFY the phone accepted."""

    event: Event  # package "check-sync" and its parameters
    header: str  # the Event header as sent, e.g. `check-sync;reboot=false`
    source: Address
    call_id: str
    url: str | None = None  # the body's <url>: fetch this instead of the usual URL
    data_available: bool | None = None  # the body's <dataAvailable>

    @property
    def reboot(self) -> bool | None:
        """The `reboot` parameter (True/False), None when absent or odd."""
        value = param(self.event.params, "reboot")
        return {"true": True, "false": False}.get((value or "").lower())


def handle_datagram(
    data: bytes, source: Address, *, to_tag: str
) -> tuple[CheckSync | None, Out | None]:
    """What the phone does with one datagram: (the check-sync if it was one, our answer)."""
    try:
        message = parse_message(data)
    except InputError:
        return None, None
    if not isinstance(message, Request) or message.method == "ACK":
        return None, None
    try:
        return _request(message, source, to_tag)
    except InputError:  # too broken to answer (no Via, From, To, Call-ID or CSeq)
        return None, None


def _request(request: Request, source: Address, to_tag: str) -> tuple[CheckSync | None, Out]:
    if request.method != "NOTIFY":
        return None, answer(request, 405, source, to_tag=to_tag, Allow="NOTIFY")
    header = request.header("Event")
    try:
        event = parse_event(header or "")
    except InputError:
        return None, answer(request, 400, source, to_tag=to_tag)
    if event.package != CHECK_SYNC:
        return None, answer(request, 489, source, to_tag=to_tag, Allow_Events=CHECK_SYNC)
    sync = NotifySync()
    if request.body.strip():
        kind = (request.header("Content-Type") or "").split(";")[0].strip().lower()
        if kind != NOTIFY_SYNC_CONTENT_TYPE:
            return None, answer(
                request, 415, source, to_tag=to_tag, Accept=NOTIFY_SYNC_CONTENT_TYPE
            )
        try:
            sync = decode_notify_sync(request.body)
        except InputError:
            return None, answer(request, 400, source, to_tag=to_tag)
    ok = answer(request, 200, source, to_tag=to_tag)
    call_id = request.required("Call-ID")
    return CheckSync(event, header or "", source, call_id, sync.url, sync.data_available), ok


class CheckSyncListener:
    """`with CheckSyncListener(netns=ns) as listener: got = listener.wait(30)`.

    The socket is bound when the `with` block starts (so a sender may go from then on) and
    closed when it ends. `ip=None`: the address of `iface` in `netns`.
    """

    def __init__(
        self,
        *,
        netns: str | None,
        iface: str = "eth0",
        ip: str | None = None,
        port: int = DEFAULT_PORT,
    ) -> None:
        self.netns, self.iface, self.ip, self.port = netns, iface, ip, port
        self.sock: socket.socket | None = None
        self.answered = 0  # datagrams we answered, check-sync or not

    def __enter__(self) -> CheckSyncListener:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self) -> None:
        from .netns import call_in_netns

        if self.sock is None:
            self.sock = call_in_netns(self.netns, self._bind)

    def _bind(self) -> socket.socket:
        if self.ip is None:
            self.ip = interface_info(self.iface)[0]
        return bind_sip_socket(self.ip, self.port, self.iface)

    @property
    def address(self) -> Address:
        if self.sock is None:
            raise RuntimeError("listener is not open")
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def wait(self, timeout: float) -> CheckSync | None:
        """Answer datagrams until a check-sync came (returned) or `timeout` seconds passed."""
        if self.sock is None:
            raise RuntimeError("listener is not open")
        deadline = time.monotonic() + timeout
        to_tag = secrets.token_hex(6)
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.sock], [], [], left)
            if not readable:
                continue
            data, source = self.sock.recvfrom(MAX_DATAGRAM)
            got, reply = handle_datagram(data, (str(source[0]), int(source[1])), to_tag=to_tag)
            if reply is not None:
                self.answered += 1
                with contextlib.suppress(OSError):  # lost like a dropped datagram
                    self.sock.sendto(*reply)
            if got is not None:
                return got
        return None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def wait_check_sync(
    *, netns: str | None, iface: str = "eth0", timeout: float, port: int = DEFAULT_PORT
) -> CheckSync | None:
    """Listen for one check-sync NOTIFY on `iface`'s address in `netns`; None on timeout."""
    with CheckSyncListener(netns=netns, iface=iface, port=port) as listener:
        return listener.wait(timeout)
