from dataclasses import replace
from pathlib import Path

import pytest

from phoneprov.config import load_config, load_inventory
from phoneprov.config.inventory_files import toml_places
from phoneprov.core.errors import ConfigError, ConfigErrors
from phoneprov.core.inventory import Record

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_shipped_example_loads():
    config = load_config(CONF / "phoneprov.toml")
    assert config.dhcp.mode == "66+67"
    assert config.dhcp.vendor_ouis == ("000952",)
    assert config.inventory_path == CONF / "inventory.toml"
    inv = load_inventory(config)
    assert list(inv.devices) == ["00095200000E", "00095200001F", "000952000030"]
    assert inv.devices["00095200000E"].where == f"{CONF / 'inventory.toml'}:61"
    lines = {mac: [x.username for x in d.settings.lines] for mac, d in inv.devices.items()}
    assert lines == {
        "00095200000E": ["201"],
        "00095200001F": ["202", "200"],
        "000952000030": ["203"],
    }
    assert {x.registrar for d in inv.devices.values() for x in d.settings.lines} == {
        "pbx.example.lan"
    }
    keys = [(k.module, k.number, k.target) for k in inv.devices["00095200001F"].settings.keys]
    assert keys == [("phone", 1, "201"), ("phone", 2, "203"), ("xt20", 1, "210")]


def test_shipped_csv_example_says_the_same_as_the_toml():
    config = load_config(CONF / "phoneprov.toml")
    from_toml = load_inventory(config)
    from_csv = load_inventory(replace(config, inventory_path=CONF / "inventory.csv"))
    assert list(from_csv.devices) == list(from_toml.devices)
    for mac, device in from_csv.devices.items():
        assert device.settings.lines == from_toml.devices[mac].settings.lines, mac
        assert device.settings.keys == from_toml.devices[mac].settings.keys, mac


def test_toml_places_name_each_sub_table_and_key(tmp_path):
    text = (
        "[profiles.p]\ntemplates = []\n[[profiles.p.lines]]\nusername = 1\n"
        "[[profiles.q.lines]]\nport = 2\n[profiles.p.firmware]\nurl = 3\n"
        "[[devices]]\nmac = 1\nprovisioning.time = 2\n[[devices.lines]]\n\n[[devices.lines]]\n"
        "port = 2\n[devices.vars]\na = 1\n[[devices]]\nlines = [{ port = 2 }]\n"
    )
    devices, profiles = toml_places(Path("i.toml"), text)
    at = {k: {p: int(v.split(":")[1]) for p, v in d.items()} for k, d in profiles.items()}
    assert at == {
        "p": {"": 1, "templates": 2, "lines[0]": 3, "lines[0].username": 4, "firmware": 7},
        "q": {"lines[0]": 5, "lines[0].port": 6},
    } | {"p": at["p"] | {"firmware.url": 8}}
    assert [{p: int(v.split(":")[1]) for p, v in d.items()} for d in devices] == [
        {"": 9, "mac": 10, "provisioning.time": 11, "lines[0]": 12, "lines[1]": 14,
         "lines[1].port": 15, "vars": 16, "vars.a": 17},
        {"": 18, "lines": 19},
    ]  # fmt: skip


def test_vocabulary_errors_name_the_line_of_the_value(tmp_path):
    config = write(
        tmp_path,
        inventory=INVENTORY.rsplit("[[devices]]", 1)[0]
        + "[[devices.lines]]\nusername = '201'\nregistrar = 'pbx'\nport = 0\n",
    )
    with pytest.raises(ConfigErrors) as err:
        load_inventory(config)
    inv = tmp_path / "inventory.toml"
    assert str(err.value) == f"{inv}:12: line 1: port 0 is out of range 1..65535"


def write(tmp_path, config="", inventory=None, name="inventory.toml"):
    (tmp_path / "phoneprov.toml").write_text(config + f'\n[paths]\ninventory = "{name}"\n')
    if inventory is not None:
        (tmp_path / name).write_text(inventory)
    return load_config(tmp_path / "phoneprov.toml")


def test_bad_value_names_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        write(tmp_path, '[server]\nurl = "auto"\n\n[dhcp]\nforce = true\nmode = "sideways"\n')
    assert str(err.value).startswith(f"{tmp_path / 'phoneprov.toml'}:6: dhcp.mode must be one of")


def test_toml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"phoneprov.toml:2: TOML syntax"):
        write(tmp_path, "[server]\nurl = \n")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


INVENTORY = """[profiles.default]
templates = []

[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"

[[devices]]
mac = "00:09:52:00:00:0E"
type = "D200"
profile = "default"
"""


def test_inventory_errors_carry_the_device_line(tmp_path):
    config = write(tmp_path, inventory=INVENTORY)
    with pytest.raises(ConfigErrors) as err:
        load_inventory(config)
    inv = tmp_path / "inventory.toml"
    assert str(err.value) == f"{inv}:9: duplicate MAC 00095200000E (first at {inv}:4)"


def test_csv_inventory_with_profiles_beside_it(tmp_path):
    (tmp_path / "inventory.toml").write_text("[profiles.default]\ntemplates = []\n")
    config = write(
        tmp_path,
        name="inventory.csv",
        inventory=(
            "mac,type,serial,profile,sip_user\n"
            "# a comment row\n"
            "00:09:52:00:00:0e,D200,S1,default,201\n"
            "\n"
            "00-09-52-00-00-1f,D400,,default,\n"
        ),
    )
    inv = load_inventory(config)
    assert dict(inv.devices["00095200000E"].vars) == {"sip_user": "201"}
    assert inv.devices["00095200001F"].serial is None
    assert inv.devices["00095200001F"].where == f"{tmp_path / 'inventory.csv'}:5"


def test_csv_errors_carry_the_line(tmp_path):
    (tmp_path / "inventory.toml").write_text("[profiles.default]\ntemplates = []\n")
    config = write(
        tmp_path,
        name="inventory.csv",
        inventory="mac,type,profile\n00:09:52:00:00:0e,D200,default\nzz,D200,default\n",
    )
    with pytest.raises(ConfigErrors, match=r"inventory.csv:3: not a MAC address: 'zz'"):
        load_inventory(config)
    config = write(tmp_path, name="inventory.csv", inventory="mac,profile\n")
    with pytest.raises(ConfigError, match=r"inventory.csv:1: CSV header lacks column\(s\) type"):
        load_inventory(config)


def test_extra_records_merge_and_the_file_wins(tmp_path):
    config = write(tmp_path, inventory=INVENTORY.rsplit("[[devices]]", 1)[0])
    extra = [
        Record({"mac": "00095200000E", "type": "D100", "profile": "default"}, "state"),
        Record({"mac": "000952000099", "type": "D100", "profile": "default"}, "state"),
    ]
    inv = load_inventory(config, extra)
    assert inv.devices["00095200000E"].type == "D200"
    assert inv.devices["000952000099"].where == "state"


def test_sip_timers_must_be_seconds(tmp_path):
    with pytest.raises(ConfigError, match=r"phoneprov.toml:3: sip.t1 must be a number of seconds"):
        write(tmp_path, '[sip]\n\nt1 = "fast"\n')
    with pytest.raises(ConfigError, match=r"sip.timer_f must be seconds"):
        write(tmp_path, "[sip]\ntimer_f = 0\n")
    assert write(tmp_path, "[sip]\nt1 = 1\n").sip.timer_f == 64


def csv_inventory(tmp_path, text):
    (tmp_path / "inventory.toml").write_text("[profiles.default]\ntemplates = []\n")
    return load_inventory(write(tmp_path, name="inventory.csv", inventory=text))


def test_csv_lines_and_keys(tmp_path):
    inv = csv_inventory(
        tmp_path,
        "mac,type,profile,line1_username,line1_registrar,line1_port,line2_username,"
        "line2_registrar,key3_target,key3_label,key4_number,key4_target,key4_module,room\n"
        "00:09:52:00:00:0e,D200,default,201,pbx,5070,299,pbx,200,Op,40,*21#,xt20,A1\n"
        "00:09:52:00:00:0f,D200,default,202,pbx,,,,,,,,,\n",
    )
    first, second = inv.devices.values()
    assert [(x.username, x.port) for x in first.settings.lines] == [("201", 5070), ("299", 5060)]
    assert [(k.number, k.target, k.label, k.module) for k in first.settings.keys] == [
        (3, "200", "Op", "phone"),
        (40, "*21#", "*21#", "xt20"),
    ]
    assert dict(first.vars) == {"room": "A1"}
    assert [x.username for x in second.settings.lines] == ["202"] and not second.settings.keys


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("line7_username", "x", "inventory.csv:1: column line7_username: the phone has 6 SIP"),
        ("line1_usrname", "x", "csv:1: unknown column line1_usrname; did you mean line1_username?"),
        ("key1_colour", "x", "inventory.csv:1: unknown column key1_colour; known: keyN_number"),
        ("line2_username,line2_registrar", "a,b", "csv:2: line2_* given but line1_* empty"),
        ("line1_username,line1_registrar,line1_port", "a,b,x", "csv:2: line 1: port must be an"),
        ("key1_target,key1_kind", "200,blf", "inventory.csv:2: key #1: kind is refused: blf"),
    ],
)  # fmt: skip
def test_csv_vocabulary_errors(tmp_path, header, row, message):
    with pytest.raises(ConfigError) as err:
        csv_inventory(
            tmp_path, f"mac,type,profile,{header}\n00:09:52:00:00:0e,D200,default,{row}\n"
        )
    assert message in str(err.value)
