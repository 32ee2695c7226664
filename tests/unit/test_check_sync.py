"""The phone's answer to a check-sync NOTIFY (and to anything else), without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.sipdialog import make_branch, make_check_sync
from phoneprov.core.sipmsg import Request, Response, build_message, parse_message, parse_name_addr
from phoneprov.phone.check_sync import CheckSync, handle_datagram

PHONE = ("10.231.0.50", 5060)
SENDER = ("10.231.0.1", 40000)


def check_sync(event: str = "check-sync;reboot=false") -> Request:
    return make_check_sync(
        target=PHONE, local=SENDER, event=event, call_id="cs0001", from_tag="srv1",
        branch=make_branch("b0001"),
    )  # fmt: skip


def answered(data: bytes) -> tuple[CheckSync | None, Response]:
    got, out = handle_datagram(data, SENDER, to_tag="ph01")
    assert out is not None
    reply, address = out
    assert address == SENDER  # the sender's Via has rport
    response = parse_message(reply)
    assert isinstance(response, Response)
    return got, response


def test_check_sync_is_answered_200_and_reported() -> None:
    got, response = answered(build_message(check_sync()))
    assert (response.status, response.reason) == (200, "OK")
    assert response.header("Call-ID") == "cs0001" and response.header("CSeq") == "1 NOTIFY"
    assert parse_name_addr(response.required("To")).tag == "ph01"
    assert got is not None
    assert got.header == "check-sync;reboot=false"
    assert got.reboot is False and got.source == SENDER


@pytest.mark.parametrize(
    ("event", "reboot"),
    [("check-sync", None), ("Check-Sync;reboot=true", True), ("check-sync;reboot=x", None)],
)
def test_reboot_parameter(event: str, reboot: bool | None) -> None:
    got, response = answered(build_message(check_sync(event)))
    assert response.status == 200
    assert got is not None and got.reboot is reboot


def test_other_event_gets_489_and_is_not_reported() -> None:
    notify = check_sync()
    other = Request("NOTIFY", notify.uri, tuple(
        (k, "presence" if k == "Event" else v) for k, v in notify.headers
    ))  # fmt: skip
    got, response = answered(build_message(other))
    assert got is None
    assert (response.status, response.header("Allow-Events")) == (489, "check-sync")


def test_notify_without_event_gets_400() -> None:
    notify = check_sync()
    bare = Request("NOTIFY", notify.uri, tuple(h for h in notify.headers if h[0] != "Event"))
    got, response = answered(build_message(bare))
    assert got is None and response.status == 400


def test_other_method_gets_405() -> None:
    notify = check_sync()
    got, response = answered(build_message(Request("INVITE", notify.uri, notify.headers)))
    assert got is None
    assert (response.status, response.header("Allow")) == (405, "NOTIFY")


def test_ack_and_responses_get_nothing() -> None:
    notify = check_sync()
    ack = Request("ACK", notify.uri, notify.headers)
    assert handle_datagram(build_message(ack), SENDER, to_tag="ph01") == (None, None)
    response = Response(200, "OK", notify.headers)
    assert handle_datagram(build_message(response), SENDER, to_tag="ph01") == (None, None)


def test_unanswerable_request_gets_nothing() -> None:
    bare = Request("NOTIFY", "sip:10.231.0.50", (("Event", "check-sync"),))
    assert handle_datagram(build_message(bare), SENDER, to_tag="ph01") == (None, None)


@given(st.binary(max_size=300))
def test_garbage_gets_nothing_or_an_error_answer(data: bytes) -> None:
    got, out = handle_datagram(data, SENDER, to_tag="ph01")
    assert got is None
    assert out is None or isinstance(parse_message(out[0]), Response)
