"""Commands over the pure core: check, dhcp encode-43/decode-43/url, ref resolve/build/parse."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from ..core import dhcp, reference
from ..core.markers import DeviceInfo
from .common import Failed, config_option, echo_json


def register(group: click.Group) -> None:
    group.add_command(check)
    group.add_command(dhcp_group)
    group.add_command(ref_group)


@click.command()
@config_option
def check(config_file: str | None) -> None:
    """Validate the config, the inventory and the templates; exit 2 naming every problem."""
    from ..render.check import check_installation

    summary = check_installation(config_file)
    click.echo(summary)


@click.group("dhcp")
def dhcp_group() -> None:
    """DHCP options 66/67/43 exactly as the phone reads them."""


@dhcp_group.command("encode-43")
@click.option("--option66", help="Server part, e.g. http://prov.example:8080")
@click.option("--option67", help="File part, e.g. 'prov.py?mac=<MACADR>'")
def encode_43(option66: str | None, option67: str | None) -> None:
    """Print option 43 (sub-options 0x42=66, 0x43=67) as one line of hex for dnsmasq."""
    click.echo(dhcp.encode_option43(option66, option67))


@dhcp_group.command("decode-43")
@click.argument("hex_text", metavar="HEX")
def decode_43(hex_text: str) -> None:
    """Print option 43's content as JSON: "66", "67" and "unknown" sub-options.

    HEX may be `42:0b:68:...`, dhclient's `42:b:68:...` or plain `420b68...`.
    """
    echo_json(option43_json(dhcp.decode_option43(hex_text)))


def option43_json(value: dhcp.Option43) -> dict[str, object]:
    out: dict[str, object] = {}
    if value.option66 is not None:
        out["66"] = value.option66
    if value.option67 is not None:
        out["67"] = value.option67
    if value.unknown:
        out["unknown"] = [{"code": u.code, "hex": u.hex} for u in value.unknown]
    return out


@dhcp_group.command("url")
@click.option("--option66", help="Option 66 as the phone got it.")
@click.option("--option67", help="Option 67 as the phone got it.")
@click.option("--option43", "option43_hex", metavar="HEX", help="Option 43 as hex.")
@click.option("--mac", help="The phone's MAC, for <MACADR>/{mac}.")
@click.option("--type", "model", help="The phone's model (D100, D200...), for <HWTYP>/{type}.")
@click.option("--serial", help="The phone's serial number, for <SERIAL>/{serial}.")
def url(
    option66: str | None,
    option67: str | None,
    option43_hex: str | None,
    mac: str | None,
    model: str | None,
    serial: str | None,
) -> None:
    """Print the URL the phone will fetch: 66 + 67 joined (a missing one taken from 43),
    markers replaced. Exit 2 when they form no http(s) URL; a malformed 43 that is not
    needed is a warning on stderr."""
    found = dhcp.url_from_options(option66, option67, option43_hex, DeviceInfo(mac, model, serial))
    for warning in found.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(found.url)


@click.group("ref")
def ref_group() -> None:
    """Reference files (<referencedSettings>): resolve, build, parse."""


@ref_group.command("resolve")
@click.argument("base")
@click.argument("refs", metavar="REF...", nargs=-1, required=True)
def resolve(base: str, refs: tuple[str, ...]) -> None:
    """Resolve each REF against BASE (the reference file's URL) by the phone's rules."""
    for ref in refs:
        click.echo(reference.resolve_reference(base, ref))


@ref_group.command("build")
@click.argument("urls", metavar="URL...", nargs=-1, required=True)
def build(urls: tuple[str, ...]) -> None:
    """Print a reference file listing URL... in order."""
    sys.stdout.buffer.write(reference.build_reference(list(urls)))


@ref_group.command("parse")
@click.argument("file", type=click.File("rb"))
def parse(file: BinaryIO) -> None:
    """Print the URLs a reference file lists, one per line (FILE or - for stdin)."""
    data = file.read(reference.MAX_XML_BYTES + 1)
    for listed in reference.parse_reference(data):
        click.echo(listed)


__all__ = ["Failed"]
