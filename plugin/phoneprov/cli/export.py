"""Commands of the static export: export static, export nginx, export caddy, export redirect."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .common import Failed, config_option

if TYPE_CHECKING:
    from ..config import Config
    from ..export import SnippetOptions

F = TypeVar("F", bound=Callable[..., Any])

url_option = click.option(
    "--url",
    "base_url",
    metavar="BASE",
    help="Where the export is served from, https://host[:port] (templates get it as "
    "server_url) [default: server.url, 'auto' resolved].",
)


def register(group: click.Group) -> None:
    group.add_command(export_group)


@click.group("export")
def export_group() -> None:
    """The phones' files for a web server or CDN that is not the appliance.

    For phones outside the office: `export static` writes the files, `export nginx` or
    `export caddy` prints the server's configuration, `export redirect` the lines for the
    vendor redirect service's partner portal.
    """


@export_group.command("static")
@config_option
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@url_option
def static(config_file: str | None, directory: str, base_url: str | None) -> None:
    """Write every device's entry and settings files under DIR/t/<token>/..., as `serve`
    sends them in token mode.

    The tokens are the appliance's (security.secret_file). DIR becomes a symlink to a
    complete build beside it (.<name>.export-*), replaced in one step, so a web server
    never reads a half-written export; DIR may be missing, an empty directory or an earlier
    export, anything else is refused. The tree holds only the phones' files (0644, under
    0755 directories). Exit 2 on a bad config, inventory or template, with DIR untouched.
    """
    from ..config import load_config
    from ..export import export_files, write_tree
    from ..render import Catalog
    from ..secret import load_secret

    config = load_config(config_file)
    catalog = Catalog(config, server=_base_url(config, base_url), log_invalid=False)
    secret = load_secret(config.security.secret_file)
    result = write_tree(directory, export_files(catalog, secret))
    click.echo(result.summary())


def snippet_options(command: F) -> F:
    """DIR and the options `export nginx` and `export caddy` share."""
    options = [
        click.argument("directory", metavar="DIR", type=click.Path(file_okay=False)),
        click.option(
            "--server-name", default="prov.example.com", show_default=True, help="Host name."
        ),
        click.option("--port", type=click.IntRange(1, 65535), default=443, show_default=True),
        click.option(
            "--bind", metavar="ADDRESS", help="Listen on ADDRESS only [default: every address]."
        ),
        click.option(
            "--cert",
            metavar="FILE",
            default="/etc/ssl/phoneprov/fullchain.pem",
            show_default=True,
            help="Certificate (chain) file: a placeholder unless given.",
        ),
        click.option(
            "--key",
            metavar="FILE",
            default="/etc/ssl/phoneprov/privkey.pem",
            show_default=True,
            help="Its private key.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@export_group.command("nginx")
@snippet_options
def nginx(
    directory: str, server_name: str, port: int, bind: str | None, cert: str, key: str
) -> None:
    """Print an nginx `server` block serving the export in DIR over HTTPS.

    Only /t/<token>/<file> is served, as `serve` sends it (application/xml; charset=utf-8,
    Cache-Control: no-cache, nginx's ETag); directories and everything else are 404.
    Access logs will contain the tokens (the snippet says how to turn them off).
    """
    from ..export import nginx_snippet

    click.echo(nginx_snippet(_snippet(directory, server_name, port, bind, cert, key)), nl=False)


@export_group.command("caddy")
@snippet_options
def caddy(
    directory: str, server_name: str, port: int, bind: str | None, cert: str, key: str
) -> None:
    """Print a Caddyfile site block serving the export in DIR over HTTPS (as `export nginx`)."""
    from ..export import caddy_snippet

    click.echo(caddy_snippet(_snippet(directory, server_name, port, bind, cert, key)), nl=False)


@export_group.command("redirect")
@config_option
@url_option
def redirect(config_file: str | None, base_url: str | None) -> None:
    """Print `MAC,URL` per device: its entry URL with its token, for the vendor redirect
    service's partner portal (whose own import format is not public: adapt the lines to
    what the portal asks for). BASE is where the export is served from."""
    from ..config import load_config, load_inventory
    from ..export import redirect_lines
    from ..secret import load_secret

    config = load_config(config_file)
    base = _base_url(config, base_url)
    inventory = load_inventory(config)
    secret = load_secret(config.security.secret_file)
    for line in redirect_lines(inventory, config.server.layout, base, secret):
        click.echo(line)


def _base_url(config: Config, given: str | None) -> str:
    from ..core.dnsmasq_conf import check_server_url
    from ..core.errors import InputError
    from ..site import server_url

    if given is None:
        return server_url(config)
    try:
        return check_server_url(given)
    except InputError as e:
        raise Failed(f"--url: {e}") from None


def _snippet(
    directory: str, server_name: str, port: int, bind: str | None, cert: str, key: str
) -> SnippetOptions:
    from ..export import SnippetOptions

    return SnippetOptions(os.path.abspath(directory), server_name, port, bind, cert, key)
