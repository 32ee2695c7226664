"""The multicast PnP responder: glue from datagrams to `core.sipdialog` and back.

Phones multicast `SUBSCRIBE Event: ua-profile` to 224.0.1.75:5060. For a phone the policy
accepts (`url_for` returns its URL) we answer `200 OK` and then send a NOTIFY with the URL,
retransmitted until the phone says 200. Everything else is logged and left unanswered: the
LAN may have other PnP servers, and silence tells a scanner nothing.
Anyone on the LAN can forge a NOTIFY to a phone: use this on trusted LANs only.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..core.errors import ConfigError, InputError
from ..core.sipdialog import (
    PNP_GROUP,
    Address,
    PnpSubscribe,
    describe,
    loop_key,
    make_branch,
    make_pnp_notify,
    make_response,
    notify_target,
    read_pnp_subscribe,
    response_address,
    transaction_key,
)
from ..core.sipmsg import Request, build_message, parse_message
from ..core.siptimers import ResponseCache, ServerMemory, Timers
from .bounds import LogLimiter, RateLimiter
from .transport import ClientTransactions, multicast_socket, open_endpoint, unicast_socket

LOG = logging.getLogger("phoneprov.sip.pnp")
SIP_PORT = 5060
MAX_PENDING_NOTIFY = 256  # SUBSCRIBEs being answered in all; beyond that one is ignored
ANSWER_LINES = 120  # lines a minute about answered phones (others: bounds.LOG_PER_MINUTE)
TOKEN_IN_URL = re.compile(r"/t/([^/]{0,4})[^/]*/")

# The policy: the URL for a phone (its SUBSCRIBE data and source IP), or None to ignore it.
UrlFor = Callable[[PnpSubscribe, str], str | None]
Send = Callable[[bytes, Address], None]
Key = tuple[str, str, str]


@dataclass(frozen=True)
class PnpLimits:
    """How much of the responder one LAN host, or one MAC, may hold (issue 11.6)."""

    source_pending: int = 4  # SUBSCRIBEs of one source IP being answered at once
    source_per_minute: int = 30  # new SUBSCRIBEs of one source IP a minute
    mac_pending: int = 2  # per MAC; a newer SUBSCRIBE replaces the oldest
    pending: int = MAX_PENDING_NOTIFY  # in all


def shown_url(url: str) -> str:
    """A URL for logs: a device token is a credential, only its first 4 characters show.

    >>> shown_url("http://10.0.0.1/t/0123456789abcdef/prov.py?mac=00095200000E")
    'http://10.0.0.1/t/0123.../prov.py?mac=00095200000E'
    """
    return TOKEN_IN_URL.sub(r"/t/\1.../", url, count=1)


def _random() -> str:
    return secrets.token_hex(8)


class PnpResponder:
    """Answers PnP SUBSCRIBEs; `receive` takes multicast datagrams, `receive_unicast` the
    unicast ones (answers to our NOTIFYs, SUBSCRIBEs sent to us directly); `send` writes
    from the unicast socket.

    Bounds (`PnpLimits`): one source IP gets a few new SUBSCRIBEs a minute and a few answered
    at once; one MAC a few at once, a newer SUBSCRIBE replacing the oldest (of the same
    source first). So a flood from one host neither stops another phone's PnP nor the PnP
    of the phone whose MAC it names from that phone's own address. Log lines are
    rate-limited per message.
    """

    def __init__(
        self,
        url_for: UrlFor,
        local: Address,
        timers: Timers,
        send: Send,
        limits: PnpLimits | None = None,
    ) -> None:
        self.url_for, self.local, self.send = url_for, local, send
        self.limits = limits or PnpLimits()
        self.answered = ResponseCache(timers)
        self.loops: ServerMemory[Key] = ServerMemory(timers)  # loop_key -> its transaction
        self.transactions = ClientTransactions(send, timers)
        self.tasks: set[asyncio.Task[None]] = set()
        self.deciding: set[Key] = set()  # keys the policy is deciding on
        self.origin: dict[asyncio.Task[None], tuple[str, str]] = {}  # task -> (IP, MAC key)
        self.by_source: Counter[str] = Counter()
        self.by_mac: dict[str, list[asyncio.Task[None]]] = {}  # oldest first
        self.new_per_source = RateLimiter(self.limits.source_per_minute)
        self.logs = LogLimiter(LOG)  # what a flood can provoke: refusals, ignored datagrams
        self.answers = LogLimiter(LOG, ANSWER_LINES, ANSWER_LINES)  # answered phones
        # one thread: the policy's database connection is used by one thread at a time
        self.decider = ThreadPoolExecutor(1, thread_name_prefix="pnp-policy")

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def receive(self, data: bytes, source: Address) -> None:
        """A multicast datagram: a SUBSCRIBE from a phone, we hope."""
        self._datagram(data, source, multicast=True)

    def receive_unicast(self, data: bytes, source: Address) -> None:
        """A unicast datagram: the phone's answer to our NOTIFY, or a SUBSCRIBE sent to our
        address (a phone configured with the PnP server), answered like a multicast one."""
        self._datagram(data, source, multicast=False)

    def _datagram(self, data: bytes, source: Address, *, multicast: bool) -> None:
        try:
            message = parse_message(data)
            if isinstance(message, Request):
                self._on_subscribe(message, source)
            elif multicast:
                raise InputError(f"a response on the multicast group: {describe(message)}")
            elif not self.transactions.on_response(message):
                self.logs.debug("ignored %s from %s:%d", describe(message), *source)
        except InputError as e:
            self.logs.info("ignored datagram from %s:%d: %s", *source, e)
        except ConfigError as e:
            self.logs.error("cannot answer %s:%d: %s", *source, e)

    def _on_subscribe(self, request: Request, source: Address) -> None:
        now, key, ip = self._now(), transaction_key(request), source[0]
        cached = self.answered.get(key, now)
        if cached is not None:  # the phone retransmitted: same answer, no second NOTIFY
            self.send(cached, response_address(request, source))
            return
        if key in self.deciding:  # retransmitted while the policy decides: answered soon
            return
        if not self.new_per_source.allow(ip, now):
            self.logs.warning(
                "ignored SUBSCRIBE from %s: more than %d a minute from that address",
                ip, self.limits.source_per_minute,
            )  # fmt: skip
            return
        loop = loop_key(request)
        if loop is not None and self._looped(request, source, key, loop, now):
            return
        phone = read_pnp_subscribe(request)
        refusal = self._refusal(ip)
        if refusal:
            self.logs.warning("ignored PnP SUBSCRIBE from %s at %s: %s",
                              phone.mac or "-", ip, refusal)  # fmt: skip
            return
        mac_key = phone.mac or f"at {ip}"
        self._make_room(mac_key, ip)
        self.deciding.add(key)
        if loop is not None:
            self.loops.put(loop, key, now)
        task = asyncio.create_task(self._answer(request, source, phone, key))
        self.tasks.add(task)
        self.origin[task] = (ip, mac_key)
        self.by_source[ip] += 1
        self.by_mac.setdefault(mac_key, []).append(task)
        task.add_done_callback(self._forget)

    def _looped(self, request: Request, source: Address, key: Key, loop: Key, now: float) -> bool:
        """RFC 3261 §8.2.2.2: the dialog ids of a transaction we have, on another branch.
        482 when that transaction was answered; dropped while it is being decided (or was
        ignored: silence tells a scanner nothing). False for a request of its own."""
        owner = self.loops.get(loop, now)
        if owner is None or owner == key:
            return False
        if self.answered.get(owner, now) is not None:
            looped = build_message(make_response(request, 482))
            self.answered.put(key, looped, now)
            self.send(looped, response_address(request, source))
            self.logs.info("482 Loop Detected to %s: SUBSCRIBE %s again on another branch",
                           source[0], loop[0])  # fmt: skip
        return True

    def _refusal(self, ip: str) -> str | None:
        if len(self.tasks) >= self.limits.pending:
            return f"{len(self.tasks)} SUBSCRIBEs being answered"
        if self.by_source[ip] >= self.limits.source_pending:
            return f"{self.by_source[ip]} of its SUBSCRIBEs being answered"
        return None

    def _make_room(self, mac_key: str, ip: str) -> None:
        """At most `mac_pending` answers per MAC: the newest SUBSCRIBE wins (a rebooted phone
        does not wait for its stale dialog); the oldest of the same source goes first."""
        mine = self.by_mac.get(mac_key, [])
        while mine and len(mine) >= self.limits.mac_pending:
            same_source = [t for t in mine if self.origin[t][0] == ip]
            oldest = (same_source or mine)[0]
            self.logs.info("PnP: a newer SUBSCRIBE for %s (from %s) replaces one from %s",
                           mac_key, ip, self.origin[oldest][0])  # fmt: skip
            self._forget(oldest)
            oldest.cancel()

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        origin = self.origin.pop(task, None)
        if origin is None:
            return
        ip, mac_key = origin
        self.by_source[ip] -= 1
        if self.by_source[ip] <= 0:
            del self.by_source[ip]
        tasks = self.by_mac[mac_key]
        tasks.remove(task)
        if not tasks:
            del self.by_mac[mac_key]

    async def _answer(
        self, request: Request, source: Address, phone: PnpSubscribe, key: Key
    ) -> None:
        """Ask the policy in a worker thread (it reads and writes the state database, which
        must never stall the event loop), then 200 OK and the NOTIFY with the URL."""
        loop = asyncio.get_running_loop()
        mac = phone.mac or "(no MAC)"
        try:
            url = await loop.run_in_executor(self.decider, self.url_for, phone, source[0])
        except ConfigError as e:
            self.logs.error("cannot answer %s at %s: %s", mac, source[0], e)
            return
        finally:
            self.deciding.discard(key)
        if url is None:
            self.logs.info(
                "ignored PnP SUBSCRIBE from %s (%s %s %s): not answered by the policy",
                mac, phone.vendor, phone.model, source[0],
            )  # fmt: skip
            return
        to_tag = _random()
        try:
            ok = build_message(make_response(request, 200, to_tag=to_tag))
            target_uri, target = notify_target(request, source)
            notify = make_pnp_notify(
                request, url=url, to_tag=to_tag, branch=make_branch(_random()),
                local=self.local, target_uri=target_uri,
            )  # fmt: skip
        except InputError as e:
            self.logs.error("cannot answer %s at %s: %s", mac, source[0], e)
            return
        self.answered.put(key, ok, self._now())
        self.send(ok, response_address(request, source))
        self.answers.info("PnP: %s (%s) at %s gets %s", mac, phone.model, source[0], shown_url(url))
        outcome = await self.transactions.request(notify, target)
        self.answers.info(
            "PnP NOTIFY to %s at %s:%d: %s (%s, %d sends)",
            mac, *target, outcome.verdict, outcome.status or "-", outcome.sends,
        )  # fmt: skip

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.decider.shutdown(wait=True)


async def serve_pnp(
    *,
    interface: str,
    local_ip: str,
    url_for: UrlFor,
    timers: Timers,
    stop: asyncio.Event,
    port: int = SIP_PORT,
    ready: Callable[[], None] | None = None,
    limits: PnpLimits | None = None,
) -> None:
    """Join the PnP group on `interface` and answer until `stop` is set. `limits`: by
    default the policy's own (`PnpPolicy.limits`, from the config), else `PnpLimits()`."""
    if limits is None:
        own = getattr(url_for, "limits", None)
        limits = own if isinstance(own, PnpLimits) else None
    responder = PnpResponder(
        url_for, (local_ip, port), timers, lambda d, a: unicast.send(d, a), limits
    )
    unicast_sock = unicast_socket(local_ip, port, interface)
    unicast = await open_endpoint(unicast_sock, responder.receive_unicast)
    try:
        group_sock = multicast_socket(interface, PNP_GROUP, port)
    except BaseException:
        unicast.close()
        raise
    group = await open_endpoint(group_sock, responder.receive)
    LOG.info("PnP responder on %s (%s), group %s:%d", interface, local_ip, PNP_GROUP, port)
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        LOG.info("PnP responder stopping")
        group.close()
        await responder.close()
        unicast.close()
