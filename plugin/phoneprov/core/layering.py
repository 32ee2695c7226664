"""Which files make up one phone's settings, in which order, and which template renders each.

A phone's entry document is a reference file listing, in the order the phone applies them
(later settings override earlier ones):

    common.xml          ← templates/common.xml.j2            every phone
    model.xml           ← templates/models/<TYPE>.xml.j2     (or models/default.xml.j2)
    <profile files...>  ← templates/profiles/<name>.j2       the profile's `templates`, in order
    device.xml          ← templates/device.xml.j2            this phone's lines, keys, users

Template variables: the profile's vars, overridden by the device's vars, overridden by the
facts (mac, type, serial, profile, server_url, appliance, settings_version and the settings
vocabulary: lines, keys, provisioning, firmware, admin_password_hash): a fact is never
shadowed. The vocabulary comes as plain data (lists of dicts, defaults filled in) for the
templates to loop over; see `vocabulary_vars`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .inventory import Device, Profile
from .layout import check_file_name
from .vocabulary import (
    FIRMWARE_DEFAULTS,
    KEY_FIELDS,
    LINE_FIELDS,
    PROVISIONING_DEFAULTS,
    Firmware,
    Provisioning,
    Settings,
    execution_data,
    speed_dial_lua,
)

COMMON = "common.xml"
MODEL = "model.xml"
DEVICE = "device.xml"
RESERVED = (COMMON, MODEL, DEVICE)
TEMPLATE_SUFFIX = ".j2"
VOCABULARY = ("lines", "keys", "provisioning", "firmware", "admin_password_hash")
FACTS: tuple[str, ...] = ("mac", "type", "serial", "profile", "server_url", "appliance")
FACTS += ("settings_version", *VOCABULARY)


def served_files(profile: Profile) -> tuple[str, ...]:
    """The file names listed in a device's reference file, in the order they apply.

    >>> served_files(Profile("p", ("office.xml",)))
    ('common.xml', 'model.xml', 'office.xml', 'device.xml')
    """
    for name in profile.templates:
        try:
            check_file_name(name)
        except ValueError as e:
            raise ConfigError(f"profile {profile.name!r}: {e}", profile.where) from None
        if name in RESERVED:
            raise ConfigError(
                f"profile {profile.name!r}: {name!r} is reserved for the built-in layers",
                profile.where,
            )
    return (COMMON, MODEL, *dict.fromkeys(profile.templates), DEVICE)


def template_candidates(device_type: str, name: str) -> tuple[str, ...]:
    """Template names for one served file, first existing one wins (relative, '/'-separated).

    >>> template_candidates("D200", "model.xml")
    ('models/D200.xml.j2', 'models/default.xml.j2')
    >>> template_candidates("D200", "office.xml")
    ('profiles/office.xml.j2',)
    """
    if name == MODEL:
        return (
            f"models/{device_type}.xml{TEMPLATE_SUFFIX}",
            f"models/default.xml{TEMPLATE_SUFFIX}",
        )
    if name in (COMMON, DEVICE):
        return (name + TEMPLATE_SUFFIX,)
    return (f"profiles/{check_file_name(name)}{TEMPLATE_SUFFIX}",)


def template_vars(
    device: Device, profile: Profile, server_url: str, appliance: str, settings_version: str
) -> dict[str, Any]:
    """The variables a device's templates see: profile < device < facts.

    >>> dev = Device("00095200000E", "D200", "p", vars={"a": 2, "mac": "x"})
    >>> prof = Profile("p", (), {"a": 1, "b": 1})
    >>> v = template_vars(dev, prof, "http://10.0.0.1:8080", "10.0.0.1", "1.34.0")
    >>> (v["a"], v["b"], v["mac"], v["type"], v["settings_version"], v["lines"])
    (2, 1, '00095200000E', 'D200', '1.34.0', [])
    """
    facts: Mapping[str, Any] = {
        "mac": device.mac,
        "type": device.type,
        "serial": device.serial,
        "profile": profile.name,
        "server_url": server_url,
        "appliance": appliance,
        "settings_version": settings_version,
        **vocabulary_vars(device.settings),
    }
    return {**profile.vars, **device.vars, **facts}


def vocabulary_vars(settings: Settings) -> dict[str, Any]:
    """A device's (effective) settings as template data, defaults filled in:

    - lines: [{index, username, password, display_name, registrar, port, domain, dtmf,
      register_interval}] in identity order;
    - keys: [{number, label, kind, target, module, element, lua}] by module, then number
      (`element`: phoneXtensions | extensionModule1; `lua`: the key's code);
    - provisioning: {dhcp, redirect, pnp, execution}; firmware: None or {check, auto_install,
      url, execution}; execution: {days: {mondays: bool...}, time ("" = not sent),
      random_delay, random_delay_min, random_delay_max};
    - admin_password_hash: "" or the hash.

    >>> from .vocabulary import Key
    >>> data = vocabulary_vars(Settings(keys=(Key(3, "200", "Desk"),)))
    >>> data["keys"][0]["element"], data["keys"][0]["lua"], data["firmware"]
    ('phoneXtensions', 'function onKeyUp() sip.invite("200") end', None)
    >>> data["provisioning"]["pnp"], data["provisioning"]["execution"]["days"]["sundays"]
    (False, True)
    """
    lines = [
        {name: getattr(line, name) for name in LINE_FIELDS} | {"index": i}
        for i, line in enumerate(settings.lines, 1)
    ]
    keys = [
        {name: getattr(key, name) for name in KEY_FIELDS}
        | {"element": key.element, "lua": speed_dial_lua(key.target)}
        for key in settings.keys
    ]
    firmware = settings.firmware
    return {
        "lines": lines,
        "keys": keys,
        "provisioning": _filled(settings.provisioning, PROVISIONING_DEFAULTS),
        "firmware": None if firmware is None else _filled(firmware, FIRMWARE_DEFAULTS),
        "admin_password_hash": settings.admin_password_hash,
    }


def _filled(given: Provisioning | Firmware, defaults: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v if getattr(given, k) is None else getattr(given, k) for k, v in defaults.items()}
    return out | {"execution": execution_data(given)}
