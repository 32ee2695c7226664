import contextlib
import struct
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.dhcpwire import (
    BOOTP_LEN,
    MAGIC_COOKIE,
    DhcpMessage,
    decode_dhcp,
    decode_frame,
    decode_options,
    encode_dhcp,
    encode_options,
    udp_payload,
)
from phoneprov.core.errors import InputError

SEED_43 = bytes.fromhex("420b687474703a2f2f666f6f00430c3c48575459503e2e62616b00")
ACK_OPTIONS = {
    53: b"\x05",
    54: bytes([10, 231, 0, 1]),
    66: b"http://10.231.0.1:8080\0",
    67: b"prov.py?mac=<MACADR>\0",
    43: SEED_43,
}


def bootp(options: bytes, sname: bytes = b"", file: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH", 2, 1, 6, 0, 0x1234, 0, 0x8000)
    addrs = bytes([0] * 4 + [10, 231, 0, 101] + [10, 231, 0, 1] + [0] * 4)
    chaddr = bytes.fromhex("00095200000e").ljust(16, b"\0")
    return (
        (head + addrs + chaddr + sname.ljust(64, b"\0") + file.ljust(128, b"\0"))
        + MAGIC_COOKIE
        + options
    )


def frame(payload: bytes, proto: int = 17, frag: int = 0, ethertype: int = 0x0800) -> bytes:
    udp = struct.pack("!HHHH", 67, 68, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        frag,
        64,
        proto,
        0,
        bytes([10, 231, 0, 1]),
        bytes([255] * 4),
    )
    eth = bytes([0xFF] * 6) + bytes.fromhex("aabbccddeeff") + struct.pack("!H", ethertype)
    return eth + ip + udp + b"\0" * 4  # Ethernet padding after the IP packet


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", {}),
        (b"\xff", {}),
        (b"\0\0\xff", {}),
        (bytes([66, 3]) + b"ab\0" + b"\xff", {66: b"ab\0"}),  # trailing NUL kept
        (bytes([43, len(SEED_43)]) + SEED_43 + b"\xff", {43: SEED_43}),
        (bytes([12, 0, 255]), {12: b""}),
        (bytes([66, 2]) + b"ab" + bytes([66, 1]) + b"c", {66: b"abc"}),  # RFC 3396
        (bytes([1, 1, 9, 255, 3, 200]), {1: b"\t"}),  # after END: ignored
        (bytes([1, 1, 9]), {1: b"\t"}),  # no END: end of data ends it
    ],
)
def test_decode_options(data, expected):
    assert decode_options(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([66]), "no length byte"),
        (bytes([66, 5]) + b"abc", "truncated"),
        (bytes([0, 0, 43, 255]) + b"x", "truncated"),
    ],
)
def test_decode_options_rejects(data, message):
    with pytest.raises(InputError, match=message):
        decode_options(data)


def test_long_values_are_split_and_joined():
    value = bytes(range(256)) * 2
    wire = encode_options({43: value})
    assert wire[:2] == bytes([43, 255]) and wire.count(bytes([43, 255])) >= 2
    assert decode_options(wire) == {43: value}


@pytest.mark.parametrize("code", [0, 255, 256, -1])
def test_encode_options_rejects_pad_end_and_out_of_range(code):
    with pytest.raises(InputError):
        encode_options({code: b"x"})


def test_decode_frame_gives_exact_ack():
    msg = decode_frame(frame(bootp(encode_options(ACK_OPTIONS))))
    assert msg.message_type == "ACK"
    assert msg.server_id == "10.231.0.1"
    assert (msg.yiaddr, msg.chaddr, msg.xid, msg.op) == (
        "10.231.0.101",
        "00:09:52:00:00:0e",
        0x1234,
        2,
    )
    assert dict(msg.options) == ACK_OPTIONS
    assert msg.option(66) == b"http://10.231.0.1:8080\0"
    assert msg.option(99) is None


def test_sname_file_and_overload():
    plain = decode_dhcp(bootp(b"\xff", sname=b"srv\0junk", file=b"prov.xml"))
    assert (plain.sname, plain.file) == (b"srv", b"prov.xml")
    # option 52 = 3: file then sname carry more options, concatenated after the main area
    main = encode_options({52: b"\x03", 66: b"http:"})
    overloaded = decode_dhcp(
        bootp(main, sname=encode_options({66: b"\0"}), file=encode_options({66: b"//x", 67: b"f"}))
    )
    assert overloaded.options[66] == b"http://x\0"
    assert overloaded.options[67] == b"f"
    assert (overloaded.sname, overloaded.file) == (b"", b"")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bootp(b"\xff")[:239], "too short"),
        (bootp(b"\xff").replace(MAGIC_COOKIE, b"\0\0\0\0"), "cookie"),
        (bootp(bytes([53, 7, 1])), "truncated"),
    ],
)
def test_decode_dhcp_rejects(data, message):
    with pytest.raises(InputError, match=message):
        decode_dhcp(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (frame(bootp(b"\xff"))[:40], "too short"),
        (frame(bootp(b"\xff"), ethertype=0x86DD), "not an IPv4 frame"),
        (frame(bootp(b"\xff"), proto=6), "not UDP"),
        (frame(bootp(b"\xff"), frag=0x2000), "fragmented"),
        (frame(bootp(b"\xff"))[:-100], "bad IPv4 header"),  # cut short,
    ],
)
def test_udp_payload_rejects(data, message):
    with pytest.raises(InputError, match=message):
        udp_payload(data)


def test_unknown_message_type_and_missing_server_id():
    msg = decode_dhcp(bootp(encode_options({53: b"\x2a", 54: b"\x01"})))
    assert msg.message_type == "TYPE42"
    assert msg.server_id is None
    assert decode_dhcp(bootp(b"\xff")).message_type is None


# -- properties ------------------------------------------------------------------------

codes = st.integers(1, 254)
options = st.dictionaries(codes, st.binary(max_size=600), max_size=8)


@given(options)
def test_options_round_trip(opts):
    assert decode_options(encode_options(opts)) == opts


ipv4 = st.integers(0, 2**32 - 1).map(lambda n: ".".join(str(b) for b in n.to_bytes(4, "big")))
messages = st.builds(
    DhcpMessage,
    op=st.integers(1, 2),
    xid=st.integers(0, 2**32 - 1),
    ciaddr=ipv4,
    yiaddr=ipv4,
    siaddr=ipv4,
    giaddr=ipv4,
    chaddr=st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":")),
    sname=st.binary(max_size=63).map(lambda b: b.replace(b"\0", b"")),
    file=st.binary(max_size=127).map(lambda b: b.replace(b"\0", b"")),
    options=st.dictionaries(codes.filter(lambda c: c != 52), st.binary(max_size=300)).map(
        MappingProxyType
    ),
    flags=st.integers(0, 0xFFFF),
)


@given(messages)
def test_dhcp_round_trip(msg):
    assert decode_dhcp(encode_dhcp(msg)) == msg


def _value_or_input_error(fn, data):
    with contextlib.suppress(InputError):
        fn(data)


@given(st.binary(max_size=400))
def test_arbitrary_options_area(data):
    _value_or_input_error(decode_options, data)


@given(st.binary(min_size=BOOTP_LEN, max_size=400).map(lambda b: b[:BOOTP_LEN] + MAGIC_COOKIE + b))
def test_arbitrary_dhcp_payload(data):
    _value_or_input_error(decode_dhcp, data)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_everywhere(data):
    for fn in (decode_options, decode_dhcp, decode_frame):
        _value_or_input_error(fn, data)


@given(st.binary(min_size=0, max_size=300))
def test_arbitrary_udp_payload_in_a_valid_frame(payload):
    _value_or_input_error(decode_frame, frame(payload))
