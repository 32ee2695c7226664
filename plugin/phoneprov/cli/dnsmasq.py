"""dnsmasq commands: apply, dnsmasq-snippet, leases, discovered, options."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .common import config_option, echo_json, echo_table, json_option

if TYPE_CHECKING:
    from ..config import Config
    from ..dnsmasq.apply import ApplyResult
    from ..sip.changes import Applied


def register(group: click.Group) -> None:
    for command in (apply_command, snippet_command, leases_command, discovered_command, options):
        group.add_command(command)


@click.command("apply")
@config_option
@click.option(
    "--resync",
    is_flag=True,
    help="Then send check-sync to each device whose options or files changed since the "
    "last `apply --resync` (exit 1 if one was sent and not accepted).",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Apply nothing: print what would change, as `phoneprov plan` does (exit 0 = no "
    "change, 1 = changes, 2 = error).",
)
@click.option("--json", "as_json", is_flag=True, help="With --plan: the plan as JSON.")
def apply_command(config_file: str | None, resync: bool, plan_only: bool, as_json: bool) -> None:
    """Write the inventory's per-device dnsmasq files (no restart, never SIGHUP).

    Validates everything first: a broken inventory leaves the running files alone.
    """
    from ..config import load_config

    if plan_only:
        from .plan import run_plan

        run_plan(load_config(config_file), as_json)
    if as_json:
        raise click.UsageError("--json goes with --plan")
    from ..dnsmasq.apply import apply

    config = load_config(config_file)
    if resync:
        from ..sip.changes import apply_with_changes

        applied = apply_with_changes(config, time.time())
        result = applied.result
    else:
        result = apply(config)
    if not config.dhcp.ntp:
        click.echo("warning: no NTP server handed out (dhcp.ntp = []): phones need valid time")
    echo_applied(config, result)
    prune_state(config)
    if resync:
        resync_changed(config, applied)


def echo_applied(config: Config, result: ApplyResult) -> None:
    """The line an apply ends with (`apply`, and `sync` after a switch)."""
    click.echo(f"ok: {result.summary()} ({config.dhcp.hostsdir}, {config.dhcp.optsdir})")


def prune_state(config: Config) -> None:
    """Retention for fetches and discovered phones, applied with every apply too (the
    HTTP server prunes hourly; a site without it still keeps its database bounded)."""
    from ..state.db import open_state

    if config.state.exists():
        with open_state(config.state) as state:
            state.prune(config.retention.days, config.retention.rows, time.time())


def resync_changed(config: Config, applied: Applied) -> None:
    """check-sync to the changed devices, one line each as `phoneprov resync` prints them."""
    from ..sip.resync import NO_LEASE, check_sync
    from .sip import echo_results

    changes = applied.changes
    if changes.first_run:
        click.echo(f"resync: first run, recorded {applied.recorded} devices; nothing sent")
        return
    if not changes.macs:
        click.echo("resync: no device changed")
        return
    results = check_sync(config, applied.inventory, list(changes.macs))
    echo_results(results)
    if any(not r.accepted and r.verdict != NO_LEASE for r in results):
        sys.exit(1)


@click.command("dnsmasq-snippet")
@config_option
@click.option(
    "--hook",
    "hook_file",
    type=click.Path(dir_okay=False),
    help="Also write the dhcp-script here, bound to this Python and this phoneprov.",
)
def snippet_command(config_file: str | None, hook_file: str | None) -> None:
    """Print the /etc/dnsmasq.d/ snippet for this config (hostsdir, optsdir, dhcp-script).

    Every line is checked to be one dnsmasq line (exit 2 otherwise, nothing printed or
    written): no path or header can add a line of its own.
    """
    from ..config import load_config
    from ..dnsmasq.snippet import shipped_hook, snippet_text, write_hook

    config = load_config(config_file)
    script = Path(hook_file).absolute() if hook_file else shipped_hook()
    snippet = snippet_text(config, script)
    if hook_file:
        write_hook(script, config)
    click.echo(snippet, nl=False)


@click.command("leases")
@config_option
@json_option
@click.option("--all", "include_inactive", is_flag=True, help="Also released leases.")
def leases_command(config_file: str | None, as_json: bool, include_inactive: bool) -> None:
    """The DHCP leases the hook recorded."""
    from ..config import load_config

    config = load_config(config_file)
    rows = [lease.__dict__ for lease in _state_rows(config.state, "leases", include_inactive)]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["expires"] = _when(row["expires"])
        row["last_seen"] = _when(row["last_seen"])
    columns = ["mac", "ip", "hostname", "interface", "vendor_class", "expires", "last_seen"]
    echo_table(rows, columns + (["active"] if include_inactive else []), "(no leases)")


@click.command("discovered")
@config_option
@json_option
def discovered_command(config_file: str | None, as_json: bool) -> None:
    """Phones seen by DHCP that match the vendor OUIs/classes but are not in the inventory."""
    from ..config import load_config

    config = load_config(config_file)
    enrolled = {row["mac"] for row in _state_rows(config.state, "enrolled")}
    rows = [
        {**d.__dict__, "enrolled": d.mac in enrolled}
        for d in _state_rows(config.state, "discovered")
    ]
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        row["first_seen"], row["last_seen"] = _when(row["first_seen"]), _when(row["last_seen"])
        row["enrolled"] = "yes" if row["enrolled"] else "no"
    columns = ["mac", "ip", "vendor_class", "reason", "enrolled", "first_seen", "last_seen"]
    echo_table(rows, columns, "(nothing discovered)")


@click.command("options")
@click.argument("mac")
@config_option
@json_option
def options(mac: str, config_file: str | None, as_json: bool) -> None:
    """The DHCP options 42/43/66/67 this MAC gets, computed exactly as `apply` writes them."""
    from ..config import load_config
    from ..dnsmasq.options import options_for
    from ..site import resolve_settings

    config = load_config(config_file)
    report = options_for(config, resolve_settings(config), mac)
    if as_json:
        echo_json(report)
        return
    click.echo(f"{report['mac']}: {report['source']}")
    for code in ("42", "43", "66", "67"):
        value = report[code]
        shown = ",".join(value) if isinstance(value, list) else value
        click.echo(f"  {code}: {'(not sent)' if value is None else shown}")
    if report["url"]:
        click.echo(f"  url: {report['url']}")
    if report["applied"] is False:
        click.echo("  not applied yet: run `phoneprov apply`")


def _state_rows(path: Path, table: str, include_inactive: bool = False) -> list[Any]:
    if not path.exists():
        return []
    from ..state.db import State

    with State(path) as state:
        if table == "leases":
            return list(state.leases(include_inactive))
        if table == "discovered":
            return list(state.discovered())
        return list(state.enrolled())


def _when(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
