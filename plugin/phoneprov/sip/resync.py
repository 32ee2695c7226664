"""The check-sync sender: `NOTIFY Event: check-sync` to each phone's leased IP, concurrently;
with a target's `url` the NOTIFY's body names it (`<notifySync>`), so the phone fetches it.

Glue only: the message comes from `core.sipdialog`, retransmission from `core.siptimers`
via `transport.ClientTransactions`. A device without a known lease is never sent anything.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError, InputError
from ..core.sipdialog import make_branch, make_check_sync
from ..core.sipmsg import Response, parse_message
from ..core.siptimers import Timers
from .transport import ClientTransactions, Outcome, open_endpoint, source_ip_towards, unicast_socket

if TYPE_CHECKING:
    from ..config import Config
    from ..core.inventory import Inventory

LOG = logging.getLogger("phoneprov.sip.resync")
SIP_PORT = 5060
NO_LEASE = "no lease"
INTERRUPTED = "interrupted"
UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Target:
    mac: str
    ip: str | None  # the leased IP; None: nothing is sent
    event: str  # the Event header value, e.g. check-sync;reboot=false
    url: str | None = None  # the device's entry URL for the body; None: no body


@dataclass(frozen=True)
class Result:
    mac: str
    ip: str | None
    verdict: str  # accepted | refused | no answer | no lease | unreachable | interrupted
    status: int | None = None
    reason: str = ""
    sends: int = 0

    @property
    def accepted(self) -> bool:
        return self.verdict == "accepted"

    def line(self) -> str:
        """One line for the admin: `00095200000E 10.0.0.5 accepted (200 OK)`."""
        detail = {
            "accepted": f"({self.status} {self.reason})".replace(" )", ")"),
            "refused": f"({self.status} {self.reason})".replace(" )", ")"),
            "no answer": f"({self.sends} sends)",
            NO_LEASE: "(not sent)",
            UNREACHABLE: f"({self.reason})",
        }.get(self.verdict, "")
        return f"{self.mac} {self.ip or '-'} {self.verdict} {detail}".rstrip()


async def resync(
    targets: list[Target], *, timers: Timers, stop: asyncio.Event, port: int = SIP_PORT
) -> list[Result]:
    """Send check-sync to every target with a lease; results in the order of `targets`."""
    if not any(t.ip for t in targets):
        return [Result(t.mac, None, NO_LEASE) for t in targets]
    transactions = ClientTransactions(lambda d, a: endpoint.send(d, a), timers)

    def on_datagram(data: bytes, source: tuple[str, int]) -> None:
        try:
            message = parse_message(data)
        except InputError as e:
            LOG.info("ignored datagram from %s:%d: %s", *source, e)
            return
        if not (isinstance(message, Response) and transactions.on_response(message)):
            LOG.debug("ignored a datagram from %s:%d", *source)

    endpoint = await open_endpoint(unicast_socket("0.0.0.0", 0), on_datagram)
    assert endpoint.transport is not None
    local_port = int(endpoint.transport.get_extra_info("sockname")[1])

    async def one(target: Target) -> Result:
        if target.ip is None:
            return Result(target.mac, None, NO_LEASE)
        address = (target.ip, port)
        try:
            local = (source_ip_towards(target.ip, port), local_port)
        except OSError as e:
            return Result(target.mac, target.ip, UNREACHABLE, reason=e.strerror or str(e))
        try:
            notify = make_check_sync(
                target=address,
                local=local,
                event=target.event,
                call_id=secrets.token_hex(12),
                from_tag=secrets.token_hex(6),
                branch=make_branch(secrets.token_hex(8)),
                url=target.url,
            )
        except InputError as e:
            raise ConfigError(f"check-sync for {target.mac}: {e}") from None
        outcome: Outcome = await transactions.request(notify, address)
        return Result(target.mac, target.ip, outcome.verdict, outcome.status, outcome.reason,
                      outcome.sends)  # fmt: skip

    tasks = [asyncio.create_task(one(t)) for t in targets]
    waiting: list[asyncio.Future[Any]] = [
        asyncio.gather(*tasks, return_exceptions=True),
        asyncio.create_task(stop.wait()),
    ]
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (*tasks, *waiting):
            future.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        endpoint.close()
    return [_result(task, target) for task, target in zip(tasks, targets, strict=True)]


def _result(task: asyncio.Task[Result], target: Target) -> Result:
    if task.cancelled():
        return Result(target.mac, target.ip, INTERRUPTED)
    return task.result()  # re-raises what went wrong in `one`


# the site's side: which phones, at which address, with which URL ----------------------


def check_sync(
    config: Config,
    inventory: Inventory,
    macs: list[str],
    port: int = SIP_PORT,
    *,
    signals: bool = True,
) -> list[Result]:
    """check-sync to each of `macs` (devices of `inventory`) at its leased IP, concurrently;
    one Result per MAC, in order: the site's side of `resync` (leases from the state
    database, entry URLs from the config). Shared by `phoneprov resync`, `apply --resync`
    and the admin page (which passes signals=False: SIGTERM/SIGINT are its web server's)."""
    from ..core.siptimers import timers_from
    from .transport import run_service

    leases = _leases(config, macs)
    urls = _entry_urls(config, inventory, list(leases)) if config.sip.check_sync_url else {}
    targets = [
        Target(
            mac, leases.get(mac), config.sip.event_for(inventory.devices[mac].type), urls.get(mac)
        )
        for mac in macs
    ]
    timers = timers_from(config.sip.t1, config.sip.timer_f)
    results: list[Result] = []

    async def main(stop: asyncio.Event) -> None:
        results.extend(await resync(targets, timers=timers, stop=stop, port=port))

    run_service(main, signals=signals)
    return results


def _entry_urls(config: Config, inventory: Inventory, macs: list[str]) -> dict[str, str]:
    """Each device's entry URL, as DHCP hands it out (sip.check_sync_url puts it in the body)."""
    from ..site import device_token_for, resolve_settings

    settings = resolve_settings(config)
    return {
        mac: settings.layout.entry_url(
            settings.server_url,
            inventory.devices[mac].type,
            mac,
            device_token_for(config, settings, mac),
        )
        for mac in macs
    }


def _leases(config: Config, macs: list[str]) -> dict[str, str]:
    """MAC → leased IP, for the MACs with an active lease (none without a state file)."""
    from ..state.db import open_state

    if not config.state.exists():
        return {}
    with open_state(config.state) as state:
        found = {mac: state.lease_for(mac) for mac in macs}
    return {mac: lease.ip for mac, lease in found.items() if lease is not None}
