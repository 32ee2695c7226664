"""`phoneprov options MAC`: the options a MAC gets, from the same functions apply writes with."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..core import dnsmasq_conf as conf
from ..core.dhcp import phone_url
from ..core.inventory import Inventory
from ..core.mac import mac_has_oui, norm_mac
from ..core.markers import DeviceInfo
from ..site import device_token_for, full_inventory, is_enrolled


def options_for(
    config: Config,
    settings: conf.DhcpSettings,
    mac_text: str,
    inventory: Inventory | None = None,
) -> dict[str, Any]:
    """JSON-ready: mac, source, "42", "43", "66", "67", url, tag, applied (None: no files).
    `inventory`: the full inventory when the caller has it loaded already."""
    mac = norm_mac(mac_text)
    inventory = inventory if inventory is not None else full_inventory(config)
    device = inventory.devices.get(mac)
    options, source, expected = conf.NO_OPTIONS, "none: not in the inventory", None
    if settings.mode in conf.PER_MAC_MODES and device is not None:
        token = device_token_for(config, settings, mac)
        options = conf.device_options(settings, token)
        expected = conf.device_files(settings, mac, options)
        enrolled = is_enrolled(config, device.where)
        source = f"{'auto-enrolled' if enrolled else 'inventory'} ({device.type})"
    elif settings.mode == "vendor" and mac_has_oui(mac, settings.vendor_ouis):
        options, source = conf.device_options(settings), "vendor-wide (OUI match, static snippet)"
    elif settings.mode == "vendor":
        source = "vendor-wide mode: only phones with a matching OUI or vendor class"
    url = None
    info = DeviceInfo(mac, device.type if device else None, device.serial if device else None)
    if options.option66 is not None or options.option67 is not None:
        url = phone_url(options.option66, options.option67, device=info)
    elif options.option43 is not None:
        from ..core.dhcp import decode_option43

        url = phone_url(option43=decode_option43(options.option43), device=info)
    return {
        "mac": mac,
        "source": source,
        **options.as_json(),
        "url": url,
        "tag": expected.tag if expected else None,
        "applied": _applied(config, mac, expected),
    }


def _applied(config: Config, mac: str, expected: conf.DeviceFiles | None) -> bool | None:
    """Whether the files on disk say exactly this (None when there is nothing to write)."""
    if expected is None:
        return None
    try:
        host = (config.dhcp.hostsdir / mac).read_text()
        opts = (config.dhcp.optsdir / mac).read_text()
    except OSError:
        return False
    return host == expected.host and opts == expected.opts
