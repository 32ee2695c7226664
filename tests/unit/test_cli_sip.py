"""The SIP CLI glue: the PnP policy over config/inventory/state, and resync's argument errors.

Nothing here touches the network: resync is only run where it must refuse or has no lease.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import sip
from phoneprov.cli.common import Group
from phoneprov.config import load_config
from phoneprov.core.sipdialog import PnpSubscribe
from phoneprov.state import State

KNOWN, OTHER_VENDOR, SAME_OUI = "00095200000E", "001122334455", "000952ABCDEF"


def write_config(tmp_path: Path, policy: str = "known") -> Path:
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


def phone(mac: str, model: str = "COMfortel D-210") -> PnpSubscribe:
    return PnpSubscribe(mac, "Auerswald", model, "1.0", "device")


def test_known_policy_answers_inventory_devices_only(tmp_path: Path) -> None:
    policy = sip.PnpPolicy(load_config(write_config(tmp_path)))
    assert policy(phone(KNOWN), "10.0.0.2") == f"http://prov.lan:8080/prov.py?mac={KNOWN}"
    assert policy(phone(SAME_OUI), "10.0.0.3") is None
    with State(tmp_path / "state.db") as state:
        assert [(d.mac, d.ip) for d in state.discovered()] == [(SAME_OUI, "10.0.0.3")]
        assert state.enrolled() == []


def test_vendor_policy_enrols_phones_of_a_configured_oui(tmp_path: Path) -> None:
    policy = sip.PnpPolicy(load_config(write_config(tmp_path, "vendor")))
    assert policy(phone(SAME_OUI), "10.0.0.3") == f"http://prov.lan:8080/prov.py?mac={SAME_OUI}"
    assert policy(phone(OTHER_VENDOR), "10.0.0.4") is None
    with State(tmp_path / "state.db") as state:
        assert [(r["mac"], r["type"]) for r in state.enrolled()] == [(SAME_OUI, "D210")]
    assert policy(phone(SAME_OUI, model=""), "10.0.0.3") is not None  # known now: no re-enrol


def test_inventory_edits_are_picked_up(tmp_path: Path) -> None:
    policy = sip.PnpPolicy(load_config(write_config(tmp_path)))
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(
        inventory.read_text()
        + f'[[devices]]\nmac = "{SAME_OUI}"\ntype = "D100"\nprofile = "default"\n'
    )
    policy.loaded_at = -1.0  # as if the file's mtime changed (it may not, within one tick)
    assert policy(phone(SAME_OUI), "10.0.0.3") is not None
    inventory.write_text("not toml [")
    policy.loaded_at = -1.0
    assert policy(phone(SAME_OUI), "10.0.0.3") is not None  # a broken edit keeps the old one


def run(*args: str) -> tuple[int, str, str]:
    group = Group("phoneprov")
    sip.register(group)
    result = CliRunner().invoke(group, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give MAC... or --all"),
        (("--all", KNOWN), "give MAC... or --all"),
        (("not-a-mac",), "not a MAC address"),
        ((SAME_OUI,), f"not in the inventory: {SAME_OUI}"),
    ],
)
def test_resync_argument_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    status, out, err = run("resync", "-c", str(write_config(tmp_path)), *args)
    assert (status, out) == (2, "")
    assert err.startswith("error: ") and message in err


def test_resync_without_a_lease_sends_nothing(tmp_path: Path) -> None:
    status, out, _ = run("resync", "-c", str(write_config(tmp_path)), "--all")
    assert (status, out) == (1, f"{KNOWN} - no lease (not sent)\n")


def test_a_bad_config_is_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('"known"', '"everyone"'))
    for command in ("resync", "pnp"):
        status, _, err = run(
            command, "-c", str(config), *(["--all"] if command == "resync" else [])
        )
        assert status == 2 and "pnp_policy" in err
