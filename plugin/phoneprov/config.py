"""Configuration adapter: the appliance TOML file and the inventory (TOML or CSV) → core objects.

Every error names its place (`file:line`) so an admin can go straight to it.
Relative paths in the config file are relative to the config file's directory.
"""

from __future__ import annotations

import csv
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.errors import ConfigError, ConfigErrors, InputError
from .core.inventory import DEFAULT_MODELS, Inventory, Record, build_inventory, build_profiles
from .core.layout import Layout
from .core.mac import norm_mac, norm_oui

DEFAULT_CONFIG = "/etc/phoneprov/phoneprov.toml"
CONFIG_ENV = "PHONEPROV_CONFIG"
DHCP_MODES = ("66+67", "43", "both", "vendor")
SECURITY_MODES = ("lease", "token", "open")
PNP_POLICIES = ("known", "vendor")
CSV_COLUMNS = ("mac", "type", "serial", "profile")
DEFAULT_CHECK_SYNC = "check-sync;reboot=false"


@dataclass(frozen=True)
class ServerConfig:
    url: str = "auto"  # base URL in option 66, or "auto": http://<interface address>:<port>
    interface: str = "eth0"  # the LAN interface dnsmasq serves
    listen: str = "0.0.0.0:8080"
    layout: Layout = field(default_factory=Layout)
    workers: int = 2


@dataclass(frozen=True)
class DhcpConfig:
    mode: str = "66+67"
    ntp: tuple[str, ...] = ("auto",)  # "auto" = the server's address; () = do not hand out
    force: bool = False  # dhcp-option-force for 66/67 (sent even to phones that do not ask)
    vendor_ouis: tuple[str, ...] = ("000952",)
    vendor_classes: tuple[str, ...] = ()
    auto_enrol: bool = False
    default_profile: str = "default"
    default_type: str = "D200"
    hostsdir: Path = Path("/var/lib/phoneprov/dnsmasq/hosts")
    optsdir: Path = Path("/var/lib/phoneprov/dnsmasq/opts")
    dnsmasq_pidfile: Path = Path("/run/dnsmasq/dnsmasq.pid")  # to expire tombstones


@dataclass(frozen=True)
class SecurityConfig:
    mode: str = "lease"
    trusted_proxies: int = 0
    refused_per_minute: int = 30  # refused/unknown requests per source IP before 429
    secret_file: Path = Path("/var/lib/phoneprov/secret")


@dataclass(frozen=True)
class SipConfig:
    interface: str = ""  # empty: the server interface
    pnp: bool = False  # `phoneprov serve` runs the PnP responder in its worker
    pnp_policy: str = "known"
    t1: float = 0.5
    timer_f: float = 32.0  # 64 * T1
    check_sync_event: str = DEFAULT_CHECK_SYNC
    check_sync_events: dict[str, str] = field(default_factory=dict)  # model -> event

    def event_for(self, model: str) -> str:
        return self.check_sync_events.get(model, self.check_sync_event)


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    dhcp: DhcpConfig
    security: SecurityConfig
    sip: SipConfig
    inventory_path: Path
    templates: Path
    state: Path
    models: tuple[str, ...] = DEFAULT_MODELS

    @property
    def sip_interface(self) -> str:
        return self.sip.interface or self.server.interface


def config_path(given: str | os.PathLike[str] | None) -> Path:
    return Path(given or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the appliance config (not the inventory: see `load_inventory`)."""
    path = config_path(path)
    text, data = _read_toml(path)
    at = _Locator(path, text)
    base = path.parent
    known = {"server", "dhcp", "security", "sip", "paths", "models"}
    for key in set(data) - known:
        raise ConfigError(f"unknown section or key {key!r}", at(key))
    s, d, sec, sip, paths = (
        _table(data, k, at) for k in ("server", "dhcp", "security", "sip", "paths")
    )
    try:
        layout = Layout(s.get("url_style", "query"), s.get("query_path", "prov.py"))
    except InputError as e:
        raise ConfigError(str(e), at("url_style", "server")) from None
    server = ServerConfig(
        url=_str(s, "url", "auto", at, "server"),
        interface=_str(s, "interface", "eth0", at, "server"),
        listen=_str(s, "listen", "0.0.0.0:8080", at, "server"),
        layout=layout,
        workers=_int(s, "workers", 2, at, "server"),
    )
    if server.url != "auto" and not re.match(r"^https?://[^/]+", server.url):
        raise ConfigError(
            f"server.url must be 'auto' or http(s)://host[:port]: {server.url!r}",
            at("url", "server"),
        )
    dhcp = DhcpConfig(
        mode=_choice(d, "mode", "66+67", DHCP_MODES, at, "dhcp"),
        ntp=tuple(_list(d, "ntp", ["auto"], at, "dhcp")),
        force=_bool(d, "force", False, at, "dhcp"),
        vendor_ouis=tuple(_each(d, "vendor_ouis", ["00:09:52"], norm_oui, at, "dhcp")),
        vendor_classes=tuple(_list(d, "vendor_classes", [], at, "dhcp")),
        auto_enrol=_bool(d, "auto_enrol", False, at, "dhcp"),
        default_profile=_str(d, "default_profile", "default", at, "dhcp"),
        default_type=_str(d, "default_type", "D200", at, "dhcp"),
        hostsdir=base / _str(d, "hostsdir", "/var/lib/phoneprov/dnsmasq/hosts", at, "dhcp"),
        optsdir=base / _str(d, "optsdir", "/var/lib/phoneprov/dnsmasq/opts", at, "dhcp"),
        dnsmasq_pidfile=base / _str(d, "dnsmasq_pidfile", "/run/dnsmasq/dnsmasq.pid", at, "dhcp"),
    )
    security = SecurityConfig(
        mode=_choice(sec, "mode", "lease", SECURITY_MODES, at, "security"),
        trusted_proxies=_int(sec, "trusted_proxies", 0, at, "security"),
        refused_per_minute=_int(sec, "refused_per_minute", 30, at, "security"),
        secret_file=base / _str(sec, "secret_file", "/var/lib/phoneprov/secret", at, "security"),
    )
    t1 = _seconds(sip, "t1", 0.5, at, "sip")
    events = sip.get("check_sync_events", {})
    if not isinstance(events, dict):
        raise ConfigError("sip.check_sync_events must be a table model = event", at("sip"))
    sipc = SipConfig(
        interface=_str(sip, "interface", "", at, "sip"),
        pnp=_bool(sip, "pnp", False, at, "sip"),
        pnp_policy=_choice(sip, "pnp_policy", "known", PNP_POLICIES, at, "sip"),
        t1=t1,
        timer_f=_seconds(sip, "timer_f", 64 * t1, at, "sip"),
        check_sync_event=_str(sip, "check_sync_event", DEFAULT_CHECK_SYNC, at, "sip"),
        check_sync_events={str(k).upper(): str(v) for k, v in events.items()},
    )
    models = data.get("models", {}).get("known", list(DEFAULT_MODELS))
    return Config(
        path=path,
        server=server,
        dhcp=dhcp,
        security=security,
        sip=sipc,
        inventory_path=base / _str(paths, "inventory", "inventory.toml", at, "paths"),
        templates=base / _str(paths, "templates", "templates", at, "paths"),
        state=base / _str(paths, "state", "/var/lib/phoneprov/state.db", at, "paths"),
        models=tuple(str(m).upper() for m in models),
    )


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
    text, data = _read_toml(path)
    at = _Locator(path, text)
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
    text, data = _read_toml(path)
    return _profile_records(path, text, data)


def _profile_records(path: Path, text: str, data: dict[str, Any]) -> list[tuple[str, Record]]:
    at = _Locator(path, text)
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


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text: {e}", str(path)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            f"TOML syntax: {e}", f"{path}:{line.group(1)}" if line else str(path)
        ) from None


class _Locator:
    """Finds the line of `key` (inside `[section]`) in TOML text, for error messages."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def __call__(self, key: str, section: str = "") -> str:
        in_section = not section
        for n, line in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[+\s*([^\]]+?)\s*\]+", line)
            if header:
                name = header.group(1).replace('"', "")
                if name == key and not section:
                    return f"{self.path}:{n}"
                in_section = name == section if section else in_section
            elif in_section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
                return f"{self.path}:{n}"
        return str(self.path)


def _table(data: dict[str, Any], key: str, at: _Locator) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a [{key}] table", at(key))
    return value


def _get(
    t: dict[str, Any],
    key: str,
    default: Any,
    kind: type | tuple[type, ...],
    what: str,
    at: _Locator,
    section: str,
) -> Any:
    value = t.get(key, default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{section}.{key} must be {what}, not {value!r}", at(key, section))
    return value


def _str(t: dict[str, Any], key: str, default: str, at: _Locator, section: str) -> str:
    return str(_get(t, key, default, str, "text", at, section))


def _int(t: dict[str, Any], key: str, default: int, at: _Locator, section: str) -> int:
    value = int(_get(t, key, default, int, "a whole number", at, section))
    if value < 0:
        raise ConfigError(f"{section}.{key} must not be negative", at(key, section))
    return value


def _seconds(t: dict[str, Any], key: str, default: float, at: _Locator, section: str) -> float:
    value = float(_get(t, key, default, (int, float), "a number of seconds", at, section))
    if isinstance(t.get(key), bool) or not 0 < value <= 3600:
        raise ConfigError(f"{section}.{key} must be seconds in (0, 3600]", at(key, section))
    return value


def _bool(t: dict[str, Any], key: str, default: bool, at: _Locator, section: str) -> bool:
    return bool(_get(t, key, default, bool, "true or false", at, section))


def _choice(
    t: dict[str, Any], key: str, default: str, choices: tuple[str, ...], at: _Locator, section: str
) -> str:
    value = _str(t, key, default, at, section)
    if value not in choices:
        raise ConfigError(
            f"{section}.{key} must be one of {', '.join(choices)}; got {value!r}", at(key, section)
        )
    return value


def _list(t: dict[str, Any], key: str, default: list[str], at: _Locator, section: str) -> list[str]:
    value = _get(t, key, default, list, "a list", at, section)
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}.{key} must be a list of strings", at(key, section))
    return list(value)


def _each(
    t: dict[str, Any], key: str, default: list[str], convert: Any, at: _Locator, section: str
) -> list[str]:
    try:
        return [convert(v) for v in _list(t, key, default, at, section)]
    except InputError as e:
        raise ConfigError(f"{section}.{key}: {e}", at(key, section)) from None


__all__ = ["Config", "ConfigError", "ConfigErrors", "load_config", "load_inventory"]
