"""`phoneprov doctor`: inspect this installation and print actionable findings."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from .common import config_option, echo_json, json_option

if TYPE_CHECKING:
    from ..config import Config

LABELS = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def register(group: click.Group) -> None:
    group.add_command(doctor)


@click.command()
@config_option
@json_option
@click.option("--device", "mac", metavar="MAC", help="Check only this device.")
def doctor(config_file: str | None, as_json: bool, mac: str | None) -> None:
    """Check dnsmasq, the snippet, files, hook, state, HTTP, NTP and each device's fetch.

    Read only: never signals dnsmasq; each device's files are fetched from the running
    server as the phone would (with its token in security mode "lease").
    Exit 0 without failures, 1 with any FAIL, 2 when the configuration cannot be loaded.
    """
    from ..config import load_config

    if report(load_config(config_file), mac, as_json):
        raise SystemExit(1)


def report(config: Config, mac: str | None = None, as_json: bool = False) -> bool:
    """Print the findings (as `phoneprov doctor` does); True when one is a failure."""
    from ..core.findings import diagnose
    from ..doctor import gather

    facts = gather(config, only=mac)
    findings = diagnose(facts)
    failed = any(f.level == "fail" for f in findings)
    if as_json:
        echo_json(
            {
                "ok": not failed,
                "findings": [asdict(f) for f in findings],
                "devices": [asdict(d) for d in facts.devices],
            }
        )
        return failed
    topic = None
    for f in findings:
        if f.topic != topic:
            topic = f.topic
            click.echo(topic)
        click.echo(f"  {LABELS[f.level]:<5} {f.message}")
        if f.fix and f.level != "ok":
            click.echo(f"        fix: {f.fix}")
    counts = {level: sum(f.level == level for f in findings) for level in LABELS}
    click.echo(f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures")
    return failed
