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
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..core.errors import ConfigError, InputError
from ..core.sipdialog import (
    PNP_GROUP,
    Address,
    PnpSubscribe,
    describe,
    make_branch,
    make_pnp_notify,
    make_response,
    notify_target,
    read_pnp_subscribe,
    response_address,
    transaction_key,
)
from ..core.sipmsg import Request, Response, build_message, parse_message
from ..core.siptimers import ResponseCache, Timers
from .transport import ClientTransactions, multicast_socket, open_endpoint, unicast_socket

LOG = logging.getLogger("phoneprov.sip.pnp")
SIP_PORT = 5060
MAX_PENDING_NOTIFY = 256  # NOTIFYs in flight; beyond that a SUBSCRIBE flood is ignored

# The policy: the URL for a phone (its SUBSCRIBE data and source IP), or None to ignore it.
UrlFor = Callable[[PnpSubscribe, str], str | None]
Send = Callable[[bytes, Address], None]


def _random() -> str:
    return secrets.token_hex(8)


class PnpResponder:
    """Answers PnP SUBSCRIBEs; `receive` takes multicast datagrams, `receive_unicast` the
    answers to our NOTIFYs; `send` writes from the unicast socket."""

    def __init__(self, url_for: UrlFor, local: Address, timers: Timers, send: Send) -> None:
        self.url_for, self.local, self.send = url_for, local, send
        self.answered = ResponseCache(timers)
        self.transactions = ClientTransactions(send, timers)
        self.tasks: set[asyncio.Task[None]] = set()
        self.deciding: set[tuple[str, str, str]] = set()  # keys the policy is deciding on
        # one thread: the policy's database connection is used by one thread at a time
        self.decider = ThreadPoolExecutor(1, thread_name_prefix="pnp-policy")

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def receive(self, data: bytes, source: Address) -> None:
        """A multicast datagram: a SUBSCRIBE from a phone, we hope."""
        try:
            request = parse_message(data)
            if not isinstance(request, Request):
                raise InputError(f"a response on the multicast group: {describe(request)}")
            self._on_subscribe(request, source)
        except InputError as e:
            LOG.info("ignored datagram from %s:%d: %s", *source, e)
        except ConfigError as e:
            LOG.error("cannot answer %s:%d: %s", *source, e)

    def _on_subscribe(self, request: Request, source: Address) -> None:
        key = transaction_key(request)
        cached = self.answered.get(key, self._now())
        if cached is not None:  # the phone retransmitted: same answer, no second NOTIFY
            self.send(cached, response_address(request, source))
            return
        if key in self.deciding:  # retransmitted while the policy decides: answered soon
            return
        phone = read_pnp_subscribe(request)
        if len(self.tasks) >= MAX_PENDING_NOTIFY:
            LOG.warning(
                "ignored PnP SUBSCRIBE from %s: %d NOTIFYs pending", phone.mac, len(self.tasks)
            )
            return
        self.deciding.add(key)
        task = asyncio.create_task(self._answer(request, source, phone, key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(
        self, request: Request, source: Address, phone: PnpSubscribe, key: tuple[str, str, str]
    ) -> None:
        """Ask the policy in a worker thread (it reads and writes the state database, which
        must never stall the event loop), then 200 OK and the NOTIFY with the URL."""
        loop = asyncio.get_running_loop()
        try:
            url = await loop.run_in_executor(self.decider, self.url_for, phone, source[0])
        except ConfigError as e:
            LOG.error("cannot answer %s at %s: %s", phone.mac, source[0], e)
            return
        finally:
            self.deciding.discard(key)
        if url is None:
            LOG.info(
                "ignored PnP SUBSCRIBE from %s (%s %s %s): not answered by the policy",
                phone.mac, phone.vendor, phone.model, source[0],
            )  # fmt: skip
            return
        to_tag = _random()
        ok = build_message(make_response(request, 200, to_tag=to_tag))
        target_uri, target = notify_target(request, source)
        notify = make_pnp_notify(
            request, url=url, to_tag=to_tag, branch=make_branch(_random()),
            local=self.local, target_uri=target_uri,
        )  # fmt: skip
        self.answered.put(key, ok, self._now())
        self.send(ok, response_address(request, source))
        LOG.info("PnP: %s (%s) at %s gets %s", phone.mac, phone.model, source[0], url)
        await self._notify(phone, notify, target)

    async def _notify(self, phone: PnpSubscribe, notify: Request, target: Address) -> None:
        outcome = await self.transactions.request(notify, target)
        LOG.info(
            "PnP NOTIFY to %s at %s:%d: %s (%s, %d sends)",
            phone.mac, *target, outcome.verdict, outcome.status or "-", outcome.sends,
        )  # fmt: skip

    def receive_unicast(self, data: bytes, source: Address) -> None:
        """A unicast datagram: the phone's answer to our NOTIFY."""
        try:
            message = parse_message(data)
        except InputError as e:
            LOG.info("ignored datagram from %s:%d: %s", *source, e)
            return
        if not (isinstance(message, Response) and self.transactions.on_response(message)):
            LOG.debug("ignored %s from %s:%d", describe(message), *source)

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
) -> None:
    """Join the PnP group on `interface` and answer until `stop` is set."""
    responder = PnpResponder(url_for, (local_ip, port), timers, lambda d, a: unicast.send(d, a))
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
