"""The inventory's settings vocabulary: SIP lines, function keys, the provisioning and firmware
schedules and the admin password hash, checked by the rules the vendor documents (DSERIES §3);
`layering.vocabulary_vars` hands them to the templates as plain data.

A profile and a device each carry `Settings`; `own.over(profile)` is what the device gets:
lines by position and keys by (module, number), a device entry replacing the profile's entry
whole (the way the phone merges identities and keys, §2.1); provisioning and firmware key by
key. Parsing appends `ConfigError`s (placed by `place("lines[0].port")` → `file:line`) instead
of raising, so one pass names every problem.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from .errors import ConfigError, InputError
from .passwords import looks_like_hash

MAX_LINES = 6  # exactly 6 identities (§3.2)
DTMF_METHODS = ("rtpPayload", "inband", "sipInfo")
PORTS = (1, 65535)
REGISTER_INTERVALS = (5, 60)  # minutes
MODULES = {"phone": "phoneXtensions", "xt20": "extensionModule1"}  # module → element (§3.3)
PHONE_KEYS = {"D100": 18, "D110": 18, "D200": 18, "D210": 18, "D400": 40, "D410": 40, "D600": 40}
OTHER_MODEL_KEYS = 40  # a model not listed: the schema's phoneXtensions maximum
XT20_KEYS = 60
KEY_KINDS = ("speed_dial",)
REFUSED_KINDS = {
    "blf": "blf (busy lamp field) cannot be expressed with documented elements: the key's Lua "
    "would need sip.subscribe's callback arguments and the dialog-state format, which no "
    "vendor source documents, and the built-in BLF template's name is unknown (DSERIES §3.3, "
    "§3.4); use speed_dial, or a site template once a phone's backup shows the elements",
}
TARGET = re.compile(r"^[0-9A-Za-z*#+@.]{1,64}$")  # nothing that needs escaping in a Lua string
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_ELEMENTS: tuple[str, ...] = ("mondays", "tuesdays", "wednesdays", "thursdays", "fridays")
DAY_ELEMENTS += ("saturdays", "sundays")
TIME = re.compile(r"^(2[0-3]|[0-1]?[0-9]):[0-5][0-9]$")  # the phone's own regex (§3.1)
HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]+$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LINE_FIELDS: tuple[str, ...] = ("username", "password", "display_name", "registrar", "port")
LINE_FIELDS += ("domain", "dtmf", "register_interval")
KEY_FIELDS = ("number", "label", "kind", "target", "module")
SCHEDULE_FIELDS = ("days", "time", "random_delay", "random_delay_min", "random_delay_max")
PROVISIONING_FIELDS = ("dhcp", "redirect", "pnp", *SCHEDULE_FIELDS)
FIRMWARE_FIELDS = ("check", "auto_install", "url", *SCHEDULE_FIELDS)
SETTINGS_KEYS = ("lines", "keys", "provisioning", "firmware", "admin_password_hash")
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "days": DAYS,
    "time": "",  # not sent: the phone picks its own time (§3.1)
    "random_delay": False,
    "random_delay_min": 60,
    "random_delay_max": 3600,
}
PROVISIONING_DEFAULTS: dict[str, Any] = {"dhcp": True, "redirect": False, "pnp": False}
FIRMWARE_DEFAULTS: dict[str, Any] = {"check": True, "auto_install": False, "url": ""}

Place = Callable[[str], str]  # "lines[0].port" → "inventory.toml:31"
_T = TypeVar("_T", bound="_Schedule")


@dataclass(frozen=True, slots=True)
class Line:
    """One SIP identity; its position in `Settings.lines` is the identity number."""

    username: str
    registrar: str
    password: str = field(default="", repr=False)
    display_name: str = ""
    port: int = 5060
    domain: str = ""
    dtmf: str = "rtpPayload"
    register_interval: int = 30  # minutes
    where: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Key:
    """One function key: `number` is its keyNumber on `module` ("phone" or "xt20")."""

    number: int
    target: str
    label: str = ""
    kind: str = "speed_dial"
    module: str = "phone"
    where: str = field(default="", compare=False)

    @property
    def element(self) -> str:
        return MODULES[self.module]


@dataclass(frozen=True, slots=True)
class _Schedule:
    """The `<execution>` part; None = not given at this level."""

    days: tuple[str, ...] | None = None
    time: str | None = None
    random_delay: bool | None = None
    random_delay_min: int | None = None
    random_delay_max: int | None = None


@dataclass(frozen=True, slots=True)
class Provisioning(_Schedule):
    dhcp: bool | None = None
    redirect: bool | None = None
    pnp: bool | None = None  # the phone's <pbx>: SIP multicast discovery


@dataclass(frozen=True, slots=True)
class Firmware(_Schedule):
    check: bool | None = None
    auto_install: bool | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    lines: tuple[Line, ...] = ()
    keys: tuple[Key, ...] = ()  # sorted by (module, number)
    provisioning: Provisioning = field(default_factory=Provisioning)
    firmware: Firmware | None = None  # None: no <update> section
    admin_password_hash: str = field(default="", repr=False)

    def over(self, base: Settings) -> Settings:
        """These settings on top of `base` (a device's over its profile's).

        >>> a, b = Line("201", "pbx"), Line("299", "pbx")
        >>> mine = Settings((a,), provisioning=Provisioning(time="03:30"))
        >>> got = mine.over(Settings((Line("1", "x"), b), provisioning=Provisioning(pnp=True)))
        >>> [x.username for x in got.lines], got.provisioning.time, got.provisioning.pnp
        (['201', '299'], '03:30', True)
        """
        lines = list(self.lines) + list(base.lines[len(self.lines) :])
        keys = {(k.module, k.number): k for k in base.keys}
        keys.update({(k.module, k.number): k for k in self.keys})
        firmware = self.firmware or base.firmware
        if self.firmware is not None and base.firmware is not None:
            firmware = _over(self.firmware, base.firmware)
        return Settings(
            tuple(lines),
            tuple(keys[k] for k in sorted(keys)),
            _over(self.provisioning, base.provisioning),
            firmware,
            self.admin_password_hash or base.admin_password_hash,
        )


NONE = Settings()  # a device (or profile) that sets nothing of the vocabulary
_SETTINGS_KEYS = frozenset(SETTINGS_KEYS)


def _over(top: _T, base: _T) -> _T:
    given = {f.name: getattr(top, f.name) for f in fields(top)}
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def speed_dial_lua(target: str) -> str:
    """The key's Lua (the vendor-documented form, §3.3); `target` must match TARGET.

    >>> speed_dial_lua("*21#")
    'function onKeyUp() sip.invite("*21#") end'
    """
    if not TARGET.match(target):
        raise InputError(f"unsafe speed-dial target {target!r}")
    return f'function onKeyUp() sip.invite("{target}") end'


def key_limit(model: str, module: str) -> int:
    """The highest key number of a module on a model (§3.3).

    >>> key_limit("D200", "phone"), key_limit("D410", "phone"), key_limit("D100", "xt20")
    (18, 40, 60)
    """
    return XT20_KEYS if module == "xt20" else PHONE_KEYS.get(model, OTHER_MODEL_KEYS)


class _Table:
    """One table of the vocabulary being read: typed getters that record problems."""

    def __init__(
        self, value: Any, path: str, label: str, place: Place, errors: list[ConfigError]
    ) -> None:
        self.path, self.label, self.place, self.errors = path, label, place, errors
        self.data: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        self.ok = isinstance(value, Mapping)
        if not self.ok:
            self.fail("", "must be a table of name = value")

    def fail(self, name: str, message: str) -> None:
        at = self.place(f"{self.path}.{name}" if name else self.path)
        subject = f"{self.label}: {name}" if name else self.label
        self.errors.append(ConfigError(f"{subject} {message}", at))

    def known(self, names: Sequence[str]) -> None:
        for name in self.data:
            if name not in names:
                close = difflib.get_close_matches(str(name), names, n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(names)}"
                self.fail("", f"has an unknown key {name!r}; {hint}")

    def text(self, name: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, not {type(value).__name__}")
        elif CONTROL.search(value):
            self.fail(name, "must not contain control characters (newline, tab...)")
        elif pattern is not None and not pattern.match(value):
            self.fail(name, f"{value!r} {hint}")
        else:
            return value
        return None

    def number(self, name: str, low: int = 0, high: int | None = None) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if type(value) is not int:
            self.fail(name, f"must be an integer, not {value!r}")
        elif value < low or (high is not None and value > high):
            self.fail(name, f"{value} is out of range {low}..{'' if high is None else high}")
        else:
            return value
        return None

    def flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, bool):
            self.fail(name, f"must be true or false, not {value!r}")
            return None
        return value

    def choice(self, name: str, choices: Sequence[str]) -> str | None:
        value = self.data.get(name)
        if value is not None and value not in choices:
            self.fail(name, f"{value!r} is not one of {' | '.join(choices)}")
            return None
        return value if isinstance(value, str) else None


def _line(table: _Table) -> Line | None:
    if not table.ok:
        return None
    table.known(LINE_FIELDS)
    host_hint = "must be a host name or address (the port goes in port)"
    username = table.text("username", re.compile(r"^[^\s@:;<>\"]+$"), "is not a SIP user name")
    registrar = table.text("registrar", HOST, host_hint)
    for name in ("username", "registrar"):
        if name not in table.data:
            table.fail("", f"needs a {name}")
    values: dict[str, Any] = {
        "password": table.text("password"),
        "display_name": table.text("display_name"),
        "port": table.number("port", *PORTS),
        "domain": table.text("domain", re.compile(r"^$|" + HOST.pattern), host_hint),
        "dtmf": table.choice("dtmf", DTMF_METHODS),
        "register_interval": table.number("register_interval", *REGISTER_INTERVALS),
    }
    if username is None or registrar is None:
        return None
    values = {k: v for k, v in values.items() if v is not None}
    return Line(username, registrar, where=table.place(table.path), **values)


def _key(table: _Table) -> Key | None:
    if not table.ok:
        return None
    table.known(KEY_FIELDS)
    kind = table.data.get("kind", "speed_dial")
    if not isinstance(kind, str):
        table.fail("kind", f"must be a string, not {kind!r}")
        return None
    if kind in REFUSED_KINDS:
        table.fail("kind", f"is refused: {REFUSED_KINDS[kind]}")
        return None
    if kind not in KEY_KINDS:
        table.fail("kind", f"{kind!r} is not one of {' | '.join(KEY_KINDS)}")
        return None
    number = table.number("number", 1)
    target = table.text("target", TARGET, "may hold only digits, letters, * # + @ . (64 at most)")
    label = table.text("label")
    module = table.choice("module", tuple(MODULES))
    for name in ("number", "target"):
        if name not in table.data:
            table.fail("", f"needs a {name}")
    if number is None or target is None or ("module" in table.data and module is None):
        return None
    where = table.place(table.path)
    return Key(number, target, label or target, kind, module or "phone", where)


def _schedule(table: _Table) -> dict[str, Any]:
    days = table.data.get("days")
    if days is not None and (not isinstance(days, list) or not all(d in DAYS for d in days)):
        table.fail("days", f"must be a list of {', '.join(DAYS)}")
        days = None
    out: dict[str, Any] = {
        "days": None if days is None else tuple(d for d in DAYS if d in days),
        "time": table.text("time", TIME, "is not a time HH:MM (00:00..23:59)"),
        "random_delay": table.flag("random_delay"),
        "random_delay_min": table.number("random_delay_min"),
        "random_delay_max": table.number("random_delay_max"),
    }
    low, high = out["random_delay_min"], out["random_delay_max"]
    if low is not None and high is not None and low > high:
        table.fail("random_delay_min", f"{low} is above random_delay_max {high}")
        out["random_delay_min"] = out["random_delay_max"] = None  # reported once, here
    return out


def _items(value: Any, path: str, place: Place, errors: list[ConfigError]) -> list[Any]:
    if isinstance(value, list):
        return value
    errors.append(ConfigError(f"{path} must be a list of tables ([[...{path}]])", place(path)))
    return []


def parse_settings(data: Mapping[str, Any], place: Place, errors: list[ConfigError]) -> Settings:
    """The vocabulary keys of one profile or device record (others are ignored here)."""
    if _SETTINGS_KEYS.isdisjoint(data):
        return NONE  # most devices set none: what the code below would build
    lines_raw = _items(data.get("lines", []), "lines", place, errors)
    if len(lines_raw) > MAX_LINES:
        errors.append(
            ConfigError(
                f"{len(lines_raw)} lines given; the phone has {MAX_LINES} SIP identities "
                "(DSERIES §3.2)",
                place(f"lines[{MAX_LINES}]"),
            )
        )
    lines = [
        _line(_Table(value, f"lines[{i}]", f"line {i + 1}", place, errors))
        for i, value in enumerate(lines_raw[:MAX_LINES])
    ]
    keys: dict[tuple[str, int], Key] = {}
    for i, value in enumerate(_items(data.get("keys", []), "keys", place, errors)):
        table = _Table(value, f"keys[{i}]", f"key #{i + 1}", place, errors)
        key = _key(table)
        if key is None:
            continue
        first = keys.setdefault((key.module, key.number), key)
        if first is not key:
            table.fail(
                "number", f"{key.number} is given twice on {key.module} (also {first.where})"
            )
    return Settings(
        tuple(x for x in lines if x is not None),
        tuple(keys[k] for k in sorted(keys)),
        _part(data, "provisioning", place, errors) or Provisioning(),
        _part(data, "firmware", place, errors),
        _admin(data, place, errors),
    )


def _part(data: Mapping[str, Any], name: str, place: Place, errors: list[ConfigError]) -> Any:
    """The [provisioning] or [firmware] table (None when not given)."""
    if name not in data:
        return None
    table = _Table(data[name], name, name, place, errors)
    table.known(PROVISIONING_FIELDS if name == "provisioning" else FIRMWARE_FIELDS)
    flags = ("dhcp", "redirect", "pnp") if name == "provisioning" else ("check", "auto_install")
    values = _schedule(table) | {flag: table.flag(flag) for flag in flags}
    if name == "provisioning":
        return Provisioning(**values)
    url = table.text("url", re.compile(r"^https?://\S+$"), "is not an http(s) URL")
    return Firmware(**values, url=url)


def _admin(data: Mapping[str, Any], place: Place, errors: list[ConfigError]) -> str:
    value = data.get("admin_password_hash")
    if value is None:
        return ""
    where = place("admin_password_hash")
    if not isinstance(value, str) or CONTROL.search(value):
        errors.append(ConfigError("admin_password_hash must be a one-line string", where))
    elif not looks_like_hash(value):
        errors.append(
            ConfigError(
                "admin_password_hash looks like a plain-text password, refused: the phone takes "
                "only a hash (make one at https://<phone-ip>/#/generateHash, DSERIES §3.5)",
                where,
            )
        )
    else:
        return value.strip()
    return ""


def device_settings(
    own: Settings, profile: Settings, model: str, where: str, errors: list[ConfigError]
) -> Settings:
    """A device's effective settings: its own over its profile's, checked for its model."""
    merged = profile if own == NONE else own.over(profile)  # most devices: the profile's
    for key in merged.keys:
        limit = key_limit(model, key.module)
        if key.number > limit:
            errors.append(
                ConfigError(
                    f"key {key.number} on {key.module} is out of range 1..{limit} for a "
                    f"{model}" + ("" if key.where == where else f" (device at {where})"),
                    key.where or where,
                )
            )
    for name, part in (("provisioning", merged.provisioning), ("firmware", merged.firmware)):
        problem = _delay_problem(part or Provisioning())
        if problem:
            errors.append(ConfigError(f"{name}: {problem} (profile and device together)", where))
    return merged


@functools.lru_cache(maxsize=256)  # the same few schedules for thousands of devices
def _delay_problem(part: _Schedule) -> str:
    execution = execution_data(part)
    low, high = execution["random_delay_min"], execution["random_delay_max"]
    return f"random_delay_min {low} is above random_delay_max {high}" if low > high else ""


def execution_data(part: _Schedule) -> dict[str, Any]:
    """The `<execution>` values, defaults filled in; days as {element: bool}."""
    values = {k: getattr(part, k) for k in SCHEDULE_FIELDS}
    out = {k: SCHEDULE_DEFAULTS[k] if v is None else v for k, v in values.items()}
    out["days"] = {e: d in out["days"] for d, e in zip(DAYS, DAY_ELEMENTS, strict=True)}
    return out
