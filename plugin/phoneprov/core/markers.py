"""The markers a D-series phone replaces in every URL before fetching it (seed: 'markers')."""

from __future__ import annotations

from dataclasses import dataclass

from .mac import norm_mac

# marker spellings, per device attribute; both forms are equivalent on the phone.
MARKERS = {
    "serial": ("<SERIAL>", "{serial}"),
    "type": ("<HWTYP>", "{type}"),
    "mac": ("<MACADR>", "{mac}"),
}


@dataclass(frozen=True)
class DeviceInfo:
    """What a phone knows about itself: all optional, a missing one leaves its marker alone."""

    mac: str | None = None
    type: str | None = None
    serial: str | None = None


def replace_markers(url: str, device: DeviceInfo) -> str:
    """Replace each marker whose value is known; unknown ones stay as they are.

    >>> dev = DeviceInfo("00:09:52:00:00:0e", "D200")
    >>> replace_markers("http://p/prov.py?mac=<MACADR>&t={type}", dev)
    'http://p/prov.py?mac=00095200000E&t=D200'
    >>> replace_markers("<SERIAL>.xml", DeviceInfo())
    '<SERIAL>.xml'
    """
    values = {
        "serial": device.serial,
        "type": device.type,
        "mac": norm_mac(device.mac) if device.mac else None,
    }
    for name, spellings in MARKERS.items():
        value = values[name]
        if value is None:
            continue
        for marker in spellings:
            url = url.replace(marker, value)
    return url
