"""core.layering: the files of a phone, their order, their templates, their variables."""

from __future__ import annotations

import pytest

from phoneprov.core.errors import ConfigError
from phoneprov.core.inventory import Device, Profile
from phoneprov.core.layering import served_files, template_candidates, template_vars


def test_order_is_common_model_profile_device() -> None:
    profile = Profile("r", ("office.xml", "reception.xml"))
    assert served_files(profile) == (
        "common.xml",
        "model.xml",
        "office.xml",
        "reception.xml",
        "device.xml",
    )


def test_a_profile_file_listed_twice_is_served_once() -> None:
    assert served_files(Profile("p", ("a.xml", "a.xml"))).count("a.xml") == 1


@pytest.mark.parametrize("name", ["device.xml", "common.xml", "../x.xml", "a/b.xml", ".x"])
def test_reserved_or_unsafe_profile_files_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError) as e:
        served_files(Profile("p", (name,), where="inventory.toml:3"))
    assert "inventory.toml:3" in str(e.value)


def test_template_candidates() -> None:
    assert template_candidates("D400", "model.xml") == (
        "models/D400.xml.j2",
        "models/default.xml.j2",
    )
    assert template_candidates("D400", "common.xml") == ("common.xml.j2",)
    assert template_candidates("D400", "device.xml") == ("device.xml.j2",)
    assert template_candidates("D400", "office.xml") == ("profiles/office.xml.j2",)


def test_device_vars_override_profile_vars_and_facts_override_both() -> None:
    profile = Profile("p", (), {"tz": "UTC", "lang": "de", "server_url": "x"})
    device = Device("00095200000E", "D200", "p", "S1", {"lang": "en", "type": "D999"})
    got = template_vars(device, profile, "http://10.0.0.1:8080", "10.0.0.1")
    assert got == {
        "tz": "UTC",
        "lang": "en",
        "mac": "00095200000E",
        "type": "D200",
        "serial": "S1",
        "profile": "p",
        "server_url": "http://10.0.0.1:8080",
        "appliance": "10.0.0.1",
    }
