"""The PnP policy over config/inventory/state, and the responder wired from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneprov.config import load_config
from phoneprov.core.errors import ConfigError
from phoneprov.core.sipdialog import PnpSubscribe
from phoneprov.sip.policy import PnpPolicy, pnp_thread
from phoneprov.state.db import State
from sample_data import KNOWN, OTHER_VENDOR, SAME_OUI, write_sip_config


def phone(mac: str, model: str = "COMfortel D-210") -> PnpSubscribe:
    return PnpSubscribe(mac, "Auerswald", model, "1.0", "device")


def test_known_policy_answers_inventory_devices_only(tmp_path: Path) -> None:
    policy = PnpPolicy(load_config(write_sip_config(tmp_path)))
    assert policy(phone(KNOWN), "10.0.0.2") == f"http://prov.lan:8080/prov.py?mac={KNOWN}"
    assert policy(phone(SAME_OUI), "10.0.0.3") is None
    with State(tmp_path / "state.db") as state:
        assert [(d.mac, d.ip) for d in state.discovered()] == [(SAME_OUI, "10.0.0.3")]
        assert state.enrolled() == []


def test_vendor_policy_enrols_phones_of_a_configured_oui(tmp_path: Path) -> None:
    policy = PnpPolicy(load_config(write_sip_config(tmp_path, "vendor")))
    assert policy(phone(SAME_OUI), "10.0.0.3") == f"http://prov.lan:8080/prov.py?mac={SAME_OUI}"
    assert policy(phone(OTHER_VENDOR), "10.0.0.4") is None
    with State(tmp_path / "state.db") as state:
        assert [(r["mac"], r["type"]) for r in state.enrolled()] == [(SAME_OUI, "D210")]
    assert policy(phone(SAME_OUI, model=""), "10.0.0.3") is not None  # known now: no re-enrol


def test_inventory_edits_are_picked_up(tmp_path: Path) -> None:
    policy = PnpPolicy(load_config(write_sip_config(tmp_path)))
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


def test_the_responder_needs_an_existing_interface(tmp_path: Path) -> None:
    config = load_config(write_sip_config(tmp_path))
    with pytest.raises(ConfigError, match="'nosuch0' does not exist"):
        pnp_thread(config, interface="nosuch0")


def test_the_responder_thread_starts_and_stops_on_loopback(tmp_path: Path) -> None:
    config = load_config(write_sip_config(tmp_path))
    responder = pnp_thread(config, interface="lo", port=0)
    responder.start()
    assert responder.running
    responder.stop()
    assert not responder.running
    responder.stop()  # idempotent


def test_a_given_lookup_replaces_our_own_inventory_copy(tmp_path: Path) -> None:
    from phoneprov.core.inventory import Device

    asked = []

    def device_of(mac: str) -> Device | None:
        asked.append(mac)
        return Device(mac, "D100", "default") if mac == SAME_OUI else None

    policy = PnpPolicy(load_config(write_sip_config(tmp_path)), device_of)
    assert not hasattr(policy, "inventory")  # no second copy in the process
    assert policy(phone(SAME_OUI), "10.0.0.3") == f"http://prov.lan:8080/prov.py?mac={SAME_OUI}"
    assert policy(phone(KNOWN), "10.0.0.2") is None  # only what the lookup knows
    assert asked == [SAME_OUI, KNOWN]
