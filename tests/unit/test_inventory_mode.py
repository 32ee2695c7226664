"""The inventory holds SIP passwords: `check` warns when every user may read it."""

import os

from phoneprov.config import load_config
from phoneprov.render.check import check_installation, world_readable_inventory


def site(tmp_path, inventory="inventory.toml"):
    (tmp_path / "templates").mkdir()
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n'
        f'[paths]\ninventory = "{inventory}"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    return tmp_path / "pp.toml"


def test_check_warns_when_the_inventory_is_world_readable(tmp_path):
    config = site(tmp_path)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text("[profiles.default]\ntemplates = []\n")
    os.chmod(inventory, 0o644)
    lines = check_installation(str(config)).splitlines()
    assert lines[0].startswith("ok: ")
    assert lines[1:] == [
        f"{inventory}: warning: readable by every user, and it holds SIP passwords "
        f"(fix: chmod o-rwx {inventory})"
    ]
    os.chmod(inventory, 0o640)  # root and the service user's group
    assert check_installation(str(config)).splitlines()[1:] == []


def test_a_csv_inventory_and_its_profiles_are_both_checked(tmp_path):
    config = load_config(site(tmp_path, "inventory.csv"))
    (tmp_path / "inventory.csv").write_text("mac,type,profile\n")
    (tmp_path / "inventory.toml").write_text("")
    os.chmod(tmp_path / "inventory.csv", 0o600)
    os.chmod(tmp_path / "inventory.toml", 0o604)
    assert world_readable_inventory(config) == [str(tmp_path / "inventory.toml")]
