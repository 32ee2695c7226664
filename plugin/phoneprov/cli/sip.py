"""`phoneprov pnp` (multicast PnP responder) and `phoneprov resync` (check-sync sender).

The commands only: the responder's policy (`sip.policy`) and the check-sync of a site's
phones (`sip.resync.check_sync`, also behind `apply --resync` and the admin page) read the
config, the inventory and the state database; the services under them get plain values.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import TYPE_CHECKING

import click

from .common import Failed, config_option, echo_json, json_option

if TYPE_CHECKING:
    from ..config import Config
    from ..core.inventory import Inventory
    from ..sip.resync import Result

LOG = logging.getLogger("phoneprov.sip")


def register(group: click.Group) -> None:
    group.add_command(pnp)
    group.add_command(resync)


def _logging(verbose: int) -> None:
    """Our loggers at INFO (-v) or DEBUG (-vv); other libraries stay at WARNING."""
    logging.basicConfig(stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.getLogger("phoneprov").setLevel(level)


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
    from ..sip.policy import PnpPolicy
    from ..sip.transport import interface_ipv4, run_service

    _logging(verbose + 1)  # a service: each phone answered or ignored is logged
    config = load_config(config_file, follow_live=True)  # its inventory follows a sync
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
    from ..sip.resync import check_sync

    _logging(verbose)
    if bool(macs) == all_devices:
        raise Failed("give MAC... or --all (not both)")
    config = load_config(config_file)
    inventory = _inventory(config)
    wanted = list(inventory.devices) if all_devices else [norm_mac(m) for m in macs]
    unknown = [mac for mac in wanted if mac not in inventory.devices]
    if unknown:
        raise Failed(f"not in the inventory: {', '.join(unknown)}")
    results = check_sync(config, inventory, wanted, port)
    echo_results(results, as_json)
    if not all(r.accepted for r in results):
        sys.exit(1)


def echo_results(results: list[Result], as_json: bool = False) -> None:
    if as_json:
        echo_json([dataclasses.asdict(r) for r in results])
    else:
        for result in results:
            click.echo(result.line())


def _inventory(config: Config) -> Inventory:
    from ..site import full_inventory

    return full_inventory(config)
