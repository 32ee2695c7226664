"""`phoneprov pnp` (multicast PnP responder) and `phoneprov resync` (check-sync sender).

The only SIP code that reads the config, the inventory and the state database: the services
in `phoneprov.sip` get small callables (`url_for`) and plain values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

import click

from .common import Failed, config_option, echo_json, json_option

if TYPE_CHECKING:
    from ..config import Config
    from ..core.inventory import Inventory
    from ..core.sipdialog import PnpSubscribe
    from ..sip.resync import Result
    from ..state import State

LOG = logging.getLogger("phoneprov.sip")


def register(group: click.Group) -> None:
    group.add_command(pnp)
    group.add_command(resync)


def _logging(verbose: int) -> None:
    """Our loggers at INFO (-v) or DEBUG (-vv); other libraries stay at WARNING."""
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.getLogger("phoneprov").setLevel(level)


class PnpPolicy:
    """`url_for` for the responder: sip.pnp_policy over inventory, enrolled phones and OUIs.

    known:  phones in the inventory (or enrolled earlier) get their URL.
    vendor: also phones whose MAC has one of dhcp.vendor_ouis; they are enrolled with
            dhcp.default_profile so the HTTP side serves them.
    Everyone else is recorded as discovered and not answered.
    """

    def __init__(self, config: Config) -> None:
        from ..dnsmasq.apply import resolve_settings

        self.config = config
        self.settings = resolve_settings(config)
        self.inventory = _inventory(config)
        self.loaded_at = self._inventory_mtime()
        self.state = _open_state(config)

    def _inventory_mtime(self) -> float:
        try:
            return self.config.inventory_path.stat().st_mtime
        except OSError:
            return 0.0

    def _current(self) -> Inventory:
        """The inventory, reloaded when its file changed; a broken edit keeps the old one."""
        from ..core.errors import ConfigError

        mtime = self._inventory_mtime()
        if mtime != self.loaded_at:
            self.loaded_at = mtime
            try:
                self.inventory = _inventory(self.config)
            except ConfigError as e:
                LOG.error("inventory not reloaded, keeping the previous one: %s", e)
        return self.inventory

    def __call__(self, phone: PnpSubscribe, ip: str) -> str | None:
        device = self._current().devices.get(phone.mac)
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
        from ..state import Discovered

        model = _enrolled_model(self.state, phone.mac)
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
        from ..dnsmasq.apply import device_token_for

        token = device_token_for(self.config, self.settings, mac)
        return self.settings.layout.entry_url(self.settings.server_url, model, mac, token)


@click.command()
@config_option
@click.option("--interface", help="LAN interface [default: sip.interface, else server.interface].")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=5060, show_default=True,
    help="UDP port of the PnP group (phones use 5060).",
)  # fmt: skip
@click.option("-v", "--verbose", count=True, help="Also log every datagram (debug).")
def pnp(config_file: str | None, interface: str | None, port: int, verbose: int) -> None:
    """Answer phones' multicast PnP SUBSCRIBE (224.0.1.75) with their provisioning URL.

    Runs until SIGTERM/SIGINT. Any host on the LAN can forge the answer a phone takes:
    enable this on trusted LANs only.
    """
    from ..config import load_config
    from ..core.siptimers import timers_from
    from ..sip.pnp import serve_pnp
    from ..sip.transport import interface_ipv4, run_service

    _logging(verbose + 1)  # a service: each phone answered or ignored is logged
    config = load_config(config_file)
    lan = interface or config.sip_interface
    timers = timers_from(config.sip.t1, config.sip.timer_f)
    local_ip = interface_ipv4(lan)
    policy = PnpPolicy(config)
    try:
        run_service(
            lambda stop: serve_pnp(
                interface=lan,
                local_ip=local_ip,
                url_for=policy,
                timers=timers,
                stop=stop,
                port=port,
            )
        )
    finally:
        policy.state.close()


@click.command()
@config_option
@click.argument("macs", metavar="MAC...", nargs=-1)
@click.option("--all", "all_devices", is_flag=True, help="Every device in the inventory.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=5060, show_default=True,
    help="The phones' SIP port.",
)  # fmt: skip
@click.option("-v", "--verbose", count=True, help="-vv: log every retransmission.")
@json_option
def resync(
    config_file: str | None,
    macs: tuple[str, ...],
    all_devices: bool,
    port: int,
    verbose: int,
    as_json: bool,
) -> None:
    """Make phones re-provision now: NOTIFY with Event: check-sync to each one's leased IP.

    Only devices of the inventory (or enrolled) with a known lease are sent anything.
    Reports per device: accepted (2xx), refused (status), no answer (after timer F),
    no lease. Exit status 0 when all accepted, 1 when any did not, 2 on errors.
    """
    from ..config import load_config
    from ..core.mac import norm_mac
    from ..core.siptimers import timers_from
    from ..sip.resync import Target
    from ..sip.resync import resync as send_check_sync
    from ..sip.transport import run_service

    _logging(verbose)
    if bool(macs) == all_devices:
        raise Failed("give MAC... or --all (not both)")
    config = load_config(config_file)
    inventory = _inventory(config)
    wanted = list(inventory.devices) if all_devices else [norm_mac(m) for m in macs]
    unknown = [mac for mac in wanted if mac not in inventory.devices]
    if unknown:
        raise Failed(f"not in the inventory: {', '.join(unknown)}")
    leases = _leases(config, wanted)
    targets = [
        Target(mac, leases.get(mac), config.sip.event_for(inventory.devices[mac].type))
        for mac in wanted
    ]
    timers = timers_from(config.sip.t1, config.sip.timer_f)
    results: list[Result] = []

    async def main(stop: asyncio.Event) -> None:
        results.extend(await send_check_sync(targets, timers=timers, stop=stop, port=port))

    run_service(main)
    if as_json:
        echo_json([dataclasses.asdict(r) for r in results])
    else:
        for result in results:
            click.echo(result.line())
    if not all(r.accepted for r in results):
        sys.exit(1)


def _enrolled_model(state: State, mac: str) -> str | None:
    """An enrolled phone's model (the DHCP hook may have enrolled it since we loaded)."""
    rows = [row for row in state.enrolled() if row["mac"] == mac]
    return str(rows[0]["type"]) if rows else None


def _open_state(config: Config) -> State:
    from ..core.errors import ConfigError
    from ..state import State

    try:
        return State(config.state)
    except sqlite3.Error as e:
        raise ConfigError(f"cannot open the state database: {e}", str(config.state)) from None


def _inventory(config: Config) -> Inventory:
    from ..dnsmasq.apply import full_inventory

    return full_inventory(config)


def _leases(config: Config, macs: list[str]) -> dict[str, str]:
    """MAC → leased IP, for the MACs with an active lease (none without a state file)."""
    if not config.state.exists():
        return {}
    with _open_state(config) as state:
        found = {mac: state.lease_for(mac) for mac in macs}
    return {mac: lease.ip for mac, lease in found.items() if lease is not None}
