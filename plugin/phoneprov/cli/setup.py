"""`phoneprov setup`: this box becomes the provisioning appliance (install/setup.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from ..install.setup import (
    Layout,
    detect_interface,
    restart_dnsmasq,
    run,
    setup_steps,
    uninstall_steps,
)
from .common import Failed


def register(group: click.Group) -> None:
    group.add_command(setup)


@click.command()
@click.option("--interface", metavar="IF", help="The LAN interface phones are on [detected].")
@click.option("--dry-run", is_flag=True, help="Print every step; change nothing.")
@click.option(
    "--restart-dnsmasq",
    is_flag=True,
    help="Restart dnsmasq when it has not loaded the snippet yet (never a reload).",
)
@click.option("--uninstall", is_flag=True, help="Remove what setup added (keeps your data).")
@click.option("--purge", is_flag=True, help="With --uninstall: also config, inventory, state.")
def setup(
    interface: str | None, dry_run: bool, restart_dnsmasq: bool, uninstall: bool, purge: bool
) -> None:
    """Make this Debian box, which runs dnsmasq, a provisioning appliance.

    Creates the `phoneprov` user, /etc/phoneprov (example config, inventory, templates:
    never overwritten), /var/lib/phoneprov, the dnsmasq hook and snippet
    (/etc/dnsmasq.d/phoneprov.conf) and the systemd unit of `phoneprov serve` (enabled and
    started when systemd runs) and those of `phoneprov sync` (the timer enabled only when
    [sync] repo is set: then the first sync runs here); then runs `check` and `apply`, and
    `doctor` at the end.
    Each step is skipped when already done: run it again any time. Exit 0 when set up,
    2 on errors.
    """
    if purge and not uninstall:
        raise Failed("--purge goes with --uninstall")
    if os.geteuid() != 0 and not dry_run:
        raise Failed("setup needs root: it adds a user and writes /etc and /var/lib")
    layout = Layout()
    if uninstall:
        report = run(uninstall_steps(layout, purge), dry_run, click.echo)
        _dnsmasq_after_uninstall(restart_dnsmasq, dry_run, bool(report.done))
        kept = "" if purge else f"; kept {layout.etc} and {layout.var} (--purge removes them)"
        click.echo(f"uninstall: {len(report.done)} step(s) {_verb(dry_run)}{kept}")
        return
    interface = interface or _interface(layout)
    report = run(setup_steps(layout, interface, _this_phoneprov()), dry_run, click.echo)
    if dry_run:
        click.echo("would  run phoneprov check, phoneprov apply, phoneprov doctor")
        click.echo(f"setup: {len(report.done)} step(s) to do, {len(report.already)} done already")
        return
    from ..config import load_config
    from ..dnsmasq.apply import apply
    from ..render.check import check_installation
    from .doctor import report as doctor_report

    click.echo(check_installation(str(layout.config)))
    config = load_config(layout.config)
    click.echo(f"ok: apply: {apply(config).summary()}")
    _dnsmasq_after_setup(layout, config.dhcp.dnsmasq_pidfile, restart_dnsmasq)
    click.echo("doctor:")
    doctor_report(config)
    if report.done:
        click.echo(f"setup: {len(report.done)} step(s) done, {len(report.already)} already")
    else:
        click.echo("setup: nothing changed, everything was set up already")


def _verb(dry_run: bool) -> str:
    return "to do" if dry_run else "done"


def _this_phoneprov() -> str:
    """How systemd starts this phoneprov: the entry script that runs now, else the module."""
    script = Path(sys.argv[0])
    if script.name == "phoneprov" and script.exists():
        return str(script.resolve())
    found = shutil.which("phoneprov")
    return found or f"{sys.executable} -m phoneprov"


def _interface(layout: Layout) -> str:
    """The configured LAN interface, else the only candidate, else the admin's choice."""
    if layout.config.exists():
        from ..config import load_config, load_sync_settings

        if load_sync_settings(layout.config).enabled:
            return ""  # no example is written; the site config in the repository names it
        return load_config(layout.config).server.interface
    found = detect_interface()
    if len(found) == 1:
        click.echo(f"setup: LAN interface {found[0]} (the only one with an IPv4 address)")
        return found[0]
    if not found:
        raise Failed("no interface with an IPv4 address: pass --interface IF")
    if not sys.stdin.isatty():
        raise Failed(f"several interfaces ({', '.join(found)}): pass --interface IF")
    return str(click.prompt("LAN interface the phones are on", type=click.Choice(found)))


def _dnsmasq_after_setup(layout: Layout, pidfile: Path, restart: bool) -> None:
    from ..dnsmasq.apply import dnsmasq_started_at

    started = dnsmasq_started_at(pidfile)
    if started is not None and started > layout.snippet.stat().st_mtime:
        return  # it runs with the snippet
    if restart:
        _restart_dnsmasq()
    else:
        click.echo(
            "note: dnsmasq has not loaded the snippet yet: restart it once "
            "(systemctl restart dnsmasq, or setup --restart-dnsmasq); never reload it"
        )


def _dnsmasq_after_uninstall(restart: bool, dry_run: bool, changed: bool) -> None:
    if not changed or dry_run:
        return
    if restart:
        _restart_dnsmasq()
    else:
        click.echo("note: restart dnsmasq to drop what it loaded from phoneprov (never reload)")


def _restart_dnsmasq() -> None:
    restart_dnsmasq()
    click.echo("ok: dnsmasq restarted")
