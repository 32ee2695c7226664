"""Network lab for e2e tests and the demo: namespaces, veths, a bridge, a real dnsmasq.

Needs root. Only 10.231.0.0/16 is used, and only inside namespaces the lab creates.
"""

from ..phone.netns import call_in_netns, socket_in
from .netns import Host, Lab

__all__ = ["Host", "Lab", "call_in_netns", "socket_in"]
