"""The inventory: devices and profiles, validated as a whole.

Adapters (config.py) read TOML or CSV into `Record`s that remember where they came from;
`build_inventory` turns them into an `Inventory` or raises `ConfigErrors` naming every
problem with its `file:line`. Nothing is half-built: a bad line never yields a partial result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import ConfigError, ConfigErrors, InputError
from .mac import norm_mac

DEFAULT_MODELS = ("D100", "D110", "D200", "D210", "D400", "D410", "D600")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICE_KEYS = {"mac", "type", "serial", "profile", "vars"}
PROFILE_KEYS = {"templates", "vars"}

Vars = Mapping[str, Any]


@dataclass(frozen=True)
class Record:
    """One raw entry as read from a file, with its location (`inventory.toml:12`)."""

    fields: Mapping[str, Any]
    where: str = ""


@dataclass(frozen=True)
class Profile:
    name: str
    templates: tuple[str, ...]
    vars: Vars = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""


@dataclass(frozen=True)
class Device:
    mac: str  # normalised: 12 upper-case hex digits
    type: str
    profile: str
    serial: str | None = None
    vars: Vars = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""


@dataclass(frozen=True)
class Inventory:
    devices: Mapping[str, Device]  # by normalised MAC, in file order
    profiles: Mapping[str, Profile]

    def device(self, mac: str) -> Device | None:
        """The device for a MAC in any notation, or None (also for a malformed MAC)."""
        try:
            return self.devices.get(norm_mac(mac))
        except InputError:
            return None


def build_profiles(records: list[tuple[str, Record]]) -> dict[str, Profile]:
    """Profiles from (name, record) pairs; raises ConfigErrors with every problem found."""
    errors: list[ConfigError] = []
    profiles: dict[str, Profile] = {}
    for name, rec in records:
        problems = _unknown_keys(rec, PROFILE_KEYS)
        if not NAME.match(name):
            problems.append(f"profile name {name!r} must be letters, digits, '_', '.', '-'")
        templates = rec.fields.get("templates", [])
        if not isinstance(templates, list) or not all(isinstance(t, str) and t for t in templates):
            problems.append(f"profile {name!r}: templates must be a list of file names")
            templates = []
        variables = _vars(rec, problems)
        if problems:
            errors.extend(ConfigError(p, rec.where) for p in problems)
            continue
        profiles[name] = Profile(name, tuple(templates), variables, rec.where)
    if errors:
        raise ConfigErrors(errors)
    return profiles


def build_inventory(
    device_records: list[Record],
    profiles: Mapping[str, Profile],
    models: tuple[str, ...] = DEFAULT_MODELS,
) -> Inventory:
    """Validate every device record; raise ConfigErrors listing all problems, or return all."""
    errors: list[ConfigError] = []
    devices: dict[str, Device] = {}
    for rec in device_records:
        problems = _unknown_keys(rec, DEVICE_KEYS)
        mac = _device_mac(rec, problems)
        model = str(rec.fields.get("type", "")).strip().upper().replace("-", "")
        if not model:
            problems.append("missing type (the phone model, like D200)")
        elif model not in models:
            problems.append(f"unknown model {model!r}; known: {', '.join(models)}")
        profile = str(rec.fields.get("profile", "")).strip()
        if not profile:
            problems.append("missing profile")
        elif profile not in profiles:
            problems.append(f"unknown profile {profile!r}")
        serial = str(rec.fields.get("serial") or "").strip() or None
        if serial is not None and not NAME.match(serial):
            problems.append(f"serial {serial!r} must be letters, digits, '_', '.', '-'")
        variables = _vars(rec, problems)
        if mac is not None and mac in devices:
            problems.append(f"duplicate MAC {mac} (first at {devices[mac].where or '?'})")
        if problems:
            errors.extend(ConfigError(p, rec.where) for p in problems)
            continue
        assert mac is not None
        devices[mac] = Device(mac, model, profile, serial, variables, rec.where)
    if errors:
        raise ConfigErrors(errors)
    return Inventory(MappingProxyType(devices), MappingProxyType(dict(profiles)))


def _device_mac(rec: Record, problems: list[str]) -> str | None:
    raw = rec.fields.get("mac")
    if raw is None or raw == "":
        problems.append("missing mac")
        return None
    try:
        return norm_mac(str(raw))
    except InputError as e:
        problems.append(str(e))
        return None


def _vars(rec: Record, problems: list[str]) -> Vars:
    variables = rec.fields.get("vars", {})
    if not isinstance(variables, Mapping):
        problems.append("vars must be a table of name = value")
        return MappingProxyType({})
    bad = [k for k in variables if not NAME.match(str(k))]
    if bad:
        problems.append(f"variable names must be letters, digits, '_', '.', '-': {bad}")
    return MappingProxyType(dict(variables))


def _unknown_keys(rec: Record, allowed: set[str]) -> list[str]:
    unknown = sorted(set(rec.fields) - allowed)
    return [f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"] * bool(
        unknown
    )
