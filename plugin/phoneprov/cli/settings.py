"""`phoneprov settings apply`: the phone's merge of provisioning-XML files, as a command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import Failed, config_option, json_option

if TYPE_CHECKING:
    from ..core.phoneschema import PhoneSchema

DROPPED = "the phone would drop it silently"


def register(group: click.Group) -> None:
    group.add_command(settings)


def phone_schema(config_file: str | None) -> PhoneSchema:
    """The phone's schema: the shipped one, merged with the site's learned one (beside the
    config). Without --config a missing default config means the shipped schema only; a
    config given by name must exist."""
    from ..config import site_config_path
    from ..settings_schema import load_phone_schema

    path = site_config_path(config_file)  # with [sync]: the live revision's
    if path.is_file():
        return load_phone_schema(path)
    if config_file is not None:
        raise Failed(f"{path}: no such config file")
    return load_phone_schema(None)


@click.group()
def settings() -> None:
    """The phone's settings files (provisioning XML)."""


@settings.command("apply")
@config_option
@click.argument("files", metavar="FILE...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--base",
    metavar="BACKUP.xml",
    type=click.Path(dir_okay=False),
    help="The phone's current settings (its Web-UI backup) to apply onto [default: none].",
)
@json_option
def apply_files(
    config_file: str | None, files: tuple[str, ...], base: str | None, as_json: bool
) -> None:
    """Apply settings FILEs in order, as the phone does, and print the resulting settings.

    Per section: patch="true" merges XPath-wise, patch="false" replaces the section, no
    patch takes the root's patchDefault (true when omitted); keys, users, templates and Lua
    libraries are matched by keyNumber/name and replaced whole; identities by position.
    What the phone's schema (shipped + learned, see `phoneprov schema show`) does not know is
    stripped, as the phone strips it, and listed on stderr. Reference files are refused, as
    the phone's restore page refuses them. --json prints {"configuration", "stripped",
    "warnings"}.
    """
    from ..core.errors import InputError
    from ..core.phonemerge import apply_settings, sections_of, settings_root

    schema = phone_schema(config_file)
    documents = [_read(name) for name in files]
    current = _read(base) if base is not None else None
    for name, data in [*zip(files, documents, strict=True), (base, current)]:
        if name is None or data is None:
            continue
        try:
            sections_of(settings_root(data), schema)
        except InputError as e:
            raise Failed(f"{name}: {e}") from None
    applied = apply_settings(documents, schema, current)
    if as_json:
        result = {
            "configuration": applied.configuration.decode("utf-8"),
            "stripped": list(applied.stripped),
            "warnings": list(applied.warnings),
        }
        click.echo(json.dumps(result, indent=2))
        return
    for name, data in zip(files, documents, strict=True):
        for xpath in apply_settings([data], schema).stripped:  # stripping needs no state
            click.echo(f"{name}: stripped {xpath}: {DROPPED}", err=True)
    for warning in applied.warnings:
        click.echo(f"warning: {warning}", err=True)
    sys.stdout.buffer.write(applied.configuration)
    sys.stdout.buffer.flush()


def _read(name: str) -> bytes:
    try:
        return Path(name).read_bytes()
    except OSError as e:
        raise Failed(f"{name}: {e.strerror or e}") from None
