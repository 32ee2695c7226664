"""The admin service and its accounts: `admin`, `admin-user add|remove|list`,
`admin-token create|list|revoke`. Passwords come from a prompt or stdin, never from argv."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import Failed, config_option, echo_json, echo_table, json_option

if TYPE_CHECKING:
    from ..config import Config


def register(group: click.Group) -> None:
    group.add_command(admin)
    group.add_command(admin_user)
    group.add_command(admin_token)


def _config(config_file: str | None) -> Config:
    from ..config import load_config

    return load_config(config_file)


@click.command()
@config_option
@click.option("--listen", metavar="HOST:PORT", help="Address to listen on [default: admin.listen].")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Key of --tls-cert.")
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With an inherited socket (systemd socket activation): exit after this many idle "
    "seconds [default: admin.idle_exit]; 0: never.",
)
@click.option(
    "--user",
    metavar="NAME",
    default="",
    help="Run as NAME once the port is bound [default: stay]. Enrolling a phone writes "
    "dnsmasq's per-device files, which are root's in an install.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def admin(
    config_file: str | None,
    listen: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    idle_exit: float | None,
    user: str,
    log_level: str,
) -> None:
    """Serve the admin's status page and JSON API (uWSGI; stops cleanly on SIGTERM).

    Separate from the phones' endpoint, on admin.listen (default 127.0.0.1:8090). Under
    systemd socket activation (phoneprov-admin.socket) it takes the inherited socket and
    exits after admin.idle_exit seconds without a request; systemd starts it again at the
    next connection. Users: `phoneprov admin-user add NAME`.
    """
    from ..admin.launcher import AdminOptions, exec_admin

    config = _config(config_file)
    if bool(tls_cert) != bool(tls_key):
        raise Failed("give --tls-cert and --tls-key together")
    address = listen or config.admin.listen
    host = address.rpartition(":")[0].strip("[]")
    if not tls_cert and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: the admin page on {address} without TLS: passwords and session cookies "
            "cross the network in clear (give --tls-cert/--tls-key, or keep it on loopback)",
            err=True,
        )
    options = AdminOptions(
        listen=address,
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        idle_exit=config.admin.idle_exit if idle_exit is None else idle_exit,
        log_level=log_level.upper(),
        user=user,
    )
    exec_admin(str(config.source), options)


def read_password(confirm: bool = True) -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline()
    if not line:
        raise Failed("no password on stdin")
    return line.rstrip("\r\n")


@click.group("admin-user")
def admin_user() -> None:
    """Users of the admin page (scrypt hashes in admin.users_file)."""


@admin_user.command("add")
@config_option
@click.argument("name")
def user_add(config_file: str | None, name: str) -> None:
    """Add user NAME, or set NAME's password: from a prompt (twice), or stdin's first line."""
    from ..admin.app import session_key, session_key_path
    from ..admin.users import add_user, check_name

    config = _config(config_file)
    check_name(name)
    password = read_password()
    users_file = config.admin.users_file
    new = add_user(users_file, name, password, config.server.user)
    session_key(session_key_path(users_file), config.server.user)  # made here, by root
    click.echo(f"{'added' if new else 'password changed for'} {name} ({config.admin.users_file})")


@admin_user.command("remove")
@config_option
@click.argument("name")
def user_remove(config_file: str | None, name: str) -> None:
    """Remove user NAME (their sessions end at their next request)."""
    from ..admin.users import remove_user

    config = _config(config_file)
    remove_user(config.admin.users_file, name)
    click.echo(f"removed {name}")


@admin_user.command("list")
@config_option
@json_option
def user_list(config_file: str | None, as_json: bool) -> None:
    """The admin users."""
    from ..admin.users import load

    names = sorted(load(_config(config_file).admin.users_file).users)
    if as_json:
        echo_json(names)
    else:
        echo_table([{"user": n} for n in names], ["user"], "(no admin users)")


@click.group("admin-token")
def admin_token() -> None:
    """API tokens for scripts (sent as `Authorization: Bearer TOKEN`)."""


@admin_token.command("create")
@config_option
@click.argument("name")
def token_create(config_file: str | None, name: str) -> None:
    """Create token NAME (replacing one of that name) and print it: it is shown only now."""
    from ..admin.users import create_token

    config = _config(config_file)
    click.echo(create_token(config.admin.users_file, name, time.time(), config.server.user))


@admin_token.command("list")
@config_option
@json_option
def token_list(config_file: str | None, as_json: bool) -> None:
    """The API tokens by name (the tokens themselves are not kept)."""
    from ..admin.users import load

    tokens = load(_config(config_file).admin.users_file).tokens
    rows = [
        {
            "name": name,
            "created": datetime.fromtimestamp(created, UTC).isoformat(timespec="seconds"),
        }
        for name, (_digest, created) in sorted(tokens.items())
    ]
    if as_json:
        echo_json(rows)
    else:
        echo_table(rows, ["name", "created"], "(no API tokens)")


@admin_token.command("revoke")
@config_option
@click.argument("name")
def token_revoke(config_file: str | None, name: str) -> None:
    """Revoke token NAME."""
    from ..admin.users import revoke_token

    revoke_token(_config(config_file).admin.users_file, name)
    click.echo(f"revoked {name}")
