"""Which files make up one phone's settings, in which order, and which template renders each.

A phone's entry document is a reference file listing, in the order the phone applies them
(later settings override earlier ones):

    common.xml          ← templates/common.xml.j2            every phone
    model.xml           ← templates/models/<TYPE>.xml.j2     (or models/default.xml.j2)
    <profile files...>  ← templates/profiles/<name>.j2       the profile's `templates`, in order
    device.xml          ← templates/device.xml.j2            the SIP account of this phone

Template variables: the profile's vars, overridden by the device's vars, overridden by the
facts (mac, type, serial, profile, server_url, appliance): a fact is never shadowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .inventory import Device, Profile
from .layout import check_file_name

COMMON = "common.xml"
MODEL = "model.xml"
DEVICE = "device.xml"
RESERVED = (COMMON, MODEL, DEVICE)
TEMPLATE_SUFFIX = ".j2"
FACTS = ("mac", "type", "serial", "profile", "server_url", "appliance")


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
    device: Device, profile: Profile, server_url: str, appliance: str
) -> dict[str, Any]:
    """The variables a device's templates see: profile < device < facts.

    >>> dev = Device("00095200000E", "D200", "p", vars={"a": 2, "mac": "x"})
    >>> prof = Profile("p", (), {"a": 1, "b": 1})
    >>> v = template_vars(dev, prof, "http://10.0.0.1:8080", "10.0.0.1")
    >>> (v["a"], v["b"], v["mac"], v["type"])
    (2, 1, '00095200000E', 'D200')
    """
    facts: Mapping[str, Any] = {
        "mac": device.mac,
        "type": device.type,
        "serial": device.serial,
        "profile": profile.name,
        "server_url": server_url,
        "appliance": appliance,
    }
    return {**profile.vars, **device.vars, **facts}
