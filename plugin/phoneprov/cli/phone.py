"""`phoneprov simulate`: play a D-series phone end to end and print every step."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..core.markers import DeviceInfo

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..phone.simulator import Report
from .common import config_option, echo_json, json_option


def register(group: click.Group) -> None:
    group.add_command(simulate)


@click.command()
@config_option
@click.option("--mac", help="The phone's MAC (any notation); set on the interface for DHCP.")
@click.option("--type", "model", default="D200", show_default=True, help="Phone model.")
@click.option("--serial", help="Serial number, for <SERIAL>/{serial} markers.")
@click.option("--netns", help="Run in this network namespace (a lab phone); default: here.")
@click.option("--iface", default="eth0", show_default=True, help="Interface for DHCP.")
@click.option("--option66", help="Skip DHCP: option 66 as given by hand.")
@click.option("--option67", help="Skip DHCP: option 67 as given by hand.")
@click.option("--option43", "option43_hex", metavar="HEX", help="Skip DHCP: option 43 hex.")
@click.option("--ntp", multiple=True, help="With options by hand: NTP server offered (42).")
@click.option("--pnp", is_flag=True, help="Find the URL by SIP PnP (multicast SUBSCRIBE).")
@click.option(
    "--allow-no-time", is_flag=True, help="Go on without an NTP server (the phone would not)."
)
@click.option("--vendor-class", help="DHCP vendor class (option 60) to send.")
@click.option(
    "--request",
    "requested",
    default="1,3,6,42,43,66,67",
    show_default=True,
    help="DHCP options to ask for (option 55); leave out 66,67 to see a phone that uses 43.",
)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds for DHCP and PnP.")
@click.option(
    "--wait-check-sync",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="After provisioning, listen on UDP 5060 this long for a check-sync NOTIFY and "
    "provision again from the same URL (0: off). No NOTIFY in time fails the run.",
)
@click.option(
    "--register",
    "register_lines",
    is_flag=True,
    help="Then register every active identity of the resulting configuration with a real "
    "SIP user agent (baresip, from the phone's address): one `register` step each, with the "
    "registrar's answer.",
)
@json_option
def simulate(
    config_file: str | None,
    mac: str | None,
    model: str,
    serial: str | None,
    netns: str | None,
    iface: str,
    option66: str | None,
    option67: str | None,
    option43_hex: str | None,
    ntp: tuple[str, ...],
    pnp: bool,
    allow_no_time: bool,
    vendor_class: str | None,
    requested: str,
    timeout: float,
    wait_check_sync: float,
    register_lines: bool,
    as_json: bool,
) -> None:
    """Provision like a COMfortel D-series phone and print each step.

    With --option66/--option67/--option43 the DHCP step is skipped (an offline run);
    otherwise a real DHCP exchange asks for options 66, 67, 43 and 42. The URL is fetched;
    reference files are followed by the phone's rules; the files are applied in order with
    the phone's merge (as `phoneprov settings apply`, schema shipped + learned beside the
    config) and the resulting settings printed. Elements the phone's schema does not know are
    stripped and fail the `apply` step. With --wait-check-sync a second round follows a
    check-sync NOTIFY ("resync"), from the URL the NOTIFY names, else the same URL, applied
    onto the settings of the first round. With --register the identities then register with
    a real SIP user agent (baresip on UDP 5062 of the phone's address; needs root in a lab
    namespace). Exit status 1 names the step that failed.
    """
    from ..core.dhcp import parse_hex
    from ..phone.simulator import Options, resync_on_check_sync
    from ..phone.simulator import simulate as run
    from .settings import phone_schema

    device = DeviceInfo(mac, model.upper(), serial)
    manual = None
    if option66 or option67 or option43_hex:
        manual = Options(option66, option67, parse_hex(option43_hex) if option43_hex else None, ntp)
    finder = _pnp_finder(device, netns, iface, timeout) if pnp else None
    report = run(
        device,
        options=manual,
        netns=netns,
        iface=iface,
        pnp=finder,
        allow_no_time=allow_no_time,
        vendor_class=vendor_class,
        dhcp_timeout=timeout,
        requested=_codes(requested),
        schema=phone_schema(config_file),
    )
    if register_lines and report.identities:
        from ..phone.simulator import registered_phone

        with registered_phone(report, netns, iface=iface, timeout=max(timeout, 5.0)):
            pass  # registered, then unregistered: the step holds the registrar's answer
    elif register_lines:
        report.step("register", False, "nothing to register: no identities were applied")
    resync = None
    if wait_check_sync > 0 and report.ok:
        if not as_json:
            _print(report)
        resync = resync_on_check_sync(
            report, netns=netns, iface=iface, timeout=wait_check_sync, listening=_listening
        )
    if as_json:
        echo_json(report.as_dict() | ({"resync": resync.as_dict()} if resync else {}))
    elif resync is None:
        _print(report)
    else:
        click.echo("resync:")
        _print(resync)
    sys.exit(0 if (resync or report).ok else 1)


def _codes(text: str) -> tuple[int, ...]:
    try:
        codes = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise click.BadParameter(f"not a list of option numbers: {text!r}") from None
    if not all(0 < c < 255 for c in codes):
        raise click.BadParameter(f"option numbers are 1..254: {text!r}")
    return codes


def _listening(address: tuple[str, int]) -> None:
    click.echo(f"listening for check-sync NOTIFY on udp {address[0]}:{address[1]}", err=True)


def _pnp_finder(
    device: DeviceInfo, netns: str | None, iface: str, timeout: float
) -> Callable[[], str | None]:
    from ..phone.pnp_client import discover_url

    return lambda: discover_url(device, netns=netns, iface=iface, timeout=timeout)


def _print(report: Report) -> None:
    d = report.device
    click.echo(
        f"phone {d.mac or '?'} {d.type or '?'}" + (f" serial {d.serial}" if d.serial else "")
    )
    for line in report.step_lines():
        click.echo(line)
    for warning in report.outcome.warnings if report.outcome else ():
        click.echo(f"  warning: {warning}")
    if report.identities:
        click.echo("identities:")
        for i in report.identities:
            where = f"{i.registrar}:{i.registrar_port}" if i.registrar_port else i.registrar
            state = {True: "active", False: "inactive", None: ""}[i.active]
            click.echo(f"  {i.index}  {i.username or '-'} @ {where or '-'}  {state}".rstrip())
    if report.outcome and report.outcome.settings:
        click.echo("settings:")
        for key, value in report.outcome.settings.items():
            shown = "***" if key.lower().endswith("password") and value else value
            click.echo(f"  {key} = {shown}")
    if report.ok:
        files = len(report.outcome.files) if report.outcome else 0
        click.echo(f"result: provisioned via {report.path}, {files} file(s)")
    else:
        click.echo(f"result: FAILED at step '{report.failed_step}'")
