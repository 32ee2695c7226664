"""The one helper for "the IPv4 address of this interface": `server.url = "auto"`, NTP
`auto`, and the SIP PnP responder's local address all ask it.

An ioctl (SIOCGIFADDR: the interface's primary IPv4 address), not netlink: pyroute2 would
cost ~8 MB per process here (DESIGN §5 memory budget), for one answer.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct

from .core.errors import ConfigError

SIOCGIFADDR = 0x8915
IFNAMSIZ = 16


def interface_ipv4(ifname: str, what: str = "interface") -> str:
    """The primary IPv4 address of `ifname`; ConfigError (naming `what`, the config key)
    when the interface does not exist or has no IPv4 address."""
    if not ifname or len(ifname.encode()) >= IFNAMSIZ or "/" in ifname:
        raise ConfigError(f"{what} {ifname!r} is no interface name")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            request = struct.pack("256s", ifname.encode())
            answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
        except OSError as e:
            if e.errno == errno.ENODEV:
                raise ConfigError(f"{what} {ifname!r} does not exist") from None
            raise ConfigError(f"{what} {ifname!r} has no IPv4 address ({e.strerror})") from None
    return socket.inet_ntoa(answer[20:24])
