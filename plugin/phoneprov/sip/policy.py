"""PnP from the configuration: the policy that decides which phone gets which URL
(`PnpPolicy`, the responder's `url_for`) and the responder wired from the config, for
`phoneprov pnp` and for `phoneprov serve` with PnP in-process (`sip.pnp = true`).

The services in `phoneprov.sip` get only this small callable and plain values; this module
is what reads the config, the inventory and the state database for them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING

from ..core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Config
    from ..core.inventory import Device, Inventory
    from ..core.sipdialog import PnpSubscribe
    from .background import PnpThread

LOG = logging.getLogger("phoneprov.sip")


class PnpPolicy:
    """`url_for` for the responder: sip.pnp_policy over inventory, enrolled phones and OUIs.

    known:  phones in the inventory (or enrolled earlier) get their URL.
    vendor: also phones whose MAC has one of dhcp.vendor_ouis; they are enrolled with
            dhcp.default_profile so the HTTP side serves them.
    Everyone else is recorded as discovered and not answered.
    """

    def __init__(
        self, config: Config, device_of: Callable[[str], Device | None] | None = None
    ) -> None:
        """`device_of(mac)`: the inventory lookup to use — inside `phoneprov serve` the
        render catalog's, so the process keeps one copy; by default our own copy, reloaded
        when the inventory file changes."""
        from ..site import resolve_settings
        from ..state.db import open_state

        self.config = config
        self.settings = resolve_settings(config)
        self.state = open_state(config.state)
        self.device_of = device_of or self._own_device
        if device_of is None:  # a broken inventory stops the start, not the first phone
            self.loaded_at = self._inventory_mtime()
            self.inventory = _inventory(config)

    def _inventory_mtime(self) -> float:
        try:
            return self.config.inventory_path.stat().st_mtime
        except OSError:
            return 0.0

    def _own_device(self, mac: str) -> Device | None:
        """From our own copy of the inventory, reloaded when its file changed; a broken
        edit keeps the previous one."""
        mtime = self._inventory_mtime()
        if mtime != self.loaded_at:
            self.loaded_at = mtime
            try:
                self.inventory = _inventory(self.config)
            except ConfigError as e:
                LOG.error("inventory not reloaded, keeping the previous one: %s", e)
        return self.inventory.devices.get(mac)

    def __call__(self, phone: PnpSubscribe, ip: str) -> str | None:
        device = self.device_of(phone.mac)
        if device is not None:
            return self._url(phone.mac, device.type)
        try:
            model = self._enrolled_or_enrol(phone, ip)
        except sqlite3.Error as e:  # a busy or broken database must not stop the responder
            LOG.error("state database: %s; %s not answered", e, phone.mac)
            return None
        return None if model is None else self._url(phone.mac, model)

    def _enrolled_or_enrol(self, phone: PnpSubscribe, ip: str) -> str | None:
        """The model of an enrolled phone, enrolling it when the policy says so; else None
        (and the phone is recorded as discovered)."""
        from ..core.sipdialog import model_from_pnp
        from ..state.db import Discovered

        model = self.state.enrolled_model(phone.mac)  # the hook may have enrolled it since
        now = time.time()
        if model is None and self._auto_enrol(phone):
            known, default = self.config.models, self.config.dhcp.default_type
            model = model_from_pnp(phone.model, known, default)
            self.state.enrol(phone.mac, model, self.config.dhcp.default_profile, now)
            LOG.info("PnP: enrolled %s as %s", phone.mac, model)
        if model is None:
            reason = f"sip pnp: not in the inventory ({phone.vendor} {phone.model})".strip()
            self.state.record_discovered(Discovered(phone.mac, ip, None, reason, now, now))
        return model

    def _auto_enrol(self, phone: PnpSubscribe) -> bool:
        from ..core.mac import mac_has_oui

        ouis = frozenset(self.config.dhcp.vendor_ouis)
        return self.config.sip.pnp_policy == "vendor" and mac_has_oui(phone.mac, ouis)

    def _url(self, mac: str, model: str) -> str:
        from ..site import device_token_for

        token = device_token_for(self.config, self.settings, mac)
        return self.settings.layout.entry_url(self.settings.server_url, model, mac, token)


def pnp_thread(
    config: Config,
    interface: str | None = None,
    port: int = 5060,
    device_of: Callable[[str], Device | None] | None = None,
) -> PnpThread:
    """The responder for `config` in a background thread (not started yet); ConfigError
    when the LAN interface is missing or has no IPv4 address. `device_of`: see PnpPolicy."""
    from ..core.siptimers import timers_from
    from .background import PnpThread
    from .transport import interface_ipv4

    lan = interface or config.sip_interface
    local_ip = interface_ipv4(lan)
    policy = PnpPolicy(config, device_of)
    return PnpThread(
        interface=lan,
        local_ip=local_ip,
        url_for=policy,
        timers=timers_from(config.sip.t1, config.sip.timer_f),
        port=port,
        on_exit=policy.state.close,
    )


def _inventory(config: Config) -> Inventory:
    from ..site import full_inventory

    return full_inventory(config)
