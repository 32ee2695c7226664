"""core.vocabulary: every documented rule (DSERIES §3) named with its place; the merge."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import ConfigError, InputError
from phoneprov.core.vocabulary import (
    TARGET,
    Firmware,
    Key,
    Line,
    Provisioning,
    Settings,
    device_settings,
    parse_settings,
    speed_dial_lua,
)

HASH = "5f4dcc3b5aa765d61d8327deb882cf99"
LINE = {"username": "201", "registrar": "pbx.example.lan"}
KEY = {"number": 1, "target": "200"}


def place(path: str) -> str:
    return f"inv[{path}]"


def parse(**data: Any) -> tuple[Settings, list[str]]:
    errors: list[ConfigError] = []
    settings = parse_settings(data, place, errors)
    return settings, [str(e) for e in errors]


def problems(**data: Any) -> list[str]:
    return parse(**data)[1]


def test_a_complete_device_parses() -> None:
    settings, errors = parse(
        lines=[
            LINE
            | {
                "password": "pw",
                "display_name": "Front desk",
                "port": 5062,
                "domain": "example.org",
                "dtmf": "sipInfo",
                "register_interval": 5,
            },
            {"username": "299", "registrar": "10.0.0.1"},
        ],
        keys=[
            KEY | {"label": "Op", "kind": "speed_dial", "module": "xt20"},
            {"number": 18, "target": "*21#"},
        ],
        provisioning={"dhcp": False, "days": ["sun", "mon"], "time": "3:05", "random_delay": True},
        firmware={"check": False, "url": "https://fw.example.lan/d"},
        admin_password_hash=HASH,
    )
    assert errors == []
    assert settings.lines == (
        Line("201", "pbx.example.lan", "pw", "Front desk", 5062, "example.org", "sipInfo", 5),
        Line("299", "10.0.0.1"),
    )
    assert settings.lines[0].where == "inv[lines[0]]"
    assert settings.keys == (Key(18, "*21#", "*21#"), Key(1, "200", "Op", module="xt20"))
    assert settings.provisioning == Provisioning(
        days=("mon", "sun"), time="3:05", random_delay=True, dhcp=False
    )
    assert settings.firmware == Firmware(check=False, url="https://fw.example.lan/d")
    assert settings.admin_password_hash == HASH


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lines": [LINE] * 7}, "inv[lines[6]]: 7 lines given; the phone has 6 SIP identities"),
        ({"lines": LINE}, "inv[lines]: lines must be a list of tables"),
        ({"lines": [LINE | {"port": 0}]}, "inv[lines[0].port]: line 1: port 0 is out of range"),
        ({"lines": [LINE | {"port": 65536}]}, "line 1: port 65536 is out of range 1..65535"),
        ({"lines": [LINE | {"port": "5060"}]}, "line 1: port must be an integer, not '5060'"),
        ({"lines": [LINE | {"port": True}]}, "line 1: port must be an integer, not True"),
        ({"lines": [LINE | {"register_interval": 4}]}, "register_interval 4 is out of range 5..60"),
        ({"lines": [LINE | {"register_interval": 61}]}, "register_interval 61 is out of"),
        ({"lines": [LINE | {"dtmf": "rfc2833"}]}, "is not one of rtpPayload | inband | sipInfo"),
        ({"lines": [LINE | {"usrname": "x"}]}, "unknown key 'usrname'; did you mean 'username'?"),
        ({"lines": [{"registrar": "pbx"}]}, "inv[lines[0]]: line 1 needs a username"),
        ({"lines": [LINE, {"username": "2"}]}, "inv[lines[1]]: line 2 needs a registrar"),
        ({"lines": [LINE | {"registrar": "pbx lan"}]}, "registrar 'pbx lan' must be a host name"),
        ({"lines": [LINE | {"username": "a b"}]}, "username 'a b' is not a SIP user name"),
        ({"lines": [LINE | {"display_name": "a\nb"}]}, "must not contain control characters"),
        ({"lines": [3]}, "inv[lines[0]]: line 1 must be a table of name = value"),
        ({"keys": [KEY | {"number": 0}]}, "inv[keys[0].number]: key #1: number 0 is out"),
        ({"keys": [{"target": "200"}]}, "inv[keys[0]]: key #1 needs a number"),
        ({"keys": [KEY | {"kind": "blf"}]}, "kind is refused: blf (busy lamp field) cannot"),
        ({"keys": [KEY | {"kind": "park"}]}, "key #1: kind 'park' is not one of speed_dial"),
        ({"keys": [KEY | {"target": '2") os.exit() --'}]}, "may hold only digits, letters, *"),
        ({"keys": [KEY | {"target": "2" * 65}]}, "may hold only digits"),
        ({"keys": [KEY | {"module": "xt30"}]}, "key #1: module 'xt30' is not one of phone | xt20"),
        ({"keys": [KEY | {"nummer": 2}]}, "has an unknown key 'nummer'; did you mean 'number'?"),
        ({"keys": [KEY, KEY]}, "number 1 is given twice on phone (also inv[keys[0]])"),
        ({"provisioning": {"time": "24:00"}}, "provisioning: time '24:00' is not a time HH:MM"),
        ({"provisioning": {"time": ""}}, "provisioning: time '' is not a time HH:MM"),
        ({"provisioning": {"days": ["monday"]}}, "provisioning: days must be a list of mon, tue"),
        ({"provisioning": {"random_delay_min": 9, "random_delay_max": 6}}, "9 is above"),
        ({"provisioning": {"random_delay_min": -1}}, "random_delay_min -1 is out of range 0.."),
        ({"provisioning": {"pnp": "yes"}}, "provisioning: pnp must be true or false, not 'yes'"),
        ({"provisioning": {"shedule": 1}}, "unknown key 'shedule'; known: dhcp"),
        ({"provisioning": []}, "inv[provisioning]: provisioning must be a table"),
        ({"firmware": {"url": "ftp://fw"}}, "firmware: url 'ftp://fw' is not an http(s) URL"),
        ({"firmware": {"autoinstall": True}}, "did you mean 'auto_install'?"),
        ({"admin_password_hash": "admin"}, "inv[admin_password_hash]: admin_password_hash loo"),
    ],
)  # fmt: skip
def test_each_rule_is_named_with_its_place(data: dict[str, Any], message: str) -> None:
    found = problems(**data)
    assert len(found) == 1, found
    assert message in found[0]


def test_a_refused_password_is_not_echoed() -> None:
    assert "hunter2" not in problems(admin_password_hash="hunter2 is my password")[0]


@pytest.mark.parametrize(
    ("model", "module", "highest"),
    [("D100", "phone", 18), ("D110", "phone", 18), ("D200", "phone", 18), ("D210", "phone", 18),
     ("D400", "phone", 40), ("D410", "phone", 40), ("D600", "phone", 40), ("D200", "xt20", 60),
     ("D400", "xt20", 60)],
)  # fmt: skip
def test_key_numbers_per_model_and_module(model: str, module: str, highest: int) -> None:
    def check(number: int) -> list[str]:
        own = Settings(keys=(Key(number, "200", module=module, where="inv:5"),))
        errors: list[ConfigError] = []
        device_settings(own, Settings(), model, "inv:5", errors)
        return [str(e) for e in errors]

    assert check(highest) == []
    assert check(highest + 1) == [
        f"inv:5: key {highest + 1} on {module} is out of range 1..{highest} for a {model}"
    ]


def test_the_same_number_on_two_modules_is_two_keys() -> None:
    settings, errors = parse(keys=[KEY, KEY | {"module": "xt20"}])
    assert errors == [] and len(settings.keys) == 2


def test_random_delays_are_checked_across_profile_and_device() -> None:
    errors: list[ConfigError] = []
    profile = Settings(provisioning=Provisioning(random_delay_min=600))
    own = Settings(provisioning=Provisioning(random_delay_max=300))
    device_settings(own, profile, "D200", "inv:9", errors)
    assert [str(e) for e in errors] == [
        "inv:9: provisioning: random_delay_min 600 is above random_delay_max 300 "
        "(profile and device together)"
    ]


def test_merge_lines_by_position_keys_by_number_tables_by_key() -> None:
    profile = Settings(
        lines=(Line("1", "a"), Line("299", "a")),
        keys=(Key(1, "200"), Key(2, "201"), Key(2, "300", module="xt20")),
        provisioning=Provisioning(time="03:30", pnp=True),
        firmware=Firmware(check=True, url="https://a"),
        admin_password_hash=HASH,
    )
    own = Settings(
        lines=(Line("201", "b"),),
        keys=(Key(2, "299"),),
        provisioning=Provisioning(pnp=False),
        firmware=Firmware(auto_install=True),
    )
    got = own.over(profile)
    assert got.lines == (Line("201", "b"), Line("299", "a"))
    assert got.keys == (Key(1, "200"), Key(2, "299"), Key(2, "300", module="xt20"))
    assert got.provisioning == Provisioning(time="03:30", pnp=False)
    assert got.firmware == Firmware(check=True, auto_install=True, url="https://a")
    assert got.admin_password_hash == HASH
    assert own.over(Settings()) == own and Settings().over(profile) == profile
    assert got.over(profile) == got  # idempotent: the effective settings stay as they are


def test_a_password_is_never_in_a_repr() -> None:
    assert "s3cret" not in repr(Line("201", "pbx", "s3cret"))
    assert HASH not in repr(Settings(admin_password_hash=HASH))


@given(st.text(max_size=70))
def test_a_speed_dial_target_is_either_refused_or_safe_in_lua(target: str) -> None:
    settings, errors = parse(keys=[{"number": 1, "target": target}])
    if errors:
        assert settings.keys == ()
        with pytest.raises(InputError):
            speed_dial_lua(target)
        return
    assert TARGET.match(target)
    code = speed_dial_lua(settings.keys[0].target)
    literal = code.removeprefix('function onKeyUp() sip.invite("').removesuffix('") end')
    assert literal == target and not set(literal) & set("\"'\\\n\r[]")
