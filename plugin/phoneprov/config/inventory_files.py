"""The inventory files: TOML (`[profiles.NAME]`, `[[devices]]`) or CSV with profiles from the
TOML beside it → core records, each remembering its `file:line`."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, InputError
from ..core.inventory import Inventory, Record, build_inventory, build_profiles
from ..core.mac import norm_mac
from .model import Config
from .tomlfile import Locator, read_toml

CSV_COLUMNS = ("mac", "type", "serial", "profile")


def load_inventory(config: Config, extra: list[Record] | None = None) -> Inventory:
    """The inventory named by the config (TOML, or CSV with profiles from a TOML beside it).

    `extra` are device records from elsewhere (auto-enrolled phones from the state database);
    a MAC present in the file wins over an extra record for the same MAC.
    """
    path = config.inventory_path
    if path.suffix.lower() == ".csv":
        profiles_path = path.with_suffix(".toml")
        profile_records = _toml_profiles(profiles_path) if profiles_path.exists() else []
        device_records = read_csv_devices(path)
    else:
        profile_records, device_records = read_toml_inventory(path)
    return _build(config, profile_records, device_records, extra or [])


def _build(
    config: Config,
    profile_records: list[tuple[str, Record]],
    device_records: list[Record],
    extra: list[Record],
) -> Inventory:
    profiles = build_profiles(profile_records)
    listed = {_mac_or_none(rec) for rec in device_records}
    extra = [r for r in extra if _mac_or_none(r) not in listed]
    return build_inventory(device_records + extra, profiles, config.models)


def _mac_or_none(rec: Record) -> str | None:
    try:
        return norm_mac(str(rec.fields.get("mac", "")))
    except InputError:
        return None


def read_toml_inventory(path: Path) -> tuple[list[tuple[str, Record]], list[Record]]:
    """Profiles `[profiles.NAME]` and devices `[[devices]]` with their line numbers."""
    text, data = read_toml(path)
    at = Locator(path, text)
    for key in set(data) - {"profiles", "devices"}:
        raise ConfigError(f"unknown key {key!r}; expected [profiles.NAME] and [[devices]]", at(key))
    devices = data.get("devices", [])
    if not isinstance(devices, list):
        raise ConfigError("devices must be [[devices]] entries", at("devices"))
    lines = [
        i + 1
        for i, line in enumerate(text.splitlines())
        if re.match(r"^\s*\[\[\s*devices\s*\]\]", line)
    ]
    records = []
    for i, dev in enumerate(devices):
        line = lines[i] if i < len(lines) else 0
        where = f"{path}:{line}" if line else f"{path}: device #{i + 1}"
        if not isinstance(dev, dict):
            raise ConfigError("each [[devices]] entry must be a table", where)
        records.append(Record(dev, where))
    return _profile_records(path, text, data), records


def _toml_profiles(path: Path) -> list[tuple[str, Record]]:
    text, data = read_toml(path)
    return _profile_records(path, text, data)


def _profile_records(path: Path, text: str, data: dict[str, Any]) -> list[tuple[str, Record]]:
    at = Locator(path, text)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError("profiles must be [profiles.NAME] tables", at("profiles"))
    out = []
    for name, body in profiles.items():
        if not isinstance(body, dict):
            raise ConfigError(f"profile {name!r} must be a table", at(f"profiles.{name}"))
        out.append((str(name), Record(body, at(f"profiles.{name}"))))
    return out


def read_csv_devices(path: Path) -> list[Record]:
    """`mac,type,serial,profile[,var...]` with a header row; extra columns become vars."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError(f"cannot read inventory: {e.strerror}", str(path)) from None
    with handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in ("mac", "type", "profile") if c not in header]
        if missing:
            raise ConfigError(
                f"CSV header lacks column(s) {', '.join(missing)}; expected "
                f"{','.join(CSV_COLUMNS)}[,variables...]",
                f"{path}:1",
            )
        records = []
        for row in reader:
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) > len(header):
                raise ConfigError(f"{len(row)} columns, the header has {len(header)}", where)
            cells = dict(zip(header, (c.strip() for c in row), strict=False))
            fields: dict[str, Any] = {k: v for k, v in cells.items() if k in CSV_COLUMNS and v}
            fields["vars"] = {k: v for k, v in cells.items() if k not in CSV_COLUMNS and v}
            records.append(Record(fields, where))
    return records
