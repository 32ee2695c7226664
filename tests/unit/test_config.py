from pathlib import Path

import pytest

from phoneprov.config import load_config, load_inventory
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
    assert inv.devices["00095200000E"].where == f"{CONF / 'inventory.toml'}:21"


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
