import pytest

from phoneprov.core.errors import ConfigErrors
from phoneprov.core.inventory import Record, build_inventory, build_profiles

PROFILES = build_profiles([("default", Record({"templates": ["office.xml"], "vars": {"a": 1}}))])


def dev(where="inv:1", places=None, **fields):
    return Record(
        {"mac": "00:09:52:00:00:0e", "type": "D200", "profile": "default", **fields},
        where,
        places or {},
    )


def test_valid_device_is_normalised():
    inv = build_inventory([dev(type="d-200", serial=" S1 ", vars={"x": "y"})], PROFILES)
    d = inv.devices["00095200000E"]
    assert (d.type, d.serial, d.profile, dict(d.vars), d.where) == (
        "D200",
        "S1",
        "default",
        {"x": "y"},
        "inv:1",
    )
    assert inv.device("00-09-52-00-00-0e") is d
    assert inv.device("garbage") is None


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (dev(mac="00:09:52:00:00"), "not a MAC address: '00:09:52:00:00'"),
        (dev(mac=""), "missing mac"),
        (dev(type="X9"), "unknown model 'X9'"),
        (dev(type=""), "missing type"),
        (dev(profile="vip"), "unknown profile 'vip'"),
        (dev(colour="red"), "unknown key 'colour'; allowed: mac, type"),
        (dev(line=[]), "unknown key 'line'; did you mean 'lines'?"),
        (dev(vars=[1]), "vars must be a table"),
        (dev(serial="a/b"), "serial 'a/b'"),
    ],
)
def test_each_problem_is_named_with_its_place(record, message):
    with pytest.raises(ConfigErrors) as err:
        build_inventory([record], PROFILES)
    assert len(err.value.errors) == 1
    assert str(err.value.errors[0]).startswith("inv:1: ")
    assert message in str(err.value)


def test_duplicate_mac_in_another_notation_names_both_places():
    with pytest.raises(ConfigErrors, match=r"inv:7: duplicate MAC 00095200000E \(first at inv:1\)"):
        build_inventory([dev(), dev("inv:7", mac="0009.5200.000E")], PROFILES)


def test_all_problems_are_reported_at_once_and_nothing_is_half_built():
    records = [
        dev("inv:1"),
        dev("inv:2", mac="000952000001", type="Z"),
        dev("inv:3", mac="x", profile="none"),
    ]
    with pytest.raises(ConfigErrors) as err:
        build_inventory(records, PROFILES)
    assert [e.where for e in err.value.errors] == ["inv:2", "inv:3", "inv:3"]


def test_profile_validation():
    with pytest.raises(ConfigErrors, match="templates must be a list"):
        build_profiles([("p", Record({"templates": "x.xml"}, "inv:4"))])
    with pytest.raises(ConfigErrors, match="profile name"):
        build_profiles([("bad name", Record({}, "inv:5"))])


def test_device_settings_go_over_the_profile_settings():
    profiles = build_profiles(
        [
            (
                "default",
                Record(
                    {
                        "templates": [],
                        "lines": [
                            {"username": "1", "registrar": "p"},
                            {"username": "299", "registrar": "p"},
                        ],
                        "keys": [{"number": 1, "target": "200"}, {"number": 2, "target": "201"}],
                        "provisioning": {"time": "03:30", "pnp": True},
                        "admin_password_hash": "5f4dcc3b5aa765d61d8327deb882cf99",
                    },
                    "inv:1",
                ),
            )
        ]
    )
    record = dev(
        lines=[{"username": "201", "registrar": "pbx"}],
        keys=[{"number": 2, "target": "299", "label": "Group"}],
        provisioning={"pnp": False},
    )
    settings = build_inventory([record], profiles).devices["00095200000E"].settings
    assert [(x.username, x.registrar) for x in settings.lines] == [("201", "pbx"), ("299", "p")]
    assert [(k.number, k.target, k.label) for k in settings.keys] == [
        (1, "200", "200"),
        (2, "299", "Group"),
    ]
    assert (settings.provisioning.time, settings.provisioning.pnp) == ("03:30", False)
    assert settings.admin_password_hash == "5f4dcc3b5aa765d61d8327deb882cf99"


def test_key_numbers_are_checked_for_the_device_model_at_the_key_place():
    profiles = build_profiles(
        [
            (
                "default",
                Record({"keys": [{"number": 30, "target": "200"}]}, "inv:1", {"keys[0]": "inv:4"}),
            )
        ]
    )
    assert build_inventory([dev(type="D400")], profiles).devices["00095200000E"].settings.keys
    with pytest.raises(ConfigErrors) as err:
        build_inventory([dev("inv:9", type="D100")], profiles)
    assert str(err.value) == (
        "inv:4: key 30 on phone is out of range 1..18 for a D100 (device at inv:9)"
    )


def test_vocabulary_problems_are_reported_with_the_other_problems():
    record = dev("inv:9", type="Z", lines=[{"username": "201"}], places={"lines[0]": "inv:12"})
    with pytest.raises(ConfigErrors) as err:
        build_inventory([record], PROFILES)
    assert [str(e) for e in err.value.errors] == [
        "inv:9: unknown model 'Z'; known: D100, D110, D200, D210, D400, D410, D600",
        "inv:12: line 1 needs a registrar",
    ]
