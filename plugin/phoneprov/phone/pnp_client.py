"""SIP PnP from the phone's side: multicast a `SUBSCRIBE Event: ua-profile`, take the URL
from the NOTIFY that answers it (DESIGN §1.2, §3b).

`PnpDiscovery` is the exchange as sans-I/O state: datagrams and the time go in, datagrams
to send come out (messages from `core.sipmsg`/`core.sipdialog`, retransmission from
`core.siptimers`). `discover_url` is the thin adapter: one UDP socket in the phone's
namespace, bound to the phone's unicast address, sends to the group and receives the
answers (the 200 to the SUBSCRIBE at the Via address, the NOTIFY at the Contact address:
both name this socket, as `sipdialog.notify_target` and `response_address` expect).

Assumptions (the vendor text is silent): `Expires: 0` (one NOTIFY, no refresh), any 2xx
counts as accepted, a NOTIFY that arrives before the 200 is taken (UDP reorders), a final
non-2xx only stops retransmission (another server on the LAN may still NOTIFY), and the
first NOTIFY with a URL wins. The NOTIFY is not authenticated: trusted LANs only.
"""

from __future__ import annotations

import contextlib
import errno
import secrets
import select
import socket
import time
from dataclasses import dataclass, replace

from ..core.errors import InputError
from ..core.mac import norm_mac
from ..core.markers import DeviceInfo
from ..core.sipdialog import (
    MAX_FORWARDS,
    PNP_EVENT,
    PNP_GROUP,
    URL_CONTENT_TYPE,
    Address,
    make_branch,
    make_response,
    response_address,
    response_branch,
    response_is_for,
)
from ..core.sipmsg import (
    DEFAULT_PORT,
    Request,
    Response,
    Via,
    build_message,
    build_via,
    parse_event,
    parse_message,
    parse_name_addr,
    top_via,
    with_header,
)
from ..core.siptimers import ClientTransaction, Timers, on_response, on_timer, start_transaction

VENDOR = "Auerswald"
FIRMWARE_VERSION = "0.0.0-phoneprov-sim"  # what the simulator claims in `version="..."`
USER_AGENT = "phoneprov-simulator (COMfortel D-series)"
TIMEOUT = 5.0
MAX_DATAGRAM = 65_535
REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    415: "Unsupported Media Type",
    481: "Call/Transaction Does Not Exist",
    489: "Bad Event",
}

Out = tuple[bytes, Address]  # a datagram to send and where


def _quoted(text: str) -> str:
    r"""A SIP quoted-string.

    >>> _quoted('D200'), _quoted('a"b\\c')
    ('"D200"', '"a\\"b\\\\c"')
    """
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def pnp_user(mac: str) -> str:
    """The user part a D-series phone puts in its PnP Request-URI and From.

    >>> pnp_user("00:09:52:00:00:0e")
    'MAC%3a00095200000E'
    """
    return f"MAC%3a{norm_mac(mac)}"


def make_subscribe(
    device: DeviceInfo,
    *,
    local: Address,
    call_id: str,
    from_tag: str,
    branch: str,
    version: str = FIRMWARE_VERSION,
    group: str = PNP_GROUP,
) -> Request:
    """The multicast SUBSCRIBE of a phone at `local` (its unicast IP and SIP port)."""
    if not device.mac:
        raise InputError("SIP PnP needs the phone's MAC")
    uri = f"sip:{pnp_user(device.mac)}@{group}"
    event = "{};profile-type={};vendor={};model={};version={}".format(
        PNP_EVENT, _quoted("device"), _quoted(VENDOR), _quoted(device.type or ""), _quoted(version)
    )
    contact = f"<sip:{local[0]}:{local[1]}>"
    headers = (
        ("Via", build_via(Via("UDP", local[0], local[1], (("branch", branch), ("rport", None))))),
        ("Max-Forwards", MAX_FORWARDS),
        ("From", f"<{uri}>;tag={from_tag}"),
        ("To", f"<{uri}>"),
        ("Call-ID", call_id),
        ("CSeq", "1 SUBSCRIBE"),
        ("Contact", contact),
        ("Event", event),
        ("Expires", "0"),
        ("Accept", URL_CONTENT_TYPE),
        ("User-Agent", USER_AGENT),
    )
    return Request("SUBSCRIBE", uri, headers)


def answer(
    request: Request, status: int, source: Address, *, to_tag: str | None = None, **extra: str
) -> Out:
    """Our response to `request` (from `source`) and where it goes; `extra` headers added
    (`Allow_Events` is written `Allow-Events`)."""
    made = with_header(make_response(request, status, to_tag=to_tag), "Server", USER_AGENT)
    assert isinstance(made, Response)
    response = made
    headers = (*response.headers, *((k.replace("_", "-"), v) for k, v in extra.items()))
    response = replace(response, reason=REASONS.get(status, response.reason), headers=headers)
    return build_message(response), response_address(request, source)


@dataclass(frozen=True)
class Notified:
    """The NOTIFY that carried the URL."""

    url: str
    source: Address
    event: str


class PnpDiscovery:
    """One PnP exchange, sans I/O: `start(now)`, then `datagram(...)`/`timer(now)` until
    `url` is set; each returns the datagrams to send. `wake_at()` says when to call `timer`.
    """

    def __init__(self, subscribe: Request, timers: Timers, group: Address) -> None:
        self.subscribe = subscribe
        self.timers = timers
        self.group = group
        self.data = build_message(subscribe)
        self.call_id = subscribe.required("Call-ID")
        self.tag = parse_name_addr(subscribe.required("From")).tag
        self.branch = top_via(subscribe).branch
        self.tx: ClientTransaction | None = None
        self.status: int | None = None  # the final response to the SUBSCRIBE
        self.notified: Notified | None = None
        self.ignored = 0  # datagrams that were garbage or not for us

    @property
    def url(self) -> str | None:
        return self.notified.url if self.notified else None

    def start(self, now: float) -> list[Out]:
        self.tx = start_transaction(self.timers, now)
        return [(self.data, self.group)]

    def wake_at(self) -> float | None:
        """When to call `timer` next: while retransmitting; None once an answer came."""
        return self.tx.wake_at() if self.tx else None

    def timer(self, now: float) -> list[Out]:
        if self.tx is None:
            return []
        self.tx, resend = on_timer(self.tx, now)
        return [(self.data, self.group)] if resend else []

    def datagram(self, data: bytes, source: Address, now: float) -> list[Out]:
        """One datagram from the LAN; garbage and strangers' messages are ignored."""
        try:
            message = parse_message(data)
            if isinstance(message, Response):
                self._response(message, now)
                return []
            return self._request(message, source, now)
        except InputError:
            self.ignored += 1
            return []

    def _response(self, response: Response, now: float) -> None:
        if response_branch(response) != self.branch or not response_is_for(response, "SUBSCRIBE"):
            self.ignored += 1
            return
        if self.tx is not None:
            self.tx = on_response(self.tx, response.status, now)
        if response.status >= 200 and self.status is None:
            self.status = response.status

    def _request(self, request: Request, source: Address, now: float) -> list[Out]:
        if request.method == "ACK":
            return []  # never answered (RFC 3261 §17.2.3)
        if request.method != "NOTIFY":
            return [answer(request, 405, source, Allow="NOTIFY")]
        to_tag = parse_name_addr(request.required("To")).tag
        if request.required("Call-ID") != self.call_id or to_tag != self.tag:
            return [answer(request, 481, source)]
        if parse_event(request.required("Event")).package != PNP_EVENT:
            return [answer(request, 489, source, Allow_Events=PNP_EVENT)]
        kind = (request.header("Content-Type") or "").partition(";")[0].strip().lower()
        if request.body and kind != URL_CONTENT_TYPE:
            return [answer(request, 415, source, Accept=URL_CONTENT_TYPE)]
        url = request.body.decode("utf-8", "replace").strip()
        if url and self.notified is None:
            self.notified = Notified(url, source, request.required("Event"))
            if self.tx is not None:  # the NOTIFY implies the SUBSCRIBE was accepted
                self.tx = on_response(self.tx, 200, now)
        return [answer(request, 200, source)]


# --- the adapter ----------------------------------------------------------------------


def discover_url(
    device: DeviceInfo,
    *,
    netns: str | None,
    iface: str = "eth0",
    timeout: float = TIMEOUT,
    port: int = DEFAULT_PORT,
    timers: Timers | None = None,
) -> str | None:
    """Multicast the PnP SUBSCRIBE from `iface` in `netns` and return the URL from the
    NOTIFY, or None when none came within `timeout` seconds. A missing MAC in `device` is
    read from the interface. Binds `port` (5060, as a phone) on the interface address, or
    any free port when that one is taken; Via and Contact name the port actually bound.
    """
    found = discover(device, netns=netns, iface=iface, timeout=timeout, port=port, timers=timers)
    return found.url if found else None


def discover(
    device: DeviceInfo,
    *,
    netns: str | None,
    iface: str = "eth0",
    timeout: float = TIMEOUT,
    port: int = DEFAULT_PORT,
    timers: Timers | None = None,
) -> Notified | None:
    """Like `discover_url`, with where the NOTIFY came from."""
    from .netns import call_in_netns

    return call_in_netns(netns, _discover, device, iface, timeout, port, timers or Timers())


def interface_info(iface: str) -> tuple[str, str]:
    """(IPv4 address, MAC) of `iface` in this thread's namespace; InputError when
    it is missing or has no IPv4 address."""
    from pyroute2 import IPRoute

    with IPRoute() as ip:
        found = ip.link_lookup(ifname=iface)
        if not found:
            raise InputError(f"no interface {iface!r}")
        index = found[0]
        mac = str(ip.get_links(index)[0].get_attr("IFLA_ADDRESS"))
        addrs = [a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=index, family=2)]
    if not addrs:
        raise InputError(f"interface {iface!r} has no IPv4 address")
    return str(addrs[0]), mac


def bind_sip_socket(ip: str, port: int, iface: str, *, or_any: bool = False) -> socket.socket:
    """A UDP socket on `ip:port` tied to `iface`; `or_any`: any free port if `port` is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        try:
            sock.bind((ip, port))
        except OSError as e:
            if not or_any or e.errno != errno.EADDRINUSE:
                raise
            sock.bind((ip, 0))
    except OSError:
        sock.close()
        raise
    return sock


def _discover(
    device: DeviceInfo, iface: str, timeout: float, port: int, timers: Timers
) -> Notified | None:
    deadline = time.monotonic() + timeout
    ip, mac = interface_info(iface)
    device = device if device.mac else replace(device, mac=mac)
    with bind_sip_socket(ip, port, iface, or_any=True) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)  # stay on the LAN
        local = (ip, sock.getsockname()[1])
        subscribe = make_subscribe(
            device,
            local=local,
            call_id=f"{secrets.token_hex(12)}@{ip}",
            from_tag=secrets.token_hex(6),
            branch=make_branch(secrets.token_hex(8)),
        )
        exchange = PnpDiscovery(subscribe, timers, (PNP_GROUP, DEFAULT_PORT))
        _send(sock, exchange.start(time.monotonic()))
        while exchange.notified is None:
            now = time.monotonic()
            if now >= deadline:
                return None
            wake = min(deadline, exchange.wake_at() or deadline)
            readable, _, _ = select.select([sock], [], [], max(0.0, wake - now))
            if readable:
                data, source = sock.recvfrom(MAX_DATAGRAM)
                _send(sock, exchange.datagram(data, source, time.monotonic()))
            else:
                _send(sock, exchange.timer(time.monotonic()))
        return exchange.notified


def _send(sock: socket.socket, out: list[Out]) -> None:
    for data, address in out:
        with contextlib.suppress(OSError):  # e.g. no route: the next retransmission tries
            sock.sendto(data, address)
