"""dnsmasq adapters: `apply` (per-device files), `hook` (the dhcp-script), `netaddr` (`auto`).

Kept empty so the hook imports nothing it does not use.
"""
