import pytest

from phoneprov.core.errors import ConfigErrors
from phoneprov.core.inventory import Record, build_inventory, build_profiles

PROFILES = build_profiles([("default", Record({"templates": ["office.xml"], "vars": {"a": 1}}))])


def dev(where="inv:1", **fields):
    return Record(
        {"mac": "00:09:52:00:00:0e", "type": "D200", "profile": "default", **fields}, where
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
        (dev(colour="red"), "unknown key(s) colour"),
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
