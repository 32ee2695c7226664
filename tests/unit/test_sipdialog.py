"""PnP and check-sync exchanges: what we answer, what we send, where it goes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import InputError
from phoneprov.core.sipdialog import (
    NOTIFY_SYNC_CONTENT_TYPE,
    NotifySync,
    PnpSubscribe,
    decode_notify_sync,
    encode_notify_sync,
    loop_key,
    make_branch,
    make_check_sync,
    make_pnp_notify,
    make_response,
    notify_target,
    read_pnp_subscribe,
    response_address,
    response_branch,
    transaction_key,
)
from phoneprov.core.sipmsg import (
    Request,
    Response,
    build_message,
    parse_event,
    parse_message,
    parse_name_addr,
    top_via,
    with_header,
)

SOURCE = ("10.231.0.2", 40000)


def subscribe(**replace: str) -> Request:
    headers = {
        "Via": "SIP/2.0/UDP 10.231.0.2:5060;branch=z9hG4bK77;rport",
        "From": "<sip:MAC%3a00095200000E@224.0.1.75>;tag=ph1",
        "To": "<sip:MAC%3a00095200000E@224.0.1.75>",
        "Call-ID": "c1@10.231.0.2",
        "CSeq": "3 SUBSCRIBE",
        "Contact": "<sip:10.231.0.2:5062>",
        "Event": 'ua-profile;profile-type="device";vendor="Auerswald";model="D200";version="2"',
    }
    headers.update(replace)
    uri = headers.pop("uri", "sip:MAC%3a00095200000E@224.0.1.75")
    msg = parse_message(
        f"SUBSCRIBE {uri} SIP/2.0\r\n".encode()
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v).encode()
        + b"\r\n"
    )
    assert isinstance(msg, Request)
    return msg


def test_reads_the_phone_data() -> None:
    assert read_pnp_subscribe(subscribe()) == PnpSubscribe(
        "00095200000E", "Auerswald", "D200", "2", "device"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"uri": "sip:00:09:52:00:00:0e@224.0.1.75"},  # bare MAC in the Request-URI
        {"uri": "sip:224.0.1.75", "From": "<sip:MAC%3A00095200000E@x>;tag=1"},  # From only
    ],
)
def test_mac_from_request_uri_or_from(changes: dict[str, str]) -> None:
    assert read_pnp_subscribe(subscribe(**changes)).mac == "00095200000E"


@pytest.mark.parametrize(
    "changes",
    [
        {"Event": "presence"},
        {"Event": ""},
        {"CSeq": "3 NOTIFY"},
        {"Call-ID": ""},
    ],
)
def test_not_a_pnp_subscribe(changes: dict[str, str]) -> None:
    with pytest.raises(InputError):
        read_pnp_subscribe(subscribe(**changes))


NO_MAC = {"uri": "sip:224.0.1.75", "To": "<sip:224.0.1.75>", "From": "<sip:224.0.1.75>;tag=1"}
REAL_FORMS = ["MAC%3a00095200000E", "MAC%3A00095200000E", "MAC00095200000e", "MAC=00095200000e"]


@pytest.mark.parametrize("user", REAL_FORMS)
@pytest.mark.parametrize("where", ["uri", "To", "From"])
def test_real_phones_mac_forms_in_any_of_uri_to_from(user: str, where: str) -> None:
    """snom, Grandstream, Yealink write the MAC in these forms, in one place or several."""
    changes = dict(NO_MAC)
    uri = f"sip:{user}@224.0.1.75"
    changes[where] = {"uri": uri, "To": f"<{uri}>", "From": f"<{uri}>;tag=1"}[where]
    assert read_pnp_subscribe(subscribe(**changes)).mac == "00095200000E"


def test_a_subscribe_without_a_mac_is_read_with_none() -> None:
    """AudioCodes phones name no MAC: the policy may match them by their lease."""
    phone = read_pnp_subscribe(subscribe(**NO_MAC))
    assert phone.mac is None and phone.model == "D200"
    other = {"uri": "sip:alice@224.0.1.75", "From": "<sip:bob@x>;tag=1", "To": "<sip:x@y>"}
    assert read_pnp_subscribe(subscribe(**other)).mac is None


def test_loop_key_is_call_id_cseq_and_from_tag() -> None:
    """RFC 3261 §8.2.2.2: same From-tag, Call-ID and CSeq on another branch is a loop."""
    first = subscribe()
    again = subscribe(Via="SIP/2.0/UDP 10.231.0.2:5060;branch=z9hG4bK99;rport")
    assert loop_key(first) == loop_key(again) == ("c1@10.231.0.2", "3 SUBSCRIBE", "ph1")
    assert transaction_key(first) != transaction_key(again)
    assert loop_key(subscribe(CSeq="4 SUBSCRIBE")) != loop_key(first)
    assert loop_key(subscribe(From="<sip:MAC%3a00095200000E@224.0.1.75>")) is None  # no tag
    assert loop_key(subscribe(To="<sip:x@y>;tag=t2")) is None  # in a dialog: not a new one


def test_482_loop_detected() -> None:
    response = make_response(subscribe(), 482)
    assert (response.status, response.reason) == (482, "Loop Detected")


def test_no_branch_and_another_port() -> None:
    """Some phones send from a port other than 5060 with no Via branch (RFC 2543 style)."""
    sub = subscribe(Via="SIP/2.0/UDP 10.231.0.2:5062")
    assert transaction_key(sub) == ("c1@10.231.0.2|3 SUBSCRIBE", "10.231.0.2:5062", "SUBSCRIBE")
    assert response_address(sub, ("10.231.0.2", 5062)) == ("10.231.0.2", 5062)
    assert read_pnp_subscribe(sub).mac == "00095200000E"


def test_response_mirrors_the_request_and_adds_our_tag() -> None:
    request = subscribe(Via="SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")
    response = make_response(request, 200, to_tag="ours1")
    assert (response.status, response.reason) == (200, "OK")
    assert response.header_list("Via") == request.header_list("Via")
    for name in ("From", "Call-ID", "CSeq"):
        assert response.header(name) == request.header(name)
    assert parse_name_addr(response.required("To")).tag == "ours1"
    assert parse_message(build_message(response)) == response


def test_response_keeps_an_existing_to_tag() -> None:
    request = subscribe(To="<sip:x@y>;tag=theirs")
    assert parse_name_addr(make_response(request, 200, to_tag="ours").required("To")).tag == (
        "theirs"
    )


def test_response_goes_to_the_source_port_only_with_rport() -> None:
    assert response_address(subscribe(), SOURCE) == SOURCE
    plain = subscribe(Via="SIP/2.0/UDP 10.231.0.2:5062;branch=z9hG4bK1")
    assert response_address(plain, SOURCE) == ("10.231.0.2", 5062)
    assert response_address(subscribe(Via="SIP/2.0/UDP h;branch=z9hG4bK1"), SOURCE) == (
        "10.231.0.2",
        5060,
    )


def test_retransmission_has_the_same_transaction_key() -> None:
    first, again = subscribe(), subscribe()
    assert transaction_key(first) == transaction_key(again)
    assert transaction_key(first) != transaction_key(
        subscribe(Via="SIP/2.0/UDP 10.231.0.2:5060;branch=z9hG4bK78;rport")
    )
    old_style = subscribe(Via="SIP/2.0/UDP 10.231.0.2:5060;branch=1")
    assert transaction_key(old_style)[0] == "c1@10.231.0.2|3 SUBSCRIBE"


def test_pnp_notify_is_in_the_dialog() -> None:
    sub = subscribe()
    uri, target = notify_target(sub, SOURCE)
    assert (uri, target) == ("sip:10.231.0.2:5062", ("10.231.0.2", 5062))
    notify = make_pnp_notify(
        sub,
        url="http://10.231.0.1:8080/prov.py?mac=00095200000E",
        to_tag="ours1",
        branch=make_branch("abcd1234"),
        local=("10.231.0.1", 5060),
        target_uri=uri,
    )
    assert (notify.method, notify.uri) == ("NOTIFY", "sip:10.231.0.2:5062")
    assert notify.header("Call-ID") == sub.header("Call-ID")
    assert notify.header("To") == sub.header("From")
    assert parse_name_addr(notify.required("From")).tag == "ours1"
    assert parse_event(notify.required("Event")).package == "ua-profile"
    assert notify.header("Content-Type") == "application/url"
    assert notify.body == b"http://10.231.0.1:8080/prov.py?mac=00095200000E"
    assert top_via(notify).branch == "z9hG4bKabcd1234"
    assert parse_message(build_message(notify)) == notify


@pytest.mark.parametrize(
    "contact",
    [
        "",
        "<sip:phone.example:5062>",  # a name we would have to resolve
        "<sip:10.231.0.99:5060>",  # somewhere else: not a reflector for forged SUBSCRIBEs
    ],
)
def test_notify_falls_back_to_the_source_address(contact: str) -> None:
    assert notify_target(subscribe(Contact=contact), SOURCE) == ("sip:10.231.0.2:40000", SOURCE)


@pytest.mark.parametrize("url", ["http://x/a b", "http://x/\r\nVia: evil", ""])
def test_notify_refuses_a_url_that_is_not_one_token(url: str) -> None:
    with pytest.raises(InputError) as refused:
        make_pnp_notify(
            subscribe(), url=url, to_tag="abcd", branch="z9hG4bKabcd", local=("a", 1),
            target_uri="sip:x",
        )  # fmt: skip
    assert url == "" or url not in str(refused.value)  # the URL may carry a device token


def test_a_refused_url_is_not_repeated_in_the_error() -> None:
    """A device token in the URL is a credential: errors (which get logged) leave it out."""
    url = "http://10.0.0.1/t/0123456789abcdef0123/prov.py?mac=x y"
    with pytest.raises(InputError, match=f"position {url.index(' ')}") as refused:
        make_check_sync(
            target=("a", 1), local=("b", 2), event="check-sync", call_id="cccc",
            from_tag="tttt", branch="z9hG4bKbbbb", url=url,
        )  # fmt: skip
    assert "0123456789abcdef" not in str(refused.value)


def test_check_sync_notify() -> None:
    notify = make_check_sync(
        target=("10.231.0.2", 5060),
        local=("10.231.0.1", 41000),
        event="check-sync;reboot=false",
        call_id="callid01",
        from_tag="tag01",
        branch=make_branch("br01br01"),
    )
    assert (notify.method, notify.uri) == ("NOTIFY", "sip:10.231.0.2:5060")
    assert notify.header("Event") == "check-sync;reboot=false"
    assert top_via(notify).host == "10.231.0.1" and top_via(notify).port == 41000
    assert notify.body == b""
    assert parse_message(build_message(notify)) == notify


URL = "http://10.231.0.1:8080/prov.py?mac=00095200000E&x=<y>"


def test_check_sync_notify_with_the_url() -> None:
    notify = make_check_sync(
        target=("10.231.0.2", 5060), local=("10.231.0.1", 41000), event="check-sync",
        call_id="callid01", from_tag="tag01", branch=make_branch("br01br01"), url=URL,
    )  # fmt: skip
    assert notify.header("Content-Type") == NOTIFY_SYNC_CONTENT_TYPE == "application/xml"
    assert notify.body == (
        b'<?xml version="1.0" encoding="utf-8"?>\n<notifySync><checkSync>'
        b"<url>http://10.231.0.1:8080/prov.py?mac=00095200000E&amp;x=&lt;y&gt;</url>"
        b"<dataAvailable>true</dataAvailable></checkSync></notifySync>"
    )
    again = parse_message(build_message(notify))
    assert again == notify
    assert decode_notify_sync(again.body) == NotifySync(URL, True)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<notifySync/>", NotifySync()),
        (b"<notifySync><checkSync/></notifySync>", NotifySync()),
        (b"<notifySync><checkSync><url> </url></checkSync></notifySync>", NotifySync()),
        (
            b"<notifySync><checkSync><dataAvailable>false</dataAvailable></checkSync></notifySync>",
            NotifySync(None, False),
        ),
        (b"<notifySync><checkSync><url> http://h/a </url></checkSync></notifySync>",
         NotifySync("http://h/a")),
    ],
)  # fmt: skip
def test_decode_notify_sync(body: bytes, expected: NotifySync) -> None:
    assert decode_notify_sync(body) == expected


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"<sync/>", "is not <notifySync>"),
        (b"<notifySync><checkSync><dataAvailable>yes</dataAvailable></checkSync></notifySync>",
         "not true or false"),
        (b"<notifySync><checkSync><url>http://h/a b</url></checkSync></notifySync>", "ASCII"),
        (b"<notifySync>", "well-formed"),
    ],
)  # fmt: skip
def test_decode_notify_sync_refuses(body: bytes, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        decode_notify_sync(body)


@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1), st.booleans())
def test_notify_sync_round_trip(url: str, available: bool) -> None:
    sync = NotifySync(url, available)
    assert decode_notify_sync(encode_notify_sync(sync)) == sync


@given(st.binary(max_size=200))
def test_notify_sync_arbitrary_bytes_give_a_value_or_input_error(data: bytes) -> None:
    with contextlib.suppress(InputError):
        assert isinstance(decode_notify_sync(data), NotifySync)


@pytest.mark.parametrize("event", ["presence", "check-sync\r\nX: y", ""])
def test_check_sync_refuses_other_events(event: str) -> None:
    with pytest.raises(InputError):
        make_check_sync(
            target=("a", 1), local=("b", 2), event=event, call_id="cccc", from_tag="tttt",
            branch="z9hG4bKbbbb",
        )  # fmt: skip


@pytest.mark.parametrize("part", ["", "a b", "x\r\n", "abc"])
def test_branch_needs_a_token(part: str) -> None:
    with pytest.raises(InputError):
        make_branch(part)


def test_response_branch() -> None:
    response = with_header(Response(200, "OK"), "Via", "SIP/2.0/UDP a;branch=z9hG4bKq")
    assert isinstance(response, Response)
    assert response_branch(response) == "z9hG4bKq"
