"""The phone's PnP exchange without sockets: the SUBSCRIBE, retransmission, the NOTIFY.

The server side is played by `core.sipdialog` (what phoneprov's own responder sends), so
both halves are checked against each other.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import InputError
from phoneprov.core.markers import DeviceInfo
from phoneprov.core.sipdialog import (
    PNP_GROUP,
    PnpSubscribe,
    make_branch,
    make_pnp_notify,
    make_response,
    notify_target,
    read_pnp_subscribe,
)
from phoneprov.core.sipmsg import (
    Request,
    Response,
    build_message,
    parse_message,
    parse_name_addr,
    top_via,
    with_header,
)
from phoneprov.core.siptimers import Timers
from phoneprov.phone.pnp_client import PnpDiscovery, make_subscribe

PHONE = ("10.231.0.50", 5060)
SERVER = ("10.231.0.1", 5060)
GROUP = (PNP_GROUP, 5060)
URL = "http://10.231.0.1:8080/prov/<MACADR>.xml"
DEVICE = DeviceInfo("0009.5200.000e", "D200", "S1")


def the_subscribe() -> Request:
    return make_subscribe(
        DEVICE, local=PHONE, call_id="c1@10.231.0.50", from_tag="phone1", branch="z9hG4bKs1"
    )


def started(now: float = 0.0) -> tuple[PnpDiscovery, Request]:
    discovery = PnpDiscovery(the_subscribe(), Timers(), GROUP)
    out = discovery.start(now)
    assert [address for _, address in out] == [GROUP]
    sent = parse_message(out[0][0])
    assert isinstance(sent, Request)
    return discovery, sent


def notify(sent: Request, url: str = URL, **replace: str) -> bytes:
    uri, _ = notify_target(sent, PHONE)
    message = make_pnp_notify(
        sent, url=url, to_tag="srv1", branch=make_branch("n0001"), local=SERVER, target_uri=uri
    )
    for name, value in replace.items():
        message = with_header(message, name.replace("_", "-"), value)
    return build_message(message)


def reply(out: list[tuple[bytes, tuple[str, int]]]) -> Response:
    assert len(out) == 1
    data, address = out[0]
    assert address == SERVER  # the NOTIFY's Via has rport: back to its source
    response = parse_message(data)
    assert isinstance(response, Response)
    return response


def test_subscribe_is_what_the_responder_reads() -> None:
    sent = parse_message(build_message(the_subscribe()))
    assert isinstance(sent, Request)
    assert sent.uri == "sip:MAC%3a00095200000E@224.0.1.75"
    assert read_pnp_subscribe(sent) == PnpSubscribe(
        "00095200000E", "Auerswald", "D200", "0.0.0-phoneprov-sim", "device"
    )
    assert parse_name_addr(sent.required("From")).tag == "phone1"
    assert sent.header("Accept") == "application/url"
    assert sent.header("Expires") == "0"
    # both where the 200 and where the NOTIFY go name the phone's socket
    assert notify_target(sent, PHONE) == ("sip:10.231.0.50:5060", PHONE)
    assert top_via(sent).port == 5060


def test_subscribe_needs_a_mac() -> None:
    with pytest.raises(InputError, match="MAC"):
        make_subscribe(DeviceInfo(type="D200"), local=PHONE, call_id="c", from_tag="t", branch="b")


def test_model_is_quoted() -> None:
    sent = make_subscribe(
        DeviceInfo("00095200000E", 'D"X'), local=PHONE, call_id="c", from_tag="t", branch="b"
    )
    parsed = parse_message(build_message(sent))
    assert isinstance(parsed, Request) and read_pnp_subscribe(parsed).model == 'D"X'


def test_retransmits_from_t1_doubling_until_answered() -> None:
    discovery, _ = started()
    sends = []
    while (wake := discovery.wake_at()) is not None and wake < 10:
        if discovery.timer(wake):
            sends.append(wake)
    assert sends == [0.5, 1.5, 3.5, 7.5]


def test_200_stops_retransmission_then_notify_gives_the_url() -> None:
    discovery, sent = started()
    ok = build_message(make_response(sent, 200, to_tag="srv1"))
    assert discovery.datagram(ok, SERVER, 0.1) == []
    assert discovery.status == 200 and discovery.wake_at() is None
    assert discovery.timer(5.0) == []
    assert discovery.url is None
    answer = reply(discovery.datagram(notify(sent), SERVER, 0.2))
    assert (answer.status, answer.reason) == (200, "OK")
    assert answer.header("Call-ID") == "c1@10.231.0.50"
    assert answer.header("CSeq") == "1 NOTIFY"
    assert discovery.url == URL
    assert discovery.notified is not None and discovery.notified.source == SERVER


def test_notify_before_the_200_is_taken_and_ends_retransmission() -> None:
    discovery, sent = started()
    reply(discovery.datagram(notify(sent), SERVER, 0.1))
    assert discovery.url == URL and discovery.wake_at() is None


def test_retransmitted_notify_is_answered_again_first_url_kept() -> None:
    discovery, sent = started()
    first = reply(discovery.datagram(notify(sent), SERVER, 0.1))
    again = reply(discovery.datagram(notify(sent, url="http://other/"), SERVER, 0.6))
    assert again.status == first.status == 200
    assert discovery.url == URL


def test_final_refusal_stops_retransmission_but_keeps_listening() -> None:
    discovery, sent = started()
    refused = build_message(make_response(sent, 489))
    discovery.datagram(refused, SERVER, 0.1)
    assert discovery.status == 489 and discovery.wake_at() is None
    assert discovery.url is None
    reply(discovery.datagram(notify(sent), SERVER, 0.2))  # another server on the LAN
    assert discovery.url == URL


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Call_ID": "other@x"}, 481),
        ({"To": "<sip:MAC%3a00095200000E@224.0.1.75>;tag=notmine"}, 481),
        ({"Event": "presence"}, 489),
        ({"Content_Type": "text/plain"}, 415),
    ],
)
def test_notify_for_something_else_is_refused(change: dict[str, str], status: int) -> None:
    discovery, sent = started()
    answer = reply(discovery.datagram(notify(sent, **change), SERVER, 0.1))
    assert answer.status == status and answer.reason
    assert discovery.url is None and discovery.wake_at() is not None


def test_other_methods_get_405_ack_gets_nothing() -> None:
    discovery, sent = started()
    request = parse_message(notify(sent))
    assert isinstance(request, Request)
    options = build_message(Request("OPTIONS", request.uri, request.headers))
    answer = reply(discovery.datagram(options, SERVER, 0.1))
    assert answer.status == 405 and answer.header("Allow") == "NOTIFY"
    ack = build_message(Request("ACK", request.uri, request.headers))
    assert discovery.datagram(ack, SERVER, 0.1) == []
    assert discovery.url is None


def test_strangers_responses_are_ignored() -> None:
    discovery, sent = started()
    other = with_header(sent, "Via", "SIP/2.0/UDP 10.231.0.50:5060;branch=z9hG4bKother")
    assert isinstance(other, Request)
    discovery.datagram(build_message(make_response(other, 200)), SERVER, 0.1)
    assert discovery.status is None and discovery.wake_at() == 0.5
    assert discovery.ignored == 1


@given(st.binary(max_size=300))
def test_garbage_is_ignored(data: bytes) -> None:
    discovery, _ = started()
    out = discovery.datagram(data, SERVER, 0.1)
    # whatever it is, nothing ends the exchange but a NOTIFY in our dialog
    assert discovery.url is None
    assert all(address == SERVER for _, address in out)
