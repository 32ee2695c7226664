"""DHCPv4 on the wire, byte-exact: the options area (RFC 2132), the BOOTP message
(RFC 2131) and the Ethernet/IPv4/UDP frame around it.

We need exact bytes (option 66 arrives as `http://…\\0`; pyroute2's decoder strips the NUL),
so values stay `bytes`. Repeated codes are concatenated (RFC 3396); with option 52
(overload) the `file` and then `sname` fields carry more options. Bad input → `InputError`.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import InputError

PAD = 0
END = 255
OPT_OVERLOAD = 52
OPT_MESSAGE_TYPE = 53
OPT_SERVER_ID = 54
MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTP_LEN = 236  # fixed BOOTP header, before the magic cookie
SNAME = slice(44, 108)
FILE = slice(108, 236)
ETH_LEN = 14
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
UDP_LEN = 8
MAX_CHUNK = 255

MESSAGE_TYPES = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}


def decode_options(data: bytes) -> dict[int, bytes]:
    """Options area → {code: value}. Stops at END; running out of bytes ends it too.

    >>> decode_options(bytes([66, 3]) + b"ab\\0" + bytes([0, 255, 1]))
    {66: b'ab\\x00'}
    >>> decode_options(bytes([12, 4, 1, 2]))
    Traceback (most recent call last):
    ...
    phoneprov.core.errors.InputError: DHCP option 12 at offset 0 is truncated (length 4)
    """
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        code = data[pos]
        if code == PAD:
            pos += 1
            continue
        if code == END:
            break
        if pos + 1 >= len(data):
            raise InputError(f"DHCP option {code} at offset {pos} has no length byte")
        length = data[pos + 1]
        value = data[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise InputError(f"DHCP option {code} at offset {pos} is truncated (length {length})")
        options[code] = options.get(code, b"") + value
        pos += 2 + length
    return options


def encode_options(options: Mapping[int, bytes]) -> bytes:
    """{code: value} → options area ending in END; long values split (RFC 3396).

    >>> encode_options({66: b"ab\\0"}).hex(":")
    '42:03:61:62:00:ff'
    """
    out = bytearray()
    for code, value in options.items():
        if not 0 < code < END:
            raise InputError(f"not a DHCP option code: {code}")
        chunks = [value[i : i + MAX_CHUNK] for i in range(0, len(value), MAX_CHUNK)] or [b""]
        for chunk in chunks:
            out += bytes([code, len(chunk)]) + chunk
    out.append(END)
    return bytes(out)


@dataclass(frozen=True)
class DhcpMessage:
    """One decoded BOOTP/DHCP message; `options` hold exact bytes."""

    op: int
    xid: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    chaddr: str  # colon MAC for Ethernet, else hex of the hlen bytes
    sname: bytes = b""  # the raw field up to its first NUL; b"" when overloaded
    file: bytes = b""
    options: Mapping[int, bytes] = field(default_factory=lambda: MappingProxyType({}))
    flags: int = 0

    def option(self, code: int) -> bytes | None:
        return self.options.get(code)

    @property
    def message_type(self) -> str | None:
        """DISCOVER, OFFER, …, ACK; None for plain BOOTP; `TYPE<n>` for unknown values."""
        value = self.options.get(OPT_MESSAGE_TYPE)
        if not value:
            return None
        return MESSAGE_TYPES.get(value[0], f"TYPE{value[0]}")

    @property
    def server_id(self) -> str | None:
        value = self.options.get(OPT_SERVER_ID)
        return str(ipaddress.IPv4Address(value)) if value and len(value) == 4 else None


def _cstr(field_bytes: bytes) -> bytes:
    return field_bytes.split(b"\0", 1)[0]


def _ip(raw: bytes) -> str:
    return str(ipaddress.IPv4Address(raw))


def decode_dhcp(payload: bytes) -> DhcpMessage:
    """A UDP payload (BOOTP header + cookie + options) → `DhcpMessage`."""
    if len(payload) < BOOTP_LEN + len(MAGIC_COOKIE):
        raise InputError(f"DHCP message too short: {len(payload)} bytes")
    if payload[BOOTP_LEN : BOOTP_LEN + 4] != MAGIC_COOKIE:
        raise InputError("DHCP magic cookie missing")
    op, htype, hlen, _hops, xid, _secs, flags = struct.unpack_from("!BBBBIHH", payload)
    ciaddr, yiaddr, siaddr, giaddr = (_ip(payload[i : i + 4]) for i in (12, 16, 20, 24))
    hw = payload[28 : 28 + min(hlen, 16)]
    chaddr = hw.hex(":") if htype == 1 and hlen == 6 else hw.hex()
    options = decode_options(payload[BOOTP_LEN + 4 :])
    sname, file = _cstr(payload[SNAME]), _cstr(payload[FILE])
    overload = (options.get(OPT_OVERLOAD) or b"\0")[0]
    if overload & 1:  # RFC 2131 4.1: file first, then sname
        options = _merge(options, decode_options(payload[FILE]))
        file = b""
    if overload & 2:
        options = _merge(options, decode_options(payload[SNAME]))
        sname = b""
    return DhcpMessage(
        op=op,
        xid=xid,
        ciaddr=ciaddr,
        yiaddr=yiaddr,
        siaddr=siaddr,
        giaddr=giaddr,
        chaddr=chaddr,
        sname=sname,
        file=file,
        options=MappingProxyType(options),
        flags=flags,
    )


def _merge(first: dict[int, bytes], more: dict[int, bytes]) -> dict[int, bytes]:
    merged = dict(first)
    for code, value in more.items():
        merged[code] = merged.get(code, b"") + value
    return merged


def encode_dhcp(msg: DhcpMessage) -> bytes:
    """`DhcpMessage` → UDP payload (no overload: sname/file are written as given)."""
    if len(msg.sname) > 63 or len(msg.file) > 127:
        raise InputError("sname/file too long for the BOOTP header")
    mac = msg.chaddr.replace(":", "")
    try:
        hw = bytes.fromhex(mac)
    except ValueError as exc:
        raise InputError(f"bad chaddr: {msg.chaddr!r}") from exc
    if len(hw) > 16:
        raise InputError(f"chaddr longer than 16 bytes: {msg.chaddr!r}")
    htype = 1 if ":" in msg.chaddr and len(hw) == 6 else 0
    head = struct.pack("!BBBBIHH", msg.op, htype, len(hw), 0, msg.xid, 0, msg.flags)
    addrs = b"".join(
        ipaddress.IPv4Address(a).packed for a in (msg.ciaddr, msg.yiaddr, msg.siaddr, msg.giaddr)
    )
    body = head + addrs + hw.ljust(16, b"\0") + msg.sname.ljust(64, b"\0")
    return body + msg.file.ljust(128, b"\0") + MAGIC_COOKIE + encode_options(msg.options)


def udp_payload(frame: bytes) -> bytes:
    """Ethernet II + IPv4 + UDP frame → the UDP payload (lengths checked, checksums not)."""
    if len(frame) < ETH_LEN + 20 + UDP_LEN:
        raise InputError(f"frame too short: {len(frame)} bytes")
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype != ETHERTYPE_IPV4:
        raise InputError(f"not an IPv4 frame: ethertype {ethertype:#06x}")
    ip = frame[ETH_LEN:]
    version, ihl = ip[0] >> 4, (ip[0] & 0x0F) * 4
    (total,) = struct.unpack_from("!H", ip, 2)
    (frag,) = struct.unpack_from("!H", ip, 6)
    if version != 4 or ihl < 20 or total < ihl + UDP_LEN or total > len(ip):
        raise InputError("bad IPv4 header")
    if frag & 0x3FFF:
        raise InputError("fragmented IPv4 packet")
    if ip[9] != IPPROTO_UDP:
        raise InputError(f"not UDP: IP protocol {ip[9]}")
    udp = ip[ihl:total]
    (udp_len,) = struct.unpack_from("!H", udp, 4)
    if udp_len < UDP_LEN or udp_len > len(udp):
        raise InputError("bad UDP length")
    return udp[UDP_LEN:udp_len]


def decode_frame(frame: bytes) -> DhcpMessage:
    """A whole Ethernet frame as a raw socket sees it → `DhcpMessage`."""
    return decode_dhcp(udp_payload(frame))
