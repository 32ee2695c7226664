"""The PnP responder's glue without sockets: datagrams in, datagrams out, the loop's clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from phoneprov.core.sipdialog import PnpSubscribe
from phoneprov.core.sipmsg import Request, Response, build_message, parse_message, top_via
from phoneprov.core.siptimers import Timers
from phoneprov.sip.pnp import PnpResponder
from phoneprov.sip.resync import Result

PHONE = ("10.231.0.2", 5060)
SUBSCRIBE = (
    "SUBSCRIBE sip:MAC%3a00095200000E@224.0.1.75 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 10.231.0.2:5060;branch=z9hG4bK{branch};rport\r\n"
    "f: <sip:MAC%3a00095200000E@224.0.1.75>;tag=ph1\r\n"
    "t: <sip:MAC%3a00095200000E@224.0.1.75>\r\n"
    "i: call1\r\nCSeq: 1 SUBSCRIBE\r\nm: <sip:10.231.0.2:5060>\r\n"
    'o: ua-profile;profile-type="device";vendor="Auerswald";model="D200";version="1"\r\n'
    "l: 0\r\n\r\n"
)
URL = "http://10.231.0.1:8080/prov.py?mac=00095200000E"


def subscribe(branch: str = "aaaa") -> bytes:
    return SUBSCRIBE.format(branch=branch).encode()


class Wire:
    """Collects what the responder sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[Request | Response, tuple[str, int]]] = []

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        self.sent.append((parse_message(data), address))

    def requests(self) -> list[Request]:
        return [m for m, _ in self.sent if isinstance(m, Request)]

    def responses(self) -> list[Response]:
        return [m for m, _ in self.sent if isinstance(m, Response)]


def known_only(phone: PnpSubscribe, ip: str) -> str | None:
    return URL if phone.mac == "00095200000E" and ip == PHONE[0] else None


def ok_for(request: Request) -> bytes:
    headers = tuple((n, request.required(n)) for n in ("Via", "From", "To", "Call-ID", "CSeq"))
    return build_message(Response(200, "OK", headers))


async def settle(responder: PnpResponder) -> None:
    await asyncio.gather(*responder.tasks)


async def answered(wire: Wire) -> None:
    """Until the responder sent its first answer (the policy decides in a worker thread)."""
    for _ in range(500):
        if wire.sent:
            return
        await asyncio.sleep(0.002)
    raise AssertionError("no answer within a second")


def test_answers_then_notifies_until_the_phone_says_ok() -> None:
    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, ("10.231.0.1", 5060), Timers(0.01), wire.send)
        responder.receive(subscribe(), PHONE)
        await answered(wire)
        await asyncio.sleep(0.025)  # the NOTIFY is retransmitted meanwhile (T1 = 10 ms)
        notify = wire.requests()[0]
        responder.receive_unicast(ok_for(notify), PHONE)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    (ok, ok_to), *_ = wire.sent
    assert isinstance(ok, Response) and ok.status == 200 and ok_to == PHONE
    notifies = wire.requests()
    assert len(notifies) >= 2 and all(n == notifies[0] for n in notifies)
    assert notifies[0].body == URL.encode() and notifies[0].header("Call-ID") == "call1"
    assert top_via(notifies[0]).host == "10.231.0.1"


def test_a_retransmitted_subscribe_gets_the_same_answer_and_no_second_notify() -> None:
    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, ("10.231.0.1", 5060), Timers(1.0), wire.send)
        responder.receive(subscribe(), PHONE)
        responder.receive(subscribe(), PHONE)  # while the policy decides: absorbed
        await answered(wire)
        responder.receive(subscribe(), PHONE)  # after: the same answer again
        responder.receive_unicast(ok_for(wire.requests()[0]), PHONE)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    assert len(wire.requests()) == 1
    first, again = wire.responses()
    assert first == again


def test_retransmits_and_gives_up_at_timer_f() -> None:
    timers = Timers(0.01)  # F = 0.64 s

    async def scenario() -> tuple[Wire, float]:
        wire = Wire()
        responder = PnpResponder(known_only, ("10.231.0.1", 5060), timers, wire.send)
        started = asyncio.get_running_loop().time()
        responder.receive(subscribe(), PHONE)
        await asyncio.wait_for(settle(responder), timeout=5)
        return wire, asyncio.get_running_loop().time() - started

    wire, elapsed = asyncio.run(scenario())
    assert 3 <= len(wire.requests()) <= 7  # 7 on time; a slow loop may skip some
    assert timers.f <= elapsed < timers.f + 1


def test_the_policy_runs_off_the_event_loop_thread() -> None:
    """The policy may write SQLite (enrol, discovered): never on the loop's thread."""
    threads: list[int] = []

    def policy(phone: PnpSubscribe, ip: str) -> str | None:
        threads.append(threading.get_ident())
        return None

    async def scenario() -> None:
        wire = Wire()
        responder = PnpResponder(policy, ("10.231.0.1", 5060), Timers(), wire.send)
        responder.receive(subscribe(), PHONE)
        await settle(responder)

    asyncio.run(scenario())
    assert threads and threads[0] != threading.get_ident()


@pytest.mark.parametrize(
    "datagram",
    [
        b"garbage",
        b"SIP/2.0 200 OK\r\n\r\n",
        subscribe().replace(b"ua-profile", b"presence"),
        subscribe().replace(b"00095200000E", b"00095200FFFF"),  # the policy says no
    ],
)
def test_everything_else_is_left_unanswered(datagram: bytes) -> None:
    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, ("10.231.0.1", 5060), Timers(), wire.send)
        responder.receive(datagram, PHONE)
        responder.receive_unicast(datagram, PHONE)
        await settle(responder)
        return wire

    assert asyncio.run(scenario()).sent == []


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (Result("A", "10.0.0.2", "accepted", 200, "OK", 1), "A 10.0.0.2 accepted (200 OK)"),
        (Result("A", "10.0.0.2", "refused", 486, "", 2), "A 10.0.0.2 refused (486)"),
        (Result("A", "10.0.0.2", "no answer", sends=7), "A 10.0.0.2 no answer (7 sends)"),
        (Result("A", None, "no lease"), "A - no lease (not sent)"),
        (Result("A", "10.0.0.2", "interrupted"), "A 10.0.0.2 interrupted"),
    ],
)
def test_resync_report_lines(result: Result, line: str) -> None:
    assert result.line() == line
