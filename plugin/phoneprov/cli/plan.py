"""`phoneprov plan`: what an apply would change, without changing anything."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .common import config_option, echo_json, json_option

if TYPE_CHECKING:
    from ..config import Config
    from ..core.plan import Plan


def register(group: click.Group) -> None:
    group.add_command(plan_command)


@click.command("plan")
@config_option
@json_option
def plan_command(config_file: str | None, as_json: bool) -> None:
    """What `apply` would change, and who `apply --resync` would send check-sync; writes
    nothing (not the dnsmasq directories, not the state database).

    Devices added, removed and changed: which inventory fields (SIP passwords shown as
    ***), which served files (since the last `apply --resync`), the exact dnsmasq lines
    (old from the files on disk, new as `apply` would write them); then the problems
    `check` reports. Exit 0 = no change, 1 = changes, 2 = an invalid config, inventory or
    template (named file:line, as `check` does).
    """
    from ..config import load_config

    run_plan(load_config(config_file), as_json)


def run_plan(config: Config, as_json: bool) -> None:
    """Print the plan for `config` and exit 0 (no change) or 1 (changes); `apply --plan`
    too (`sync --plan` makes its own and shows it with `show_plan`)."""
    from ..plan import make_plan

    show_plan(make_plan(config), as_json)


def show_plan(result: Plan, as_json: bool) -> None:
    """Print a plan and exit 0 (no change) or 1 (changes)."""
    if as_json:
        echo_json(result.as_json())
    else:
        click.echo(result.text())
    sys.exit(1 if result.changed else 0)
