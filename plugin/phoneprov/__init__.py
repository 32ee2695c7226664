"""phoneprov: zero-touch provisioning of IP phones as a dnsmasq plugin.

`core/` is pure (no I/O); everything else is a thin adapter around it.
"""

__version__ = "0.1.0"
