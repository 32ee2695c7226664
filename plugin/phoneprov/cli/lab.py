"""`phoneprov demo`: the whole product in network namespaces on an embedded default."""

from __future__ import annotations

import sys

import click


def register(group: click.Group) -> None:
    group.add_command(demo)


@click.command()
@click.option("--keep-workdir", is_flag=True, help="Keep the generated config, state and logs.")
@click.option(
    "--keep",
    is_flag=True,
    help="After the summary, leave the lab, its services and the admin page up until Ctrl-C.",
)
@click.option(
    "--wrong-password",
    metavar="PHONE",
    default="",
    help="Give this phone (phone1..phone3) another line-1 password at the registrar than in "
    "the inventory, to see how a mismatch shows (the demo then exits 1).",
)
def demo(keep_workdir: bool, keep: bool, wrong_password: str) -> None:
    """Build a lab (one appliance, a PBX running kamailio, three phones), provision every
    phone — by options 66+67, by option 43 only and by SIP PnP — and register its lines with
    a real SIP user agent; change phone 1's line 1 (password, display name), send check-sync
    with `apply --resync`, see it re-provision and register again; print a summary, and
    remove everything it made (also on Ctrl-C). The admin page runs in the lab too: its URL
    and a one-time password for `admin` are printed. Needs root."""
    from ..lab.demo import run_demo

    try:
        ok = run_demo(keep_workdir, wrong_password, keep)
    except KeyboardInterrupt:
        click.echo("interrupted: lab removed", err=True)
        sys.exit(130)
    sys.exit(0 if ok else 1)
