"""Where the phone's settings schema comes from: the shipped one (`data/dseries-schema.json`,
what the vendor documents) merged with what the admin learned from real phones' backups
(`phone-schema.learned.json` next to the config, kept between runs).
Loading a schema loads lxml (core.phoneschema); importing this module does not.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from .core.errors import ConfigError

if TYPE_CHECKING:
    from .core.phoneschema import PhoneSchema

LEARNED_NAME = "phone-schema.learned.json"


def shipped_schema() -> PhoneSchema:
    from .core.phoneschema import SHIPPED_RESOURCE, parse_schema

    data = resources.files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes()
    return parse_schema(data, f"phoneprov/{SHIPPED_RESOURCE}")


def learned_path(config_path: Path) -> Path:
    """The site's learned schema: beside the config file."""
    return config_path.parent / LEARNED_NAME


def load_phone_schema(config_path: Path | None) -> PhoneSchema:
    """The shipped schema, merged with the site's learned one when there is one."""
    from .core.phoneschema import merge_schemas, parse_schema

    schema = shipped_schema()
    if config_path is None:
        return schema
    path = learned_path(config_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return schema
    except OSError as e:
        raise ConfigError(f"cannot read the learned schema: {e.strerror}", str(path)) from None
    return merge_schemas(schema, parse_schema(data, str(path)))


def learn_backup(config_path: Path, backup: Path) -> tuple[PhoneSchema, int]:
    """Add what a real phone's backup shows to the site's learned schema (written
    atomically); returns the learned schema and how many paths were new to it."""
    from .core.phoneschema import (
        PhoneSchema,
        learn_schema,
        merge_schemas,
        parse_schema,
        schema_to_json,
    )

    path = learned_path(config_path)
    try:
        learned = parse_schema(path.read_bytes(), str(path))
    except FileNotFoundError:
        learned = PhoneSchema(())
    before = {node.path for node in learned.nodes}
    merged = merge_schemas(learned, learn_schema(backup.read_bytes(), str(backup)))
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(schema_to_json(merged), encoding="utf-8")
    os.replace(temp, path)
    return merged, len({node.path for node in merged.nodes} - before)
