"""The one configuration schema: every key of phoneprov.toml with its type, default and check.

`check`, `apply`, `serve`, `pnp`, `doctor` and the dnsmasq hook (through what `apply` writes for
it) read the configuration through this table only, so `phoneprov check` accepts exactly what
every command accepts. A check takes the TOML value (type already checked) and returns the
value to use, or raises ValueError with a message for the admin. Defaults live here and only
here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import dnsmasq_conf
from ..core.inventory import DEFAULT_MODELS, NAME
from ..core.layout import FILE_NAME, STYLES
from ..core.mac import norm_oui
from ..core.sipmsg import parse_event

DHCP_MODES = dnsmasq_conf.MODES
HTTP_MODES = ("router", "socket")
SECURITY_MODES = ("lease", "token", "open")
PNP_POLICIES = ("known", "vendor")
DEFAULT_CHECK_SYNC = "check-sync;reboot=false"
MODEL_NAME = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,15}$")
IFNAMSIZ = 16
SECONDS = "a number of seconds"
VERSION = re.compile(r"[0-9]{1,4}(\.[0-9]{1,4}){2}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
GIT_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}")

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Key:
    """One key: accepted TOML types, default, a one-line help, optional check."""

    types: tuple[type, ...]
    default: Any
    help: str
    check: Check | None = None
    what: str = ""  # what the key takes, when its type alone does not say it

    @property
    def kind(self) -> str:
        """What the key takes, in words (for error messages)."""
        if self.what:
            return self.what
        if self.types == (bool,):
            return "true or false"
        if self.types == (int,):
            return "a whole number"
        if float in self.types:
            return "a number"
        if self.types == (list,):
            return "a list of strings"
        if self.types == (dict,):
            return "a table"
        return "text"


# value checks -------------------------------------------------------------------------


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    return check


def _within(low: float, high: float) -> Check:
    def check(value: float) -> float:
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}; got {value!r}")
        return value

    return check


def _seconds(value: float) -> float:
    if not 0 < value <= 3600:
        raise ValueError(f"must be seconds in (0, 3600]; got {value!r}")
    return float(value)


def _each(check: Callable[[str], str]) -> Check:
    def each(values: list[str]) -> tuple[str, ...]:
        return tuple(check(v) for v in values)

    return each


def server_url(value: str) -> str:
    return value if value == "auto" else dnsmasq_conf.check_server_url(value)


def ntp_server(value: str) -> str:
    return value if value == "auto" else dnsmasq_conf.check_ipv4(value)


def interface(value: str) -> str:
    """A Linux interface name (what the SIOCGIFADDR lookup and dnsmasq accept)."""
    if not value or len(value.encode()) >= IFNAMSIZ or re.search(r"[/\s:]", value):
        raise ValueError(f"not an interface name: {value!r}")
    return value


def optional_interface(value: str) -> str:
    return value and interface(value)


def listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port like 0.0.0.0:8080; got {value!r}")
    return value


def _matching(pattern: re.Pattern[str], what: str) -> Check:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}; got {value!r}")
        return value

    return check


query_path = _matching(FILE_NAME, "one file name like prov.py")
settings_version = _matching(VERSION, "a settings version like 1.34.0")


def profile_name(value: str) -> str:
    if not NAME.match(value):
        raise ValueError(f"must be a profile name (letters, digits, '_', '.', '-'): {value!r}")
    return value


def model_name(value: str) -> str:
    model = value.upper()
    if not MODEL_NAME.match(model):
        raise ValueError(f"not a model name like D200: {value!r}")
    return model


def check_sync_event(value: str) -> str:
    parse_event(value)  # InputError is a ValueError
    return value


def dnsmasq_path(value: str) -> str:
    """A directory the dnsmasq snippet names: one dnsmasq line must hold it as it is."""
    return dnsmasq_conf.check_path(path(value))


def git_branch(value: str) -> str:
    """A branch name as `git check-ref-format --branch` would take it (the common subset)."""
    if not GIT_BRANCH.fullmatch(value) or ".." in value or value.endswith((".lock", "/", ".")):
        raise ValueError(f"must be a branch name like main; got {value!r}")
    return value


def repo_path(value: str) -> str:
    """A directory inside the repository, relative, without `..` ("": the repository's root)."""
    parts = value.strip("/").split("/") if value.strip("/") else []
    if value.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"must be a directory inside the repository like site-a; got {value!r}")
    return "/".join(parts)


def path(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def optional_path(value: str) -> str:
    return value  # empty: not used


def user_name(value: str) -> str:
    """A system user name (what `useradd` accepts), or empty."""
    if value and not USER.fullmatch(value):
        raise ValueError(f"must be a user name like phoneprov; got {value!r}")
    return value


def per_model(check: Callable[[str], str], example: str) -> Check:
    """A table `MODEL = "value"`: model names checked, each value by `check`."""

    def table(value: dict[str, Any]) -> dict[str, str]:
        out = {}
        for model, text in value.items():
            if not isinstance(text, str):
                raise ValueError(f'{model}: must be text like "{example}", not {text!r}')
            out[model_name(model)] = check(text)
        return out

    return table


def _text(default: str, help: str, check: Check | None = None) -> Key:
    return Key((str,), default, help, check)


def _texts(default: list[str], help: str, each: Callable[[str], str] | None = None) -> Key:
    return Key((list,), default, help, _each(each) if each else tuple)


SCHEMA: dict[str, dict[str, Key]] = {
    "server": {
        "url": _text(
            "auto", "base URL in option 66, or auto: http://<interface IPv4>:<port>", server_url
        ),
        "interface": _text("eth0", "the LAN interface dnsmasq serves phones on", interface),
        "listen": _text("0.0.0.0:8080", "where `phoneprov serve` listens (host:port)", listen),
        "url_style": _text("query", "entry URL style: query or path", _one_of(STYLES)),
        "query_path": _text("prov.py", "script name of the query style", query_path),
        "user": _text("", "user serve runs as once its port is bound (empty: stay)", user_name),
        "http": _text(
            "router",
            "router: uWSGI's HTTP router, a master and the worker; socket: one process, the "
            "worker speaks HTTP itself (lean: small routers, OpenWrt's uwsgi; no TLS)",
            _one_of(HTTP_MODES),
        ),
        "cache_mb": Key(
            (int,), 16, "rendered files serve keeps in memory (MB; 0: none)", _within(0, 1024)
        ),
        "validate": Key(
            (bool,),
            False,
            "serve also checks each file it renders against the phone's schema and logs one "
            "that does not fit (loads lxml: ~6 MB more; `check` always does)",
        ),
    },
    "dhcp": {
        "mode": _text("66+67", "66+67, 43, both or vendor", _one_of(DHCP_MODES)),
        "ntp": _texts(["auto"], "option 42: IPv4 addresses or auto", ntp_server),
        "force": Key((bool,), False, "send the mode's options (42/43/66/67) even unasked"),
        "vendor_ouis": _texts(["00:09:52"], "MAC prefixes of our phones", norm_oui),
        "vendor_classes": _texts(
            [], "vendor classes of our phones", dnsmasq_conf.check_vendor_class
        ),
        "auto_enrol": Key((bool,), False, "add recognised unknown phones at their first lease"),
        "default_profile": _text("default", "profile of auto-enrolled phones", profile_name),
        "default_type": _text("D200", "model of auto-enrolled phones", model_name),
        "hostsdir": _text("/var/lib/phoneprov/dnsmasq/hosts", "--dhcp-hostsdir", dnsmasq_path),
        "optsdir": _text("/var/lib/phoneprov/dnsmasq/opts", "--dhcp-optsdir", dnsmasq_path),
        "dnsmasq_pidfile": _text("/run/dnsmasq/dnsmasq.pid", "dnsmasq's pid file", path),
        "leasefile": _text(
            "/var/lib/misc/dnsmasq.leases",
            "dnsmasq's --dhcp-leasefile (empty: none)",
            optional_path,
        ),
    },
    "security": {
        "mode": _text("lease", "lease, token or open", _one_of(SECURITY_MODES)),
        "trusted_proxies": Key((int,), 0, "reverse proxies before serve", _within(0, 16)),
        "refused_per_minute": Key((int,), 30, "refusals per IP before 429", _within(0, 1_000_000)),
        "secret_file": _text("/var/lib/phoneprov/secret", "the appliance secret", path),
    },
    "sip": {
        "interface": _text("", "PnP interface (empty: server.interface)", optional_interface),
        "pnp": Key((bool,), False, "serve runs the PnP responder too"),
        "pnp_policy": _text("known", "known or vendor", _one_of(PNP_POLICIES)),
        "t1": Key((int, float), 0.5, "SIP timer T1", _seconds, SECONDS),
        "timer_f": Key((int, float), None, "SIP timer F (default 64 x t1)", _seconds, SECONDS),
        "check_sync_event": _text(DEFAULT_CHECK_SYNC, "Event of check-sync", check_sync_event),
        "check_sync_events": Key(
            (dict,), {}, "Event per model", per_model(check_sync_event, "check-sync")
        ),
        "check_sync_url": Key((bool,), True, "check-sync NOTIFYs carry the URL to fetch"),
        "pnp_source_pending": Key(
            (int,), 4, "PnP SUBSCRIBEs of one address answered at once", _within(1, 100_000)
        ),
        "pnp_source_per_minute": Key(
            (int,), 30, "new PnP SUBSCRIBEs per address a minute", _within(1, 1_000_000)
        ),
        "enrol_per_minute": Key((int,), 10, "PnP enrolments a minute", _within(1, 100_000)),
        "enrol_max": Key((int,), 200, "PnP enrols no more once this many", _within(0, 1_000_000)),
    },
    "phone": {
        "settings_version": _text("1.34.0", "section version attribute", settings_version),
        "settings_versions": Key(
            (dict,), {}, "section version per model", per_model(settings_version, "1.34.0")
        ),
    },
    "paths": {
        "inventory": _text("inventory.toml", "the inventory (TOML or CSV)", path),
        "templates": _text("templates", "the templates directory", path),
        "state": _text("/var/lib/phoneprov/state.db", "the state database", path),
    },
    "models": {
        "known": _texts(list(DEFAULT_MODELS), "the models the inventory may name", model_name),
    },
    "admin": {
        "listen": _text("127.0.0.1:8090", "where `phoneprov admin` listens (host:port)", listen),
        "idle_exit": Key(
            (int, float),
            600,
            "socket-activated admin service exits after this many idle seconds (0: never)",
            _within(0, 86400),
            SECONDS,
        ),
        "users_file": _text("admin-users", "admin users and API tokens (mode 0600)", path),
    },
    "sync": {
        "repo": _text("", "Git repository of the site configuration: URL or path (empty: off)"),
        "branch": _text("main", "the branch `phoneprov sync` follows", git_branch),
        "path": _text(
            "", "the site's directory inside the repository (empty: its root)", repo_path
        ),
        "allowed_signers": _text(
            "",
            "SSH allowed-signers file: every synced commit must be signed by one of its keys "
            "(empty: no signature required)",
            optional_path,
        ),
        "dir": _text("/var/lib/phoneprov/sync", "sync's clone, checkouts and status", path),
    },
    "retention": {
        "days": Key(
            (int,), 30, "keep fetches and discovered phones this many days", _within(1, 3650)
        ),
        "rows": Key((int,), 10_000, "and at most this many rows each", _within(100, 10_000_000)),
    },
}
