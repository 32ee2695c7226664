"""`auto` addresses: the LAN interface's IPv4 address, read over netlink with pyroute2."""

from __future__ import annotations

from ..core.errors import ConfigError


def interface_ipv4(ifname: str) -> str:
    """The first IPv4 address on `ifname` in the current network namespace."""
    from pyroute2 import IPRoute  # heavy: only when `auto` has to be resolved

    with IPRoute() as ip:
        links = ip.link_lookup(ifname=ifname)
        if not links:
            raise ConfigError(f"server.interface {ifname!r} does not exist (needed for 'auto')")
        for msg in ip.get_addr(index=links[0], family=2):
            address = msg.get_attr("IFA_ADDRESS")
            if address:
                return str(address)
    raise ConfigError(f"server.interface {ifname!r} has no IPv4 address (needed for 'auto')")
