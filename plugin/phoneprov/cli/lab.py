"""`phoneprov demo`: the whole product in network namespaces on an embedded default."""

from __future__ import annotations

import sys

import click


def register(group: click.Group) -> None:
    group.add_command(demo)


@click.command()
@click.option("--keep-workdir", is_flag=True, help="Keep the generated config, state and logs.")
def demo(keep_workdir: bool) -> None:
    """Build a lab (one appliance, three phones), provision every phone — by options 66+67,
    by option 43 only and by SIP PnP — change one device and re-provision it by check-sync,
    print a summary, and remove everything it made (also on Ctrl-C). Needs root."""
    from ..lab.demo import run_demo

    try:
        ok = run_demo(keep_workdir)
    except KeyboardInterrupt:
        click.echo("interrupted: lab removed", err=True)
        sys.exit(130)
    sys.exit(0 if ok else 1)
