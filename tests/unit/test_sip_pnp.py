"""The PnP responder's glue without sockets: datagrams in, datagrams out, the loop's clock."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneprov.core.sipdialog import PnpSubscribe
from phoneprov.core.sipmsg import Request, Response, build_message, parse_message, top_via
from phoneprov.core.siptimers import Timers
from phoneprov.sip.pnp import PnpResponder
from phoneprov.sip.resync import Result
from sample_data import KNOWN, write_sip_config

PHONE = ("10.231.0.2", 5060)
OTHER_PHONE = ("10.231.0.3", 5060)
ATTACKER = ("10.231.0.66", 5060)
LOCAL = ("10.231.0.1", 5060)
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


def forged(n: int, mac: str = "00095200000E", host: str = ATTACKER[0]) -> bytes:
    """A SUBSCRIBE of its own transaction and dialog (branch, Call-ID, From-tag) from `host`."""
    text = SUBSCRIBE.format(branch=f"f{n:05d}").replace("i: call1", f"i: forged{n}@{host}")
    text = text.replace("tag=ph1", f"tag=f{n}").replace("10.231.0.2", host)
    return text.replace("00095200000E", mac).encode()


def inventory(phone: PnpSubscribe, ip: str) -> str | None:
    """Two inventoried phones, from wherever they ask."""
    return f"{URL[:-12]}{phone.mac}" if phone.mac in ("00095200000E", "00095200000F") else None


async def until(check: Callable[[], bool], what: str, seconds: float = 2.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"not within {seconds} s: {what}")


def sent_to(wire: Wire, address: tuple[str, int], kind: type) -> list[Request | Response]:
    return [m for m, a in wire.sent if a == address and isinstance(m, kind)]


def pnp_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("phoneprov.sip")]


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


def test_a_flood_from_one_host_does_not_stop_any_phones_pnp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 11.6: 300 forged SUBSCRIBEs naming an inventoried MAC, from a host that never
    answers the NOTIFYs (timer F 64 s): the phone with that MAC and another phone, each at
    its own address, still get 200 OK and their NOTIFY at once; few log lines."""
    caplog.set_level(logging.DEBUG, "phoneprov")

    async def scenario() -> tuple[Wire, int]:
        wire = Wire()
        responder = PnpResponder(inventory, LOCAL, Timers(1.0), wire.send)
        for n in range(300):
            responder.receive(forged(n), ATTACKER)
            if n % 50 == 0:
                await asyncio.sleep(0.01)  # let the policy decide some meanwhile
        responder.receive(subscribe(), PHONE)
        responder.receive(forged(1, mac="00095200000F", host=OTHER_PHONE[0]), OTHER_PHONE)
        await until(lambda: all(sent_to(wire, a, Request) for a in (PHONE, OTHER_PHONE)), "NOTIFYs")
        pending = len(responder.tasks)
        await responder.close()
        return wire, pending

    wire, pending = asyncio.run(scenario())
    for address in (PHONE, OTHER_PHONE):
        (ok,) = sent_to(wire, address, Response)
        assert isinstance(ok, Response) and ok.status == 200
    assert len(sent_to(wire, ATTACKER, Request)) <= 4  # the flood's NOTIFYs: per-source bound
    assert pending <= 6
    assert len(pnp_lines(caplog)) <= 40, "\n".join(pnp_lines(caplog))


def test_one_host_gets_a_bounded_number_of_decisions_per_minute() -> None:
    """Issue 11.6: each SUBSCRIBE from one host (one at a time) costs a decision, at most
    sip.pnp_source_per_minute (30) a minute."""
    decided: list[str | None] = []

    def policy(phone: PnpSubscribe, ip: str) -> str | None:
        decided.append(phone.mac)
        return None

    async def scenario() -> None:
        responder = PnpResponder(policy, LOCAL, Timers(), Wire().send)
        for n in range(100):
            responder.receive(forged(n, mac=f"000952{n:06d}"), ATTACKER)
            await settle(responder)
        responder.receive(forged(1, host=OTHER_PHONE[0]), OTHER_PHONE)  # another host: its own
        await settle(responder)
        await responder.close()

    asyncio.run(scenario())
    assert len(decided) == 31 and decided[-1] == "00095200000E"


def test_a_unicast_subscribe_is_answered_like_a_multicast_one() -> None:
    """Issue 11.8: a phone configured with the PnP server's address sends to us directly."""

    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, LOCAL, Timers(0.01), wire.send)
        responder.receive_unicast(subscribe(), PHONE)
        await answered(wire)
        responder.receive_unicast(ok_for(wire.requests()[0]), PHONE)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    (ok,) = wire.responses()
    assert ok.status == 200 and wire.requests()[0].body == URL.encode()


def test_same_dialog_ids_on_a_new_branch_get_482_not_a_second_dialog() -> None:
    """Issue 11.8, RFC 3261 §8.2.2.2: same Call-ID, CSeq and From-tag, another branch."""

    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, LOCAL, Timers(1.0), wire.send)
        responder.receive(subscribe("aaaa"), PHONE)
        await answered(wire)
        responder.receive(subscribe("bbbb"), PHONE)
        responder.receive(subscribe("bbbb"), PHONE)  # its retransmission: the same 482
        await asyncio.sleep(0.05)
        responder.receive_unicast(ok_for(wire.requests()[0]), PHONE)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    assert [r.status for r in wire.responses()] == [200, 482, 482]
    assert top_via(wire.responses()[1]).branch == "z9hG4bKbbbb"
    assert len({n.header("Call-ID") for n in wire.requests()}) == 1  # one NOTIFY transaction
    assert len({top_via(n).branch for n in wire.requests()}) == 1


def test_no_via_branch_and_another_port() -> None:
    """Issue 11.8: answered at the Via port; a retransmission (no branch to match) absorbed."""
    datagram = (
        subscribe()
        .replace(b"10.231.0.2:5060;branch=z9hG4bKaaaa;rport", b"10.231.0.2:5062")
        .replace(b"m: <sip:10.231.0.2:5060>", b"m: <sip:10.231.0.2:5062>")
    )
    source = ("10.231.0.2", 5062)

    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(known_only, LOCAL, Timers(1.0), wire.send)
        responder.receive(datagram, source)
        await answered(wire)
        responder.receive(datagram, source)
        responder.receive_unicast(ok_for(wire.requests()[0]), source)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    assert [(m.status, a) for m, a in wire.sent if isinstance(m, Response)] == [(200, source)] * 2
    assert [a for m, a in wire.sent if isinstance(m, Request)] == [source]


def test_a_subscribe_without_a_mac_goes_to_the_policy() -> None:
    """Issue 11.8: no MAC at all (AudioCodes): the policy may know the phone by its lease."""
    datagram = subscribe().replace(b"MAC%3a00095200000E@", b"")
    asked: list[tuple[str | None, str]] = []

    def by_lease(phone: PnpSubscribe, ip: str) -> str | None:
        asked.append((phone.mac, ip))
        return URL if ip == PHONE[0] else None

    async def scenario() -> Wire:
        wire = Wire()
        responder = PnpResponder(by_lease, LOCAL, Timers(1.0), wire.send)
        responder.receive(datagram, PHONE)
        await answered(wire)
        responder.receive_unicast(ok_for(wire.requests()[0]), PHONE)
        await settle(responder)
        return wire

    wire = asyncio.run(scenario())
    assert asked == [(None, PHONE[0])]
    assert wire.requests()[0].body == URL.encode()


def test_no_log_line_shows_a_device_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 11.7: in token mode the URL carries a credential: logs show 4 characters of it."""
    from phoneprov.config import load_config
    from phoneprov.sip.policy import PnpPolicy

    config = write_sip_config(tmp_path)
    config.write_text(config.read_text() + '[security]\nmode = "token"\nsecret_file = "secret"\n')
    policy = PnpPolicy(load_config(config))
    url = policy(PnpSubscribe(KNOWN, "", "", "", ""), PHONE[0])
    assert url is not None and "/t/" in url
    token = url.split("/t/")[1].split("/")[0]
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        wire = Wire()
        responder = PnpResponder(policy, LOCAL, Timers(0.01), wire.send)
        responder.receive(subscribe().replace(b"00095200000E", KNOWN.encode()), PHONE)
        await answered(wire)
        await settle(responder)  # no answer: retransmitted until timer F
        await responder.close()

    try:
        asyncio.run(scenario())
    finally:
        policy.state.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"/t/{token[:4]}.../" in text
    assert token[:5] not in text


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
