"""The phone's answer to a check-sync NOTIFY (and to anything else), without sockets."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.sipdialog import make_branch, make_check_sync
from phoneprov.core.sipmsg import Request, Response, build_message, parse_message, parse_name_addr
from phoneprov.phone.check_sync import CheckSync, handle_datagram
from sample_data import KNOWN, write_sip_config

PHONE = ("10.231.0.50", 5060)
SENDER = ("10.231.0.1", 40000)


def check_sync(event: str = "check-sync;reboot=false", url: str | None = None) -> Request:
    return make_check_sync(
        target=PHONE, local=SENDER, event=event, call_id="cs0001", from_tag="srv1",
        branch=make_branch("b0001"), url=url,
    )  # fmt: skip


def with_body(request: Request, body: bytes, content_type: str = "application/xml") -> Request:
    headers = tuple(h for h in request.headers if h[0] != "Content-Type")
    return Request(request.method, request.uri, (*headers, ("Content-Type", content_type)), body)


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
    assert got.url is None and got.data_available is None


def test_the_url_in_the_body_is_reported() -> None:
    url = "http://10.231.0.1:8080/prov.py?mac=00095200000E"
    got, response = answered(build_message(check_sync(url=url)))
    assert response.status == 200
    assert got is not None and (got.url, got.data_available) == (url, True)


def test_a_body_without_url_is_a_plain_check_sync() -> None:
    body = b"<notifySync><checkSync><dataAvailable>false</dataAvailable></checkSync></notifySync>"
    got, response = answered(build_message(with_body(check_sync(), body)))
    assert response.status == 200
    assert got is not None and (got.url, got.data_available) == (None, False)


def test_a_bad_body_gets_400_and_another_content_type_415() -> None:
    got, response = answered(build_message(with_body(check_sync(), b"<notifySync>")))
    assert got is None and response.status == 400
    got, response = answered(build_message(with_body(check_sync(), b"http://x", "text/plain")))
    assert got is None
    assert (response.status, response.header("Accept")) == (415, "application/xml")


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


# --- our sender (sip/resync via `check_sync`, as resync and apply --resync use it) to the
# --- phone's handler, over loopback


def phone_on_loopback() -> tuple[socket.socket, list[CheckSync | None], threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    got: list[CheckSync | None] = []

    def serve() -> None:
        data, source = sock.recvfrom(65_535)
        check, out = handle_datagram(data, (source[0], source[1]), to_tag="ph01")
        got.append(check)
        if out is not None:
            sock.sendto(*out)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, got, thread


@pytest.mark.parametrize("with_url", [True, False])
def test_sent_check_sync_names_the_entry_url(tmp_path: Path, with_url: bool) -> None:
    from phoneprov.config import load_config
    from phoneprov.sip.resync import check_sync as send
    from phoneprov.site import full_inventory
    from phoneprov.state.db import Lease, State

    path = write_sip_config(tmp_path)
    if not with_url:
        path.write_text(path.read_text().replace("[sip]\n", "[sip]\ncheck_sync_url = false\n"))
    config = load_config(path)
    with State(config.state) as state:
        state.record_lease(Lease(KNOWN, "127.0.0.1"), time.time())
    sock, got, thread = phone_on_loopback()
    try:
        results = send(config, full_inventory(config), [KNOWN], sock.getsockname()[1])
        thread.join(5.0)
    finally:
        sock.close()
    assert [r.verdict for r in results] == ["accepted"]
    assert len(got) == 1 and got[0] is not None
    expected = f"http://prov.lan:8080/prov.py?mac={KNOWN}" if with_url else None
    assert (got[0].url, got[0].data_available) == (expected, True if with_url else None)
