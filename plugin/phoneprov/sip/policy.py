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
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from .bounds import MAX_KEYS, LogLimiter, RateLimiter
from .pnp import PnpLimits

if TYPE_CHECKING:
    from ..config import Config
    from ..core.inventory import Device, Inventory
    from ..core.sipdialog import PnpSubscribe
    from .background import PnpThread

LOG = logging.getLogger("phoneprov.sip")
DISCOVERED_PER_MINUTE = 30  # new MACs recorded as discovered a minute
REDISCOVER_AFTER_S = 60.0  # one MAC's discovered record is refreshed at most this often
PRUNE_EVERY = 100  # discovered records written between two prunes (retention.rows)


class PnpPolicy:
    """`url_for` for the responder: sip.pnp_policy over inventory, enrolled phones and OUIs.

    known:  phones in the inventory (or enrolled earlier) get their URL.
    vendor: also phones whose MAC has one of dhcp.vendor_ouis; they are enrolled with
            dhcp.default_profile so the HTTP side serves them, at most sip.enrol_per_minute
            a minute and none once sip.enrol_max phones are enrolled.
    A SUBSCRIBE without a MAC is the phone whose active lease has its source address.
    Everyone else is recorded as discovered (new MACs at a bounded rate) and not answered.
    Runs in one worker thread of the responder, never on its event loop.
    """

    def __init__(
        self,
        config: Config,
        device_of: Callable[[str], Device | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`device_of(mac)`: the inventory lookup to use — inside `phoneprov serve` the
        render catalog's, so the process keeps one copy; by default our own copy, reloaded
        when the inventory file changes. `clock`: for the rate limits."""
        from ..site import resolve_settings
        from ..state.db import open_state

        sip = config.sip
        self.limits = PnpLimits(sip.pnp_source_pending, sip.pnp_source_per_minute)
        self.clock = clock
        self.enrolments = RateLimiter(sip.enrol_per_minute)
        self.discoveries = RateLimiter(DISCOVERED_PER_MINUTE)
        self.recorded: dict[str, float] = {}  # MAC -> when last recorded as discovered
        self.since_prune = 0
        self.logs = LogLimiter(LOG, clock=clock)
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
        try:
            mac = phone.mac or self._mac_by_lease(ip)
            if mac is None:
                return None
            device = self.device_of(mac)
            if device is not None:
                return self._url(mac, device.type)
            model = self._enrolled_or_enrol(phone, mac, ip)
        except sqlite3.Error as e:  # a busy or broken database must not stop the responder
            self.logs.error("state database: %s; %s at %s not answered", e, phone.mac, ip)
            return None
        return None if model is None else self._url(mac, model)

    def _mac_by_lease(self, ip: str) -> str | None:
        """The MAC whose active, unexpired lease is `ip` (for a SUBSCRIBE naming none)."""
        lease = self.state.lease_by_ip(ip)
        if lease is None or (lease.expires and lease.expires <= time.time()):
            self.logs.info("PnP: no MAC in the SUBSCRIBE from %s, and no lease for it", ip)
            return None
        self.logs.info("PnP: no MAC in the SUBSCRIBE from %s: its lease is %s's", ip, lease.mac)
        return lease.mac

    def _enrolled_or_enrol(self, phone: PnpSubscribe, mac: str, ip: str) -> str | None:
        """The model of an enrolled phone, enrolling it when the policy and its bounds say
        so; else None (and the phone is recorded as discovered)."""
        from ..core.sipdialog import model_from_pnp

        model = self.state.enrolled_model(mac)  # the hook may have enrolled it since
        reason = f"sip pnp: not in the inventory ({phone.vendor} {phone.model})"
        if model is None and self._auto_enrol(mac):
            refusal = self._enrol_refusal()
            if refusal is None:
                known, default = self.config.models, self.config.dhcp.default_type
                model = model_from_pnp(phone.model, known, default)
                self.state.enrol(mac, model, self.config.dhcp.default_profile, time.time())
                LOG.info("PnP: enrolled %s as %s", mac, model)
            else:
                self.logs.warning("PnP: %s at %s not enrolled: %s", mac, ip, refusal)
                reason = f"sip pnp: not enrolled, {refusal}"
        if model is None:
            self._discovered(mac, ip, reason)
        return model

    def _enrol_refusal(self) -> str | None:
        """Why no phone may be enrolled now (sip.enrol_per_minute, sip.enrol_max), or None."""
        sip = self.config.sip
        if not self.enrolments.allow("enrol", self.clock()):
            return f"enrolment limit of {sip.enrol_per_minute} a minute reached"
        if len(self.state.enrolled()) >= sip.enrol_max:
            return f"enrolment limit of {sip.enrol_max} phones (sip.enrol_max) reached"
        return None

    def _discovered(self, mac: str, ip: str, reason: str) -> None:
        """Record a phone as discovered: a MAC seen before at most once a minute, new ones
        at most DISCOVERED_PER_MINUTE a minute; the table pruned to retention.rows."""
        from ..state.db import Discovered

        now = self.clock()
        last = self.recorded.pop(mac, None)
        if last is not None and now - last < REDISCOVER_AFTER_S:
            self.recorded[mac] = last
            return
        if last is None and not self.discoveries.allow("new", now):
            return
        if len(self.recorded) >= MAX_KEYS:
            self.recorded.pop(next(iter(self.recorded)))
        self.recorded[mac] = now
        wall = time.time()
        self.state.record_discovered(Discovered(mac, ip, None, reason.strip(), wall, wall))
        self.since_prune += 1
        if self.since_prune >= PRUNE_EVERY:
            self.since_prune = 0
            retention = self.config.retention
            self.state.prune(retention.days, retention.rows, wall)

    def _auto_enrol(self, mac: str) -> bool:
        from ..core.mac import mac_has_oui

        ouis = frozenset(self.config.dhcp.vendor_ouis)
        return self.config.sip.pnp_policy == "vendor" and mac_has_oui(mac, ouis)

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
