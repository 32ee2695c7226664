"""`phoneprov schema learn|show`: the phone's settings schema (shipped + learned from backups)."""

from __future__ import annotations

from pathlib import Path

import click

from .common import Failed, config_option, echo_json, echo_table, json_option

SOURCES = {"V": "verified", "I": "inferred", "L": "learned"}


def register(group: click.Group) -> None:
    group.add_command(schema)


def _site_config(config_file: str | None, required: bool) -> Path | None:
    """The config file the learned schema sits beside; None when there is none (show only)."""
    from ..config import site_config_path

    path = site_config_path(config_file)  # with [sync]: the live revision's
    if path.is_file():
        return path
    if required or config_file is not None:
        raise Failed(f"{path}: no such config file (the learned schema is kept beside it)")
    return None


@click.group("schema")
def schema() -> None:
    """The phone's settings schema: what `check` validates every served file against."""


@schema.command("learn")
@click.argument("backup", metavar="BACKUP.xml", type=click.Path(dir_okay=False, exists=True))
@config_option
def learn(backup: str, config_file: str | None) -> None:
    """Record every element path, attribute and section version of a real phone's backup
    (Web-UI: backup & restore) in the site's schema file beside the config; from then on
    those elements validate. Run it again with each firmware's backup."""
    from ..config import config_path, load_sync_settings
    from ..settings_schema import learn_backup, learned_path, shipped_schema

    if config_path(config_file).is_file() and load_sync_settings(config_file).enabled:
        raise Failed(
            "the learned schema comes from the repository with the site ([sync] repo): learn "
            "into a checkout (`phoneprov schema learn BACKUP -c <checkout>/<path>/phoneprov.toml`) "
            "and commit it"
        )
    config = _site_config(config_file, required=True)
    assert config is not None
    learned, new = learn_backup(config, Path(backup))
    shipped = {node.path for node in shipped_schema().nodes}
    unknown = sum(node.path not in shipped for node in learned.nodes)
    versions = ", ".join(f"{s} {v}" for s, v in learned.versions) or "none"
    click.echo(
        f"learned {new} new path(s) from {backup} into {learned_path(config)}: "
        f"{len(learned.nodes)} paths, {unknown} of them not in the shipped schema; "
        f"section versions: {versions}"
    )


@schema.command("show")
@config_option
@json_option
def show(config_file: str | None, as_json: bool) -> None:
    """Every known path with its type and source: V verified (a vendor source, DSERIES §),
    I inferred, L learned from a backup. Without a config: the shipped schema only."""
    from ..core.phoneschema import schema_entries
    from ..settings_schema import load_phone_schema

    phone_schema = load_phone_schema(_site_config(config_file, required=False))
    rows = [
        {"path": path, "type": what, "source": source, "kind": SOURCES[source[0]]}
        for path, what, source in schema_entries(phone_schema)
    ]
    if as_json:
        echo_json({"versions": dict(phone_schema.versions), "paths": rows})
        return
    echo_table(rows, ["path", "type", "source"])
    counts = {k: sum(r["kind"] == k for r in rows) for k in SOURCES.values()}
    click.echo(", ".join(f"{n} {kind}" for kind, n in counts.items()))
