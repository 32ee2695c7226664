"""`load_config`: phoneprov.toml checked against `schema.SCHEMA`, every problem at once.

Unknown sections and keys are refused with the closest known name; wrong types, control
characters in any text, values a command would refuse later, and contradicting settings
are each reported with `file:line`. Relative paths are relative to the config file.

With `[sync] repo` set, the appliance's file holds only `[sync]` and the configuration in
effect is the site's phoneprov.toml in the live revision `phoneprov sync` switched to: one
revision's files throughout for a command, through the `live` symlink for a process that
keeps running (see `load_config`). Its appliance paths must be absolute and its inventory
and templates inside the revision's tree.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core import dnsmasq_conf
from ..core.errors import ConfigError, ConfigErrors
from ..core.layout import Layout
from .model import (
    AdminConfig,
    Config,
    DhcpConfig,
    PhoneConfig,
    Retention,
    SecurityConfig,
    ServerConfig,
    SipConfig,
    SyncConfig,
)
from .schema import CONTROL, SCHEMA, Key
from .tomlfile import Locator, read_toml

DEFAULT_CONFIG = "/etc/phoneprov/phoneprov.toml"
CONFIG_ENV = "PHONEPROV_CONFIG"
PLACEHOLDER_IP = "192.0.2.1"  # stands in for `auto` when checking combinations


def config_path(given: str | os.PathLike[str] | None) -> Path:
    return Path(given or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


NOT_SYNCED = "no revision synced yet: run `phoneprov sync`"
# a site config from Git: these are the appliance's own, and must not live in a revision
APPLIANCE_PATHS = (
    "paths.state",
    "security.secret_file",
    "dhcp.hostsdir",
    "dhcp.optsdir",
    "dhcp.dnsmasq_pidfile",
    "dhcp.leasefile",
)
TREE_PATHS = ("paths.inventory", "paths.templates")  # ...and these come from the revision


def load_config(path: str | os.PathLike[str] | None = None, *, follow_live: bool = False) -> Config:
    """The checked appliance config (not the inventory: see `load_inventory`); with `[sync]
    repo` set, the live revision's site config, its `sync` the appliance file's [sync].

    With [sync], `live` is read once by default: the config's path is
    `<dir>/revs/<sha>/<path>/phoneprov.toml` and its inventory and templates are that
    revision's, even when a sync switches meanwhile (a command sees one revision, never
    the settings of one and the inventory of the next). `follow_live=True` keeps the path
    through the `live` symlink instead, so that a process that keeps running (serve's
    worker, the admin page, `pnp`) reads the next revision's inventory and templates once a
    sync switches; its other settings stay those it started with.
    """
    sync = load_sync_settings(path)
    if not sync.enabled:
        return _load(config_path(path))
    return load_site_config(_site_config(sync, follow_live), sync)


def site_config_path(given: str | os.PathLike[str] | None = None) -> Path:
    """The phoneprov.toml the site's own files sit beside (its learned schema): the given
    file, or with [sync] repo set the live revision's site config."""
    path = config_path(given)
    if not path.is_file():
        return path
    sync = load_sync_settings(path)
    return sync.site_config if sync.enabled else path


def _site_config(sync: SyncConfig, follow_live: bool = False) -> Path:
    """The live revision's site config: through `live`, or in the tree it names now."""
    try:
        target = os.readlink(sync.live)
    except FileNotFoundError:
        raise ConfigError(NOT_SYNCED, str(sync.local)) from None
    except OSError:  # not a symlink (made by hand): nothing to resolve
        target = "live"
    return sync.site_config if follow_live else sync.site_config_in(sync.dir / target)


def load_site_config(path: Path, sync: SyncConfig) -> Config:
    """A site's phoneprov.toml as it comes from the repository: everything but [sync]."""
    return _load(path, sync)


def load_sync_settings(path: str | os.PathLike[str] | None = None) -> SyncConfig:
    """The appliance file's [sync] (off when absent); with `repo` set no other section may
    be there, each one found is an error naming its line."""
    path = config_path(path)
    text, data = read_toml(path)
    at = Locator(path, text)
    errors: list[ConfigError] = []
    values = _values({"sync": data.get("sync", {})}, at, errors)
    if not errors and values["sync.repo"]:
        for section in data.keys() - {"sync"}:
            message = (
                f"[{section}] does not belong here when [sync] repo is set: move it into the "
                "site's phoneprov.toml in the repository"
            )
            errors.append(ConfigError(message, at(section)))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return _sync(path, values)


def _load(path: Path, sync: SyncConfig | None = None) -> Config:
    """One phoneprov.toml, every problem at once; `sync`: it is a site config from Git."""
    text, data = read_toml(path)
    at = Locator(path, text)
    errors: list[ConfigError] = []
    if sync is not None and "sync" in data:
        message = (
            f"[sync] belongs in the appliance's own file ({sync.local}), not in the site "
            "config from the repository"
        )
        errors.append(ConfigError(message, at("sync")))
    values = _values(data, at, errors)
    if sync is not None:
        _confine(path, sync, values, at, errors)
    if not errors:
        _cross_check(values, at, errors)
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    config = _build(path, values)
    if sync is None:
        return config
    # the admin's users are this appliance's, not the repository's: a relative users_file
    # is beside the appliance's own file (in the live revision it would go at the next switch)
    users = sync.local.parent / values["admin.users_file"] if sync.local else None
    admin = replace(config.admin, users_file=users) if users else config.admin
    return replace(config, sync=sync, admin=admin)


def _confine(
    path: Path, sync: SyncConfig, v: dict[str, Any], at: Locator, errors: list[ConfigError]
) -> None:
    """A site config from Git: the appliance's paths absolute, the inventory and templates
    inside the revision's tree — lexically, and with its symlinks followed (a link to a
    directory, followed by `..`, climbs from where it leads), so nothing outside is read."""
    for name in APPLIANCE_PATHS:
        value = v.get(name)
        if value and not os.path.isabs(value):
            section, key = name.split(".")
            message = (
                f"{name} must be an absolute path on the appliance (a relative one would live "
                "in the revision and go at the next switch)"
            )
            errors.append(ConfigError(message, at(key, section)))
    tree = os.path.abspath(sync.tree_of(path))
    real_tree = os.path.realpath(tree)  # once: `live` may be switched meanwhile
    site = os.path.relpath(os.path.abspath(path.parent), tree)  # the site's dir in the tree
    for name in TREE_PATHS:
        value = v.get(name)
        if not value:
            continue
        lexical = os.path.abspath(os.path.join(path.parent, value))
        real = os.path.realpath(os.path.join(real_tree, site, value))
        if not _inside(lexical, tree):
            why = "leads out of it"
        elif not _inside(real, real_tree):
            why = f"leads out of it through a symlink (to {real})"
        else:
            continue
        section, key = name.split(".")
        message = f"{name} must lie inside the revision's tree (the repository): {value!r} {why}"
        errors.append(ConfigError(message, at(key, section)))


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _sync(path: Path, v: dict[str, Any]) -> SyncConfig:
    base = path.parent
    repo = v["sync.repo"]
    if repo and "://" not in repo and ":" not in repo.split("/")[0]:  # a local path
        repo = str(base / repo)
    signers = v["sync.allowed_signers"]
    return SyncConfig(
        repo=repo,
        branch=v["sync.branch"],
        path=v["sync.path"],
        allowed_signers=base / signers if signers else None,
        dir=base / v["sync.dir"],
        local=path,
    )


def _values(data: dict[str, Any], at: Locator, errors: list[ConfigError]) -> dict[str, Any]:
    """`section.key` → checked value (default where absent)."""
    for section in data.keys() - SCHEMA.keys():
        errors.append(ConfigError(f"unknown section [{section}]{_hint(section)}", at(section)))
    values: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            errors.append(ConfigError(f"{section} must be a [{section}] table", at(section)))
            table = {}
        for key in table.keys() - keys.keys():
            message = f"unknown key {section}.{key}{_hint(key, section)}"
            errors.append(ConfigError(message, at(key, section)))
        for key, spec in keys.items():
            name = f"{section}.{key}"
            try:
                value = table.get(key, spec.default)  # defaults pass the same checks
                values[name] = None if value is None else _value(spec, value)
            except ValueError as e:
                where = at(key, f"{section}.{key}") if spec.types == (dict,) else at(key, section)
                errors.append(ConfigError(f"{name} {e}", where))
    return values


def _value(spec: Key, value: Any) -> Any:
    if not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
        raise ValueError(f"must be {spec.kind}, not {value!r}")
    _no_control(value)
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be {spec.kind}, not {value!r}")
    return spec.check(value) if spec.check else value


def _no_control(value: Any) -> None:
    """No newline, NUL or other control character anywhere in a text, list or table."""
    if isinstance(value, dict):
        for k, v in value.items():
            _no_control(k)
            _no_control(v)
    elif isinstance(value, list):
        for v in value:
            _no_control(v)
    elif isinstance(value, str) and CONTROL.search(value):
        raise ValueError(f"must not contain control characters (newline, NUL...): {value!r}")


def _hint(name: str, section: str = "") -> str:
    """`; did you mean dhcp.hostsdir?` for a misspelt or misplaced name, else ``."""
    if not section:
        close = difflib.get_close_matches(name, list(SCHEMA), n=1)
        return f"; did you mean [{close[0]}]?" if close else f"; known: {', '.join(SCHEMA)}"
    close = difflib.get_close_matches(name, list(SCHEMA[section]), n=1)
    if close:
        return f"; did you mean {section}.{close[0]}?"
    elsewhere = [s for s, keys in SCHEMA.items() if name in keys]
    if elsewhere:
        return f"; it belongs in [{elsewhere[0]}]"
    return f"; known in [{section}]: {', '.join(SCHEMA[section])}"


def _cross_check(v: dict[str, Any], at: Locator, errors: list[ConfigError]) -> None:
    """Rules between keys, checked by the very code that applies them later."""
    models = v["models.known"]
    if v["dhcp.default_type"] not in models:
        message = f"dhcp.default_type {v['dhcp.default_type']!r} is not in models.known"
        errors.append(ConfigError(message, at("default_type", "dhcp")))
    for table in ("sip.check_sync_events", "phone.settings_versions"):
        for model in v[table]:
            if model not in models:
                message = f"{table}: model {model!r} is not in models.known"
                errors.append(ConfigError(message, at(model, table)))
    timer_f = v["sip.timer_f"]
    if timer_f is not None and timer_f < v["sip.t1"]:
        errors.append(
            ConfigError("sip.timer_f must not be shorter than sip.t1", at("timer_f", "sip"))
        )
    try:
        dhcp_settings(v)
    except ConfigError as e:
        errors.append(ConfigError(e.message, at("mode", "dhcp")))


def dhcp_settings(v: dict[str, Any]) -> dnsmasq_conf.DhcpSettings:
    """What `apply` computes options from, `auto` standing in as a placeholder address."""
    url = v["server.url"]
    port = v["server.listen"].rpartition(":")[2]
    if url == "auto":
        url = f"http://{PLACEHOLDER_IP}:{port}"
    settings = dnsmasq_conf.DhcpSettings(
        mode=v["dhcp.mode"],
        server_url=url,
        layout=Layout(v["server.url_style"], v["server.query_path"]),
        ntp=tuple(PLACEHOLDER_IP if n == "auto" else n for n in v["dhcp.ntp"]),
        force=v["dhcp.force"],
        vendor_ouis=v["dhcp.vendor_ouis"],
        vendor_classes=v["dhcp.vendor_classes"],
        tokens=v["security.mode"] == "token",
    )
    dnsmasq_conf.vendor_match_lines(settings)
    return settings


def _build(path: Path, v: dict[str, Any]) -> Config:
    base = path.parent

    def file(name: str) -> Path:
        return base / str(v[name])

    t1 = v["sip.t1"]
    return Config(
        path=path,
        server=ServerConfig(
            url=v["server.url"],
            interface=v["server.interface"],
            listen=v["server.listen"],
            layout=Layout(v["server.url_style"], v["server.query_path"]),
            user=v["server.user"],
            http=v["server.http"],
            cache_mb=v["server.cache_mb"],
            validate=v["server.validate"],
        ),
        dhcp=DhcpConfig(
            mode=v["dhcp.mode"],
            ntp=v["dhcp.ntp"],
            force=v["dhcp.force"],
            vendor_ouis=v["dhcp.vendor_ouis"],
            vendor_classes=v["dhcp.vendor_classes"],
            auto_enrol=v["dhcp.auto_enrol"],
            default_profile=v["dhcp.default_profile"],
            default_type=v["dhcp.default_type"],
            hostsdir=file("dhcp.hostsdir"),
            optsdir=file("dhcp.optsdir"),
            dnsmasq_pidfile=file("dhcp.dnsmasq_pidfile"),
            leasefile=file("dhcp.leasefile") if v["dhcp.leasefile"] else None,
        ),
        security=SecurityConfig(
            mode=v["security.mode"],
            trusted_proxies=v["security.trusted_proxies"],
            refused_per_minute=v["security.refused_per_minute"],
            secret_file=file("security.secret_file"),
        ),
        sip=SipConfig(
            interface=v["sip.interface"],
            pnp=v["sip.pnp"],
            pnp_policy=v["sip.pnp_policy"],
            t1=t1,
            timer_f=v["sip.timer_f"] if v["sip.timer_f"] is not None else 64 * t1,
            check_sync_event=v["sip.check_sync_event"],
            check_sync_events=v["sip.check_sync_events"],
            check_sync_url=v["sip.check_sync_url"],
            pnp_source_pending=v["sip.pnp_source_pending"],
            pnp_source_per_minute=v["sip.pnp_source_per_minute"],
            enrol_per_minute=v["sip.enrol_per_minute"],
            enrol_max=v["sip.enrol_max"],
        ),
        phone=PhoneConfig(
            settings_version=v["phone.settings_version"],
            settings_versions=v["phone.settings_versions"],
        ),
        retention=Retention(days=v["retention.days"], rows=v["retention.rows"]),
        inventory_path=file("paths.inventory"),
        templates=file("paths.templates"),
        state=file("paths.state"),
        models=v["models.known"],
        admin=AdminConfig(
            listen=v["admin.listen"],
            idle_exit=float(v["admin.idle_exit"]),
            users_file=file("admin.users_file"),
        ),
        sync=_sync(path, v),
    )
