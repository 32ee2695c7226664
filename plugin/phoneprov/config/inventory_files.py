"""The inventory files: TOML (`[profiles.NAME]`, `[[devices]]`) or CSV with profiles from the
TOML beside it → core records, each remembering its `file:line` (and, for TOML, the line of
each key and sub-table, like `[[devices.lines]]`, so a bad value is named where it is).

CSV: `mac,type,serial,profile[,admin_password_hash]`, the lines as `lineN_FIELD` (N 1..6,
FIELD one of vocabulary.LINE_FIELDS), the keys as `keyN_FIELD` (FIELD one of KEY_FIELDS;
`keyN_number` defaults to N); every other column is a template variable.
"""

from __future__ import annotations

import csv
import difflib
import re
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, InputError
from ..core.inventory import Inventory, Record, build_inventory, build_profiles
from ..core.mac import norm_mac
from ..core.vocabulary import KEY_FIELDS, LINE_FIELDS, MAX_LINES
from .model import Config
from .tomlfile import Locator, read_toml

CSV_COLUMNS = ("mac", "type", "serial", "profile", "admin_password_hash")
CSV_GROUP = re.compile(r"^(line|key)([0-9]+)_(.*)$")
CSV_INTEGERS = ("port", "register_interval", "number")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*\"?([A-Za-z0-9_.-]+?)\"?\s*=")


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
    if extra:  # (most sites have no auto-enrolled phones: no MAC parsed twice)
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
    device_places, profile_places = toml_places(path, text)
    records = []
    for i, dev in enumerate(devices):
        places = device_places[i] if i < len(device_places) else {}
        where = places.get("", f"{path}: device #{i + 1}")
        if not isinstance(dev, dict):
            raise ConfigError("each [[devices]] entry must be a table", where)
        records.append(Record(dev, where, places))
    return _profile_records(path, text, data, profile_places), records


def toml_places(path: Path, text: str) -> tuple[list[dict[str, str]], dict[str, dict[str, str]]]:
    """`file:line` of each device's and profile's keys and sub-tables, by path within the
    record: "" (the record), "lines[0]", "lines[0].port", "provisioning.time", "vars"...
    (see tests/unit/test_config.py). Inline tables are placed at their key's line.
    """
    devices: list[dict[str, str]] = []
    profiles: dict[str, dict[str, str]] = {}
    record: dict[str, str] | None = None
    prefix = ""
    counts: dict[str, int] = {}  # array-of-tables seen, by header name
    for n, line in enumerate(text.splitlines(), 1):
        first = line.lstrip()[:1]
        if first == "#" or not first:
            continue  # a comment or a blank line: neither a header nor a key
        header = _HEADER.match(line) if first == "[" else None
        if header:
            name = header.group(2).replace('"', "")
            array, parts = header.group(1) == "[[", name.split(".")
            if parts == ["devices"] and array:
                record, counts = {}, {}
                devices.append(record)
            elif parts[0] == "profiles" and len(parts) >= 2:
                record = profiles.setdefault(parts[1], {})
                parts = parts[1:]
            elif parts[0] != "devices":
                record = None
            prefix = ".".join(parts[1:])
            if array and prefix:
                index = counts[name] = counts.get(name, -1) + 1
                prefix = f"{prefix}[{index}]"
            if record is not None:
                record.setdefault(prefix, f"{path}:{n}")
            continue
        key = _KEY.match(line)
        if key and record is not None:
            record.setdefault(f"{prefix}.{key.group(1)}".lstrip("."), f"{path}:{n}")
    return devices, profiles


def _toml_profiles(path: Path) -> list[tuple[str, Record]]:
    text, data = read_toml(path)
    return _profile_records(path, text, data, toml_places(path, text)[1])


def _profile_records(
    path: Path, text: str, data: dict[str, Any], places: dict[str, dict[str, str]]
) -> list[tuple[str, Record]]:
    at = Locator(path, text)
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError("profiles must be [profiles.NAME] tables", at("profiles"))
    out = []
    for name, body in profiles.items():
        if not isinstance(body, dict):
            raise ConfigError(f"profile {name!r} must be a table", at(f"profiles.{name}"))
        where = at(f"profiles.{name}")
        out.append((str(name), Record(body, where, places.get(str(name), {}))))
    return out


def read_csv_devices(path: Path) -> list[Record]:
    """`mac,type,serial,profile[,admin_password_hash][,lineN_*][,keyN_*][,var...]` with a
    header row; other columns become vars."""
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
        _check_groups(header, f"{path}:1")
        records = []
        for row in reader:
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            where = f"{path}:{reader.line_num}"
            if len(row) > len(header):
                raise ConfigError(f"{len(row)} columns, the header has {len(header)}", where)
            cells = dict(zip(header, (c.strip() for c in row), strict=False))
            fields: dict[str, Any] = {k: v for k, v in cells.items() if k in CSV_COLUMNS and v}
            fields |= _groups(cells, where)
            fields["vars"] = {
                k: v for k, v in cells.items() if k not in CSV_COLUMNS and not _group(k) and v
            }
            records.append(Record(fields, where))
    return records


def _group(column: str) -> tuple[str, int, str] | None:
    """("line", 2, "port") for `line2_port`; None for other columns."""
    found = CSV_GROUP.match(column)
    return None if found is None else (found[1], int(found[2]), found[3])


def _check_groups(header: list[str], where: str) -> None:
    """Refuse `lineN_`/`keyN_` columns the vocabulary does not know (N, or the field)."""
    for column in header:
        group = _group(column)
        if group is None:
            continue
        kind, n, name = group
        known = LINE_FIELDS if kind == "line" else KEY_FIELDS
        if kind == "line" and not 1 <= n <= MAX_LINES:
            raise ConfigError(
                f"column {column}: the phone has {MAX_LINES} SIP identities "
                f"(line1_* .. line{MAX_LINES}_*)",
                where,
            )
        if n < 1 or name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {kind}{max(n, 1)}_{close[0]}?" if close else ""
            hint = hint or f"known: {', '.join(f'{kind}N_{k}' for k in known)}"
            raise ConfigError(f"unknown column {column}; {hint}", where)


def _groups(cells: dict[str, str], where: str) -> dict[str, Any]:
    """The `lines` and `keys` of one row; numbers as integers, `keyN_number` defaults to N."""
    tables: dict[tuple[str, int], dict[str, Any]] = {}
    for column, value in cells.items():
        group = _group(column)
        if group is not None and value:
            kind, n, name = group
            number = value if name not in CSV_INTEGERS or not value.isdigit() else int(value)
            tables.setdefault((kind, n), {})[name] = number
    out: dict[str, Any] = {}
    lines = sorted(n for kind, n in tables if kind == "line")
    if lines:
        gap = next((n for n in range(1, lines[-1]) if n not in lines), None)
        if gap is not None:
            raise ConfigError(
                f"line{lines[-1]}_* given but line{gap}_* empty: identity n is the n-th line, "
                "so the lines must follow one another",
                where,
            )
        out["lines"] = [tables[("line", n)] for n in lines]
    keys = sorted(n for kind, n in tables if kind == "key")
    if keys:
        out["keys"] = [{"number": n} | tables[("key", n)] for n in keys]
    return out
