"""A real DHCP exchange as a phone does it, inside a network namespace, with a given MAC.

pyroute2's `AsyncDHCPClient` does the DORA; its defaults are replaced (DESIGN §3): the lease
lives in memory (no `<cwd>/<iface>.lease.json` to resume), retries are short, no host name
or "pyroute2" vendor class unless asked, no signal handlers. The options are read byte-exact
from the ACK's Ethernet frame (`lease.ack.buf`) with `core.dhcpwire`, since pyroute2's
decoded strings lose trailing NULs.

The client runs in a private thread that joined the namespace (`phone.netns.call_in_netns`):
setns() is per thread, so the raw socket lands in the phone's namespace.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pyroute2 import IPRoute
from pyroute2.dhcp import fsm, messages
from pyroute2.dhcp.client import AsyncDHCPClient, ClientConfig
from pyroute2.dhcp.dhcp4socket import AsyncDHCP4Socket
from pyroute2.dhcp.leases import Lease
from pyroute2.dhcp.xids import Xid

from phoneprov.core.dhcp import PHONE_REQUESTS as REQUESTED
from phoneprov.core.dhcpwire import decode_frame
from phoneprov.core.errors import PhoneprovError
from phoneprov.core.mac import colon_mac

from .netns import call_in_netns

TIMEOUT = 5.0
RETRY = 1.0  # seconds between retransmissions (pyroute2: 4 s, then longer)


class DhcpTimeout(PhoneprovError, TimeoutError):
    """No lease within the time limit (no server, wrong interface, or server ignores us)."""


@dataclass(frozen=True)
class DhcpLease:
    """What the ACK said, exactly."""

    ip: str
    server_id: str | None
    server_mac: str
    mac: str  # ours, colon form
    iface: str
    netns: str | None
    options: Mapping[int, bytes] = field(default_factory=lambda: MappingProxyType({}))
    sname: bytes = b""
    file: bytes = b""
    elapsed: float = 0.0  # seconds from first DISCOVER to ACK

    def option(self, code: int) -> bytes | None:
        return self.options.get(code)

    @property
    def prefixlen(self) -> int | None:
        mask = self.options.get(1)
        return bin(int.from_bytes(mask, "big")).count("1") if mask and len(mask) == 4 else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: option values as hex."""
        return {
            "ip": self.ip,
            "server_id": self.server_id,
            "server_mac": self.server_mac,
            "mac": self.mac,
            "iface": self.iface,
            "netns": self.netns,
            "options": {str(code): value.hex() for code, value in sorted(self.options.items())},
            "sname": self.sname.decode("latin-1"),
            "file": self.file.decode("latin-1"),
            "elapsed": round(self.elapsed, 4),
        }


class _MemoryLease(Lease):  # type: ignore[misc]  # pyroute2 has no type hints
    """A lease that is never written or resumed: every exchange starts with DISCOVER."""

    def dump(self) -> None:
        pass

    @classmethod
    def load(cls, interface: str) -> None:
        return None


def _retries(every: float) -> Iterator[float]:
    return itertools.repeat(every)


def dhcp_exchange(
    netns: str | None,
    iface: str = "eth0",
    mac: str | None = None,
    *,
    timeout: float = TIMEOUT,
    vendor_class: str | None = None,
    hostname: str | None = None,
    requested: Iterable[int] = REQUESTED,
    release: bool = False,
    assign: bool = False,
    retry: float = RETRY,
) -> DhcpLease:
    """DISCOVER → OFFER → REQUEST → ACK on `iface` in `netns` (None: this namespace).

    `mac` (any notation) is set on the interface first when it differs. `release=True`
    sends a RELEASE right after the ACK; `assign=True` adds the leased address to `iface`
    (as a phone would, so it can fetch from that IP). Raises `DhcpTimeout` after `timeout`.
    """
    wanted = colon_mac(mac) if mac else None
    config = ClientConfig(
        interface=iface,
        lease_type=_MemoryLease,
        requested_parameters=tuple(requested),  # plain ints encode fine
        timeouts={fsm.State.REQUESTING: max(1, int(retry * 3))},
        retransmission=lambda: _retries(retry),
        release=release,
        handle_signals=False,  # not the main thread; and a test must not grab SIGHUP
        vendor_id=vendor_class,
        host_name=hostname,
    )
    return call_in_netns(netns, _exchange_sync, config, netns, wanted, timeout, assign)


def _exchange_sync(
    config: ClientConfig, netns: str | None, mac: str | None, timeout: float, assign: bool
) -> DhcpLease:
    if mac:
        _set_mac(config.interface, mac)
    lease = asyncio.run(_exchange(config, netns, timeout))
    if assign:
        _assign(config.interface, lease)
    return lease


async def _exchange(config: ClientConfig, netns: str | None, timeout: float) -> DhcpLease:
    started = time.monotonic()
    async with AsyncDHCPClient(config) as client:
        await client.bootstrap()
        try:
            await client.wait_for_state(fsm.State.BOUND, timeout=timeout)
        except TimeoutError as exc:
            where = f" in netns {netns}" if netns else ""
            raise DhcpTimeout(
                f"no DHCP lease on {config.interface}{where} within {timeout} s "
                f"(client state {client.state.name})"
            ) from exc
        elapsed = time.monotonic() - started
        assert client.lease is not None  # BOUND implies a lease
        ack = decode_frame(bytes(client.lease.ack.buf))
        return DhcpLease(
            ip=ack.yiaddr,
            server_id=ack.server_id,
            server_mac=client.lease.server_mac,
            mac=ack.chaddr,
            iface=config.interface,
            netns=netns,
            options=ack.options,
            sname=ack.sname,
            file=ack.file,
            elapsed=elapsed,
        )


def release_lease(lease: DhcpLease, *, unassign: bool = True) -> None:
    """Send a DHCPRELEASE for `lease` from its interface; drop the address if we added it."""
    call_in_netns(lease.netns, _release_sync, lease, unassign)


def _release_sync(lease: DhcpLease, unassign: bool) -> None:
    asyncio.run(_release(lease))
    if unassign:
        _assign(lease.iface, lease, remove=True)


async def _release(lease: DhcpLease) -> None:
    # messages.release() reads .ip, .server_id and .server_mac, which DhcpLease has.
    msg = messages.release(lease=lease)
    msg.dhcp["xid"] = Xid().for_state(fsm.State.BOUND)
    msg.dhcp["options"]["client_id"] = {"type": 1, "key": lease.mac}
    msg.eth_src = lease.mac
    async with AsyncDHCP4Socket(lease.iface) as sock:
        await sock.put(msg)


def _set_mac(iface: str, mac: str) -> None:
    with IPRoute() as ip:
        index = ip.link_lookup(ifname=iface)[0]
        if ip.get_links(index)[0].get_attr("IFLA_ADDRESS") != mac:
            ip.link("set", index=index, address=mac)


def _assign(iface: str, lease: DhcpLease, remove: bool = False) -> None:
    prefixlen = lease.prefixlen or 24
    with IPRoute() as ip:
        index = ip.link_lookup(ifname=iface)[0]
        have = {a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=index)}
        if remove and lease.ip in have:
            ip.addr("del", index=index, address=lease.ip, prefixlen=prefixlen)
        elif not remove and lease.ip not in have:
            ip.addr("add", index=index, address=lease.ip, prefixlen=prefixlen)
