"""Commands of the HTTP endpoint: serve, render, fetches."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..core.inventory import Device
    from ..render import Catalog
from .common import Failed, config_option, echo_json, echo_table, json_option

server_url_option = click.option(
    "--server-url",
    metavar="URL",
    help="Base URL phones use (option 66) [default: server.url, 'auto' resolved].",
)


def register(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(render)
    group.add_command(fetches)


@click.command()
@config_option
@click.option(
    "--listen", metavar="HOST:PORT", help="Address to listen on [default: server.listen]."
)
@click.option("--processes", type=click.IntRange(1, 16), help="Worker processes [default: 1].")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Key of --tls-cert.")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--pnp/--no-pnp",
    default=None,
    help="Also answer SIP PnP (multicast SUBSCRIBE), in the same process [default: sip.pnp].",
)
@click.option(
    "--user",
    metavar="NAME",
    help="Run as NAME once the port is bound [default: server.user]; '' keeps root.",
)
@server_url_option
def serve(
    config_file: str | None,
    listen: str | None,
    processes: int | None,
    threads: int,
    tls_cert: str | None,
    tls_key: str | None,
    log_level: str,
    pnp: bool | None,
    user: str | None,
    server_url: str | None,
) -> None:
    """Serve the phones' provisioning files over HTTP(S) (uWSGI; stops cleanly on SIGTERM).

    With --pnp (or sip.pnp = true) the same process answers phones' SIP PnP SUBSCRIBE too,
    like `phoneprov pnp` (trusted LANs only).
    """
    from ..config import load_config, load_inventory
    from ..web.launcher import ServeOptions, exec_server

    config = load_config(config_file)
    load_inventory(config)  # fail here, with file:line, rather than in the server
    pnp = config.sip.pnp if pnp is None else pnp
    if pnp:
        from ..netif import interface_ipv4

        interface_ipv4(config.sip_interface, "sip interface")  # fail here, not in the worker
    options = ServeOptions(
        listen=listen or config.server.listen,
        processes=processes or 1,
        threads=threads,
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        log_level=log_level.upper(),
        pnp=pnp,
        user=user,
        http=config.server.http,
    )
    exec_server(str(config.source), options, server_url)


@click.command()
@config_option
@click.argument("mac")
@click.option("--file", "name", metavar="NAME", help="One listed file (default: the entry).")
@click.option("--list", "list_names", is_flag=True, help="Print the names of the files.")
@click.option(
    "--merged",
    is_flag=True,
    help="One settings document equal in effect to all the files, for backup & restore.",
)
@click.option(
    "--style", type=click.Choice(["query", "path"]), help="Entry style [default: config]."
)
@server_url_option
def render(
    config_file: str | None,
    mac: str,
    name: str | None,
    list_names: bool,
    merged: bool,
    style: str | None,
    server_url: str | None,
) -> None:
    """Print the exact bytes the phone with MAC gets: its entry (reference file) or --file NAME.

    --merged prints one settings document equal in effect to the device's whole chain, on a
    phone with any settings: the file to upload on the phone's backup & restore page (which
    takes no reference files). Sections a file replaces come out patch="false", the others
    patch="true"; what the phone's schema does not know is left out and named on stderr.
    """
    from ..config import load_config
    from ..render import Catalog
    from ..site import enrolled_records

    config = load_config(config_file)
    catalog = Catalog(config, server=server_url, extra=lambda: enrolled_records(config.state))
    device = catalog.inventory.device(mac)
    if device is None:
        raise Failed(f"{mac} is not in the inventory")
    if sum((name is not None, list_names, merged)) > 1:
        raise Failed("give one of --file, --list, --merged")
    if list_names:
        for listed in catalog.names(device):
            click.echo(listed)
        return
    if merged:
        sys.stdout.buffer.write(_merged(config_file, catalog, device))
        sys.stdout.buffer.flush()
        return
    if name is None:
        rendered = catalog.entry(device, style or config.server.layout.style)
    else:
        found = catalog.file(device, name)
        if found is None:
            names = ", ".join(catalog.names(device))
            raise Failed(f"{device.mac} has no file {name!r}; it has: {names}")
        rendered = found
    sys.stdout.buffer.write(rendered.body)
    sys.stdout.buffer.flush()


def _merged(config_file: str | None, catalog: Catalog, device: Device) -> bytes:
    """The device's files as one settings document (`render.backup.merged_files`); a file the
    phone could not apply fails naming it, a stripped element is named on stderr."""
    from ..core.errors import InputError
    from ..render.backup import merged_files
    from .settings import DROPPED, phone_schema

    try:
        merged, stripped = merged_files(catalog, device, phone_schema(config_file))
    except InputError as e:
        raise Failed(str(e)) from None
    for listed, xpath in stripped:
        click.echo(f"{listed}: stripped {xpath}: {DROPPED}", err=True)
    return merged


@click.command()
@config_option
@click.argument("mac", required=False)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@json_option
def fetches(config_file: str | None, mac: str | None, limit: int, as_json: bool) -> None:
    """Show the latest HTTP fetches (newest first), of one MAC or of all."""
    from ..config import load_config
    from ..core.mac import norm_mac
    from ..state.db import State

    config = load_config(config_file)
    wanted = norm_mac(mac) if mac else None
    if not config.state.exists():
        raise Failed(f"{config.state}: no state database yet (nothing was fetched)")
    with State(config.state) as state:
        rows = [
            {
                "time": datetime.fromtimestamp(f.time, UTC).isoformat(timespec="seconds"),
                "mac": f.mac,
                "ip": f.ip,
                "status": f.status,
                "bytes": f.bytes,
                "path": f.path,
            }
            for f in state.fetches(wanted, limit)
        ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["time", "mac", "ip", "status", "bytes", "path"], empty="(no fetches)")
