"""core.layering: the files of a phone, their order, their templates, their variables."""

from __future__ import annotations

import pytest

from phoneprov.core.errors import ConfigError
from phoneprov.core.inventory import Device, Profile
from phoneprov.core.layering import (
    FACTS,
    VOCABULARY,
    served_files,
    template_candidates,
    template_vars,
    vocabulary_vars,
)
from phoneprov.core.vocabulary import Firmware, Key, Line, Provisioning, Settings


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
    device = Device("00095200000E", "D200", "p", "S1", {"lang": "en", "type": "D999", "keys": 1})
    got = template_vars(device, profile, "http://10.0.0.1:8080", "10.0.0.1", "1.34.0")
    assert set(got) == {"tz", "lang", *FACTS}
    assert {k: v for k, v in got.items() if k not in VOCABULARY} == {
        "tz": "UTC",
        "lang": "en",
        "mac": "00095200000E",
        "type": "D200",
        "serial": "S1",
        "profile": "p",
        "server_url": "http://10.0.0.1:8080",
        "appliance": "10.0.0.1",
        "settings_version": "1.34.0",
    }
    assert got["keys"] == [] and got["firmware"] is None and got["admin_password_hash"] == ""


def test_vocabulary_is_plain_data_with_defaults_filled_in() -> None:
    settings = Settings(
        lines=(Line("201", "pbx", "pw", "Desk", dtmf="sipInfo"), Line("299", "pbx")),
        keys=(Key(2, "*21#", "Fwd", module="xt20"), Key(1, "200", "Op")),
        provisioning=Provisioning(days=("mon", "fri"), time="03:30", pnp=True),
        firmware=Firmware(auto_install=True, url="https://fw.lan"),
        admin_password_hash="5f4dcc3b5aa765d61d8327deb882cf99",
    )
    got = vocabulary_vars(settings)
    assert got["lines"][0] == {
        "index": 1,
        "username": "201",
        "password": "pw",
        "display_name": "Desk",
        "registrar": "pbx",
        "port": 5060,
        "domain": "",
        "dtmf": "sipInfo",
        "register_interval": 30,
    }
    assert got["lines"][1]["index"] == 2
    assert [(k["element"], k["number"], k["lua"]) for k in got["keys"]] == [
        ("extensionModule1", 2, 'function onKeyUp() sip.invite("*21#") end'),
        ("phoneXtensions", 1, 'function onKeyUp() sip.invite("200") end'),
    ]  # the order of Settings.keys (parse_settings and over sort by module, number)
    execution = got["provisioning"]["execution"]
    assert (got["provisioning"]["pnp"], got["provisioning"]["dhcp"]) == (True, True)
    assert [day for day, on in execution["days"].items() if on] == ["mondays", "fridays"]
    assert (execution["time"], execution["random_delay"], execution["random_delay_max"]) == (
        "03:30",
        False,
        3600,
    )
    firmware = got["firmware"]
    assert (firmware["check"], firmware["auto_install"], firmware["url"]) == (
        True,
        True,
        "https://fw.lan",
    )
    assert firmware["execution"]["time"] == ""  # "" = leave <time> out
    assert got["admin_password_hash"] == "5f4dcc3b5aa765d61d8327deb882cf99"
