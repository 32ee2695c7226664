"""SIP message codec: tables for header handling, hypothesis for round trips and garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import InputError
from phoneprov.core.sipmsg import (
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    build_message,
    build_name_addr,
    build_sip_uri,
    build_via,
    canonical_name,
    param,
    parse_cseq,
    parse_event,
    parse_message,
    parse_name_addr,
    parse_params,
    parse_sip_uri,
    parse_via,
    top_via,
    with_header,
)

PNP_SUBSCRIBE = (
    b"SUBSCRIBE sip:MAC%3a00095200000E@224.0.1.75 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.231.0.2:5060;branch=z9hG4bK1350589574;rport\r\n"
    b"From: <sip:MAC%3a00095200000E@224.0.1.75>;tag=1427538093\r\n"
    b"To: <sip:MAC%3a00095200000E@224.0.1.75>\r\n"
    b"Call-ID: 1016783797@10.231.0.2\r\n"
    b"CSeq: 1 SUBSCRIBE\r\n"
    b"Contact: <sip:10.231.0.2:5060>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Expires: 0\r\n"
    b'Event: ua-profile;profile-type="device";vendor="Auerswald";model="D200";version="1.0"\r\n'
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def test_parses_a_pnp_subscribe() -> None:
    msg = parse_message(PNP_SUBSCRIBE)
    assert isinstance(msg, Request)
    assert (msg.method, msg.uri) == ("SUBSCRIBE", "sip:MAC%3a00095200000E@224.0.1.75")
    assert msg.header("call-id") == "1016783797@10.231.0.2"
    assert msg.header("Content-Length") is None  # the body is the truth
    assert msg.body == b""
    assert top_via(msg).branch == "z9hG4bK1350589574"
    assert param(parse_event(msg.required("Event")).params, "model") == "D200"


@pytest.mark.parametrize(
    ("raw", "name", "values"),
    [
        # compact forms and any case map to the canonical name
        (b"i: abc\r\nl: 0", "Call-ID", ("abc",)),
        (b"CALL-id: abc", "Call-ID", ("abc",)),
        (b"o: check-sync", "Event", ("check-sync",)),
        (b"m: <sip:a@b>, <sip:c@d>", "Contact", ("<sip:a@b>", "<sip:c@d>")),
        # folded lines join with one space
        (b"Subject: one\r\n  two\r\n\tthree", "Subject", ("one two three",)),
        (b"Subject:\r\n folded", "Subject", ("folded",)),
        # several Via: separate lines and comma lists, in order
        (
            b"Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\nv: SIP/2.0/UDP b, SIP/2.0/UDP c",
            "Via",
            ("SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b", "SIP/2.0/UDP c"),
        ),
        (b'Contact: "a, b" <sip:x@y>', "Contact", ('"a, b" <sip:x@y>',)),
        (b"X-Thing :  spaced  ", "X-Thing", ("spaced",)),
        (b"x-thing: kept as written", "x-thing", ("kept as written",)),
    ],
)
def test_header_handling(raw: bytes, name: str, values: tuple[str, ...]) -> None:
    msg = parse_message(b"OPTIONS sip:x@y SIP/2.0\r\n" + raw + b"\r\n\r\n")
    assert msg.header_list(name) == values
    assert msg.header_list(name.lower()) == values


@pytest.mark.parametrize(
    ("raw", "body"),
    [
        (b"Content-Length: 3\r\n\r\nabcdef", b"abc"),  # extra bytes in the datagram dropped
        (b"l: 2\r\n\r\nabc", b"ab"),
        (b"X: y\r\n\r\nrest of datagram", b"rest of datagram"),  # no length: all of it
        (b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n", b""),  # repeated, equal
        (b"X: y", b""),  # no blank line at all
    ],
)
def test_body_and_content_length(raw: bytes, body: bytes) -> None:
    assert parse_message(b"SIP/2.0 200 OK\r\n" + raw).body == body


def test_lf_only_lines_and_leading_keepalive_crlf() -> None:
    msg = parse_message(b"\r\n\r\nsip/2.0 486 Busy Here\ni: x\n\nbody")
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.body) == (486, "Busy Here", b"body")
    assert msg.header("Call-ID") == "x"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n",
        b"hello world",
        b"SIP/2.0 99 Too Low\r\n\r\n",
        b"SIP/2.0 700 Too High\r\n\r\n",
        b"SIP/3.0 200 OK\r\n\r\n",
        b"INVITE sip:x SIP/2.0 extra\r\n\r\n",
        b"INVITE  SIP/2.0\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\nno colon here\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\n folded first\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
        b"NOTIFY sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
        b"NOTIFY sip:x SIP/2.0\r\nContent-Length: \xd9\xa1\r\n\r\nab",  # Arabic-Indic digit
        b"NOTIFY sip:x SIP/2.0\r\nX: \xff\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\nX: a\x00b\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\nX: a\rb\r\n\r\n",
        b"NOTIFY sip:x SIP/2.0\r\n" + b"X: y\r\n" * 20000,
    ],
)
def test_malformed_messages_raise_input_error(raw: bytes) -> None:
    with pytest.raises(InputError):
        parse_message(raw)


def test_not_bytes_is_input_error() -> None:
    with pytest.raises(InputError):
        parse_message("SIP/2.0 200 OK\r\n\r\n")  # type: ignore[arg-type]


def test_build_writes_canonical_names_and_content_length() -> None:
    msg = Request("NOTIFY", "sip:10.0.0.2", (("i", "x"), ("o", "check-sync")), b"hi")
    assert build_message(msg) == (
        b"NOTIFY sip:10.0.0.2 SIP/2.0\r\nCall-ID: x\r\nEvent: check-sync\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )


@pytest.mark.parametrize(
    "msg",
    [
        Request("NOTIFY", "sip:x", (("X", "a\r\nInjected: yes"),)),
        Request("NOTIFY", "sip:x y"),
        Request("NOT IFY", "sip:x"),
        Request("NOTIFY", "sip:x", (("Content-Length", "5"),)),
        Request("NOTIFY", "sip:x", (("Bad Name", "v"),)),
        Response(99, "Low"),
        Response(200, "O\nK"),
    ],
)
def test_build_refuses_what_would_not_parse_back(msg: Request | Response) -> None:
    with pytest.raises(InputError):
        build_message(msg)


def test_with_header_replaces_every_value() -> None:
    msg = parse_message(b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a\r\nVia: SIP/2.0/UDP b\r\n\r\n")
    assert with_header(msg, "v", "SIP/2.0/UDP c").header_list("Via") == ("SIP/2.0/UDP c",)


# --- structured header values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKx;rport",
         Via("UDP", "10.0.0.2", 5062, (("branch", "z9hG4bKx"), ("rport", None)))),
        ("SIP / 2.0 / udp Host.Example ; received=10.0.0.9",
         Via("UDP", "host.example", None, (("received", "10.0.0.9"),))),
        ("SIP/2.0/UDP [2001:db8::1]:5060", Via("UDP", "[2001:db8::1]", 5060)),
    ],
)  # fmt: skip
def test_parse_via(text: str, expected: Via) -> None:
    assert parse_via(text) == expected
    assert parse_via(build_via(expected)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"Desk, 1" <sip:a@b>;tag=9', NameAddr("sip:a@b", "Desk, 1", (("tag", "9"),))),
        ("<sip:MAC%3a00095200000E@224.0.1.75>", NameAddr("sip:MAC%3a00095200000E@224.0.1.75")),
        ("sip:a@b;tag=1", NameAddr("sip:a@b", "", (("tag", "1"),))),
        ('"q\\"uote" <sip:a@b>', NameAddr("sip:a@b", 'q"uote')),
        ("Bob <sip:bob@host>", NameAddr("sip:bob@host", "Bob")),
    ],
)
def test_parse_name_addr(text: str, expected: NameAddr) -> None:
    assert parse_name_addr(text) == expected
    assert parse_name_addr(build_name_addr(expected)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:10.0.0.2:5060", SipUri("sip", None, "10.0.0.2", 5060)),
        ("SIP:MAC%3a0009@224.0.1.75;transport=udp",
         SipUri("sip", "MAC%3a0009", "224.0.1.75", None, (("transport", "udp"),))),
        ("sip:u:pw@h?subject=x", SipUri("sip", "u:pw", "h")),
    ],
)  # fmt: skip
def test_parse_sip_uri(text: str, expected: SipUri) -> None:
    assert parse_sip_uri(text) == expected
    assert parse_sip_uri(build_sip_uri(expected)) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_via, "SIP/2.0 10.0.0.2"),
        (parse_via, "SIP/2.0/UDP 10.0.0.2:99999"),
        (parse_via, "SIP/2.0/UDP host;=x"),
        (parse_name_addr, "<>"),
        (parse_name_addr, "<sip:a b>"),
        (parse_sip_uri, "http://x"),
        (parse_sip_uri, "sip:"),
        (parse_event, ""),
        (parse_event, "check sync"),
        (parse_cseq, "one NOTIFY"),
        (parse_cseq, "99999999999 NOTIFY"),
        (parse_params, ';a;b="unterminated'),
        (parse_params, "a=1"),
    ],
)
def test_bad_header_values(parse: object, text: str) -> None:
    with pytest.raises(InputError):
        parse(text)  # type: ignore[operator]


def test_param_lookup_is_case_insensitive_and_unquotes() -> None:
    params = parse_params(';Vendor="Auerswald";RPORT')
    assert (param(params, "vendor"), param(params, "rport"), param(params, "x")) == (
        "Auerswald",
        "",
        None,
    )


def test_canonical_name_is_idempotent() -> None:
    for name in ("v", "VIA", "cseq", "X-Foo", "l"):
        assert canonical_name(canonical_name(name)) == canonical_name(name)


# --- properties -------------------------------------------------------------------------

TOKEN_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-.!%*_+`'~")
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
header_names = st.one_of(
    st.sampled_from(["Via", "From", "To", "Call-ID", "CSeq", "Event", "Contact", "Subject"]),
    tokens.map(lambda t: "X-" + t),
)
# printable text without CR/LF and without surrounding whitespace
values = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\x7f"), max_size=40
).map(str.strip)
uris = st.builds(lambda u, h: f"sip:{u}@{h}", tokens, tokens)
headers = st.lists(st.tuples(header_names, values), max_size=8).map(tuple)
bodies = st.binary(max_size=64)
requests = st.builds(Request, tokens.map(str.upper), uris, headers, bodies)
responses = st.builds(Response, st.integers(100, 699), values, headers, bodies)


@given(st.one_of(requests, responses))
def test_round_trip(msg: Request | Response) -> None:
    assert parse_message(build_message(msg)) == msg


@given(st.binary(max_size=512))
def test_arbitrary_bytes_give_a_message_or_input_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except InputError:
        return
    assert parse_message(build_message(msg)) == msg


@given(st.data())
def test_mutated_subscribe_gives_a_message_or_input_error(data: st.DataObject) -> None:
    raw = bytearray(PNP_SUBSCRIBE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    try:
        msg = parse_message(bytes(raw))
    except InputError:
        return
    assert parse_message(build_message(msg)) == msg
    for name in ("Via", "From", "To", "Contact", "Event", "CSeq"):
        for value in msg.header_list(name):
            parser = {"Via": parse_via, "Event": parse_event, "CSeq": parse_cseq}
            with contextlib.suppress(InputError):
                parser.get(name, parse_name_addr)(value)


@given(st.text(max_size=80))
def test_header_parsers_give_a_value_or_input_error(text: str) -> None:
    for parse in (parse_via, parse_name_addr, parse_sip_uri, parse_event, parse_cseq, parse_params):
        with contextlib.suppress(InputError):
            parse(text)
