"""The inventory: devices and profiles, validated as a whole.

Adapters (config/inventory_files.py) read TOML or CSV into `Record`s that remember where they
came from; `build_inventory` turns them into an `Inventory` or raises `ConfigErrors` naming
every problem with its `file:line`. Nothing is half-built: a bad line never yields a partial
result. The settings vocabulary (lines, keys, provisioning, firmware, admin_password_hash) is
read and checked by `vocabulary`; a device holds its effective settings (over its profile's).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import ConfigError, ConfigErrors, InputError
from .mac import norm_mac
from .vocabulary import SETTINGS_KEYS, Settings, device_settings, parse_settings

DEFAULT_MODELS = ("D100", "D110", "D200", "D210", "D400", "D410", "D600")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEVICE_KEYS = ("mac", "type", "serial", "profile", "vars", *SETTINGS_KEYS)
PROFILE_KEYS = ("templates", "vars", *SETTINGS_KEYS)
_ALLOWED: dict[tuple[str, ...], frozenset[str]] = {
    keys: frozenset(keys) for keys in (DEVICE_KEYS, PROFILE_KEYS)
}

Vars = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Record:
    """One raw entry as read from a file, with its location (`inventory.toml:12`)."""

    fields: Mapping[str, Any]
    where: str = ""
    places: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def place(self, path: str) -> str:
        """Where `path` (`lines[0].port`) is, else its nearest enclosing place, else `where`.

        >>> r = Record({}, "inv:3", {"lines[0]": "inv:7"})
        >>> r.place("lines[0].port"), r.place("keys[1]")
        ('inv:7', 'inv:3')
        """
        while path:
            if path in self.places:
                return self.places[path]
            path = path[: max(path.rfind("."), path.rfind("["), 0)]
        return self.where


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    templates: tuple[str, ...]
    vars: Vars = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""
    settings: Settings = field(default_factory=Settings)


@dataclass(frozen=True, slots=True)
class Device:
    mac: str  # normalised: 12 upper-case hex digits
    type: str
    profile: str
    serial: str | None = None
    vars: Vars = field(default_factory=lambda: MappingProxyType({}))
    where: str = ""
    settings: Settings = field(default_factory=Settings)  # effective: own over the profile's


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
        found: list[ConfigError] = [ConfigError(p, rec.where) for p in problems]
        settings = parse_settings(rec.fields, rec.place, found)
        if found:
            errors.extend(found)
            continue
        profiles[name] = Profile(name, tuple(templates), variables, rec.where, settings)
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
        found: list[ConfigError] = [ConfigError(p, rec.where) for p in problems]
        settings = parse_settings(rec.fields, rec.place, found)
        if not found:
            base = profiles[profile].settings
            settings = device_settings(settings, base, model, rec.where, found)
        if found:
            errors.extend(found)
            continue
        assert mac is not None
        devices[mac] = Device(mac, model, profile, serial, variables, rec.where, settings)
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


def _unknown_keys(rec: Record, allowed: tuple[str, ...]) -> list[str]:
    """`unknown key 'colour'; did you mean ...?` for each key not in `allowed`."""
    problems: list[str] = []
    if (_ALLOWED.get(allowed) or frozenset(allowed)).issuperset(rec.fields):
        return problems  # the common case: no set arithmetic, no sorting
    for name in sorted(set(rec.fields) - set(allowed)):
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
        problems.append(f"unknown key {name!r}; {hint}")
    return problems
