"""dnsmasq adapters: `apply` (per-device files), `hook` (the dhcp-script).

Kept empty so the hook imports nothing it does not use.
"""
