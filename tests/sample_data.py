"""Sample inventories and configs shared by several test modules (on pytest's pythonpath)."""

from __future__ import annotations

from pathlib import Path

# Two phones on the shipped templates: the D200 and D400 of conf/inventory.toml.
TWO_PHONES_INVENTORY = """
[profiles.default]
templates = ["office.xml"]
[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"
lines = [{ username = "201", password = "pw201", registrar = "pbx.example.lan" }]
[[devices]]
mac = "00:09:52:00:00:1f"
type = "D400"
profile = "default"
lines = [{ username = "202", password = "pw202", registrar = "pbx.example.lan" }]
"""

# For the SIP policy tests: one known D400, a phone of another vendor, one of our OUI.
KNOWN, OTHER_VENDOR, SAME_OUI = "00095200000E", "001122334455", "000952ABCDEF"


def write_sip_config(tmp_path: Path, policy: str = "known") -> Path:
    """A config with one known device (KNOWN) and the given sip.pnp_policy."""
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["base.xml"]\n'
        f'[[devices]]\nmac = "{KNOWN}"\ntype = "D400"\nprofile = "default"\n'
    )
    path = tmp_path / "phoneprov.toml"
    path.write_text(
        '[server]\nurl = "http://prov.lan:8080"\n'
        f'[sip]\npnp_policy = "{policy}"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    return path
