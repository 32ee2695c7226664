"""The PnP policy over config/inventory/state, and the responder wired from the config."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from phoneprov.config import load_config
from phoneprov.core.errors import ConfigError
from phoneprov.core.sipdialog import PnpSubscribe
from phoneprov.sip.policy import PnpPolicy, pnp_thread
from phoneprov.state.db import Lease, State
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


def with_sip_keys(path: Path, keys: str) -> Path:
    path.write_text(path.read_text().replace("[sip]\n", f"[sip]\n{keys}"))
    return path


def test_vendor_enrolment_is_bounded_by_default(tmp_path: Path) -> None:
    """Issue 11.6: a flood of 300 forged MACs of the vendor's OUI enrols 10 (enrol_per_minute),
    not 300; the rest are recorded as discovered (bounded too) and not answered."""
    policy = PnpPolicy(load_config(write_sip_config(tmp_path, "vendor")))
    macs = [f"000952{0x1000 + n:06X}" for n in range(300)]  # none of them inventoried
    answered = [n for n, mac in enumerate(macs) if policy(phone(mac), "10.0.0.66")]
    assert answered == list(range(10))
    with State(tmp_path / "state.db") as state:
        assert len(state.enrolled()) == 10
        assert 0 < len(state.discovered()) <= 30
    assert policy(phone(macs[0]), "10.0.0.66") is not None  # enrolled: still answered


def test_vendor_enrolment_rate_and_total_are_configurable(tmp_path: Path) -> None:
    path = with_sip_keys(
        write_sip_config(tmp_path, "vendor"), "enrol_per_minute = 5\nenrol_max = 8\n"
    )
    now = [1000.0]
    policy = PnpPolicy(load_config(path), clock=lambda: now[0])
    macs = [f"000952{0x1000 + n:06X}" for n in range(100)]
    assert sum(policy(phone(m), "10.0.0.66") is not None for m in macs[:50]) == 5
    now[0] += 60.0  # a minute later: 5 more allowed by the rate, but only 3 by the total
    assert sum(policy(phone(m), "10.0.0.66") is not None for m in macs[50:]) == 3
    now[0] += 3600.0
    assert sum(policy(phone(m), "10.0.0.66") is not None for m in macs[50:]) == 3  # the same 3
    with State(tmp_path / "state.db") as state:
        assert len(state.enrolled()) == 8


def test_discovered_records_are_bounded(tmp_path: Path) -> None:
    """Issue 11.6: unknown phones are recorded as discovered at a bounded rate, and one phone
    asking again and again is written once."""
    now = [0.0]
    policy = PnpPolicy(load_config(write_sip_config(tmp_path)), clock=lambda: now[0])
    for n in range(300):
        assert policy(phone(f"000952{0x1000 + n:06X}"), "10.0.0.66") is None
    for _ in range(100):
        policy(phone(SAME_OUI), "10.0.0.3")
    with State(tmp_path / "state.db") as state:
        assert len(state.discovered()) == 30
    now[0] += 60.0
    policy(phone(SAME_OUI), "10.0.0.3")
    with State(tmp_path / "state.db") as state:
        assert SAME_OUI in {d.mac for d in state.discovered()}


def test_a_subscribe_without_a_mac_is_matched_by_the_lease_of_its_source(tmp_path: Path) -> None:
    """Issue 11.8: the active, unexpired lease of the source address names the phone."""
    config = load_config(write_sip_config(tmp_path))
    now = time.time()
    with State(tmp_path / "state.db") as state:
        state.record_lease(Lease(KNOWN, "10.0.0.2", expires=int(now) + 600), now)
        state.record_lease(Lease(SAME_OUI, "10.0.0.3"), now)  # not in the inventory
        state.record_lease(Lease("00095200EEEE", "10.0.0.4", expires=int(now) - 1), now)
    policy = PnpPolicy(config)
    no_mac = PnpSubscribe(None, "AudioCodes", "", "", "")
    assert policy(no_mac, "10.0.0.2") == f"http://prov.lan:8080/prov.py?mac={KNOWN}"
    assert policy(no_mac, "10.0.0.3") is None
    assert policy(no_mac, "10.0.0.4") is None  # expired
    assert policy(no_mac, "10.0.0.9") is None  # no lease


def test_the_flood_bounds_are_configuration_keys(tmp_path: Path) -> None:
    defaults = load_config(write_sip_config(tmp_path)).sip
    assert (defaults.enrol_per_minute, defaults.enrol_max) == (10, 200)
    assert (defaults.pnp_source_pending, defaults.pnp_source_per_minute) == (4, 30)
    keys = "enrol_per_minute = 1\nenrol_max = 0\npnp_source_pending = 1\n"
    sip = load_config(with_sip_keys(write_sip_config(tmp_path), keys)).sip
    assert (sip.enrol_per_minute, sip.enrol_max, sip.pnp_source_pending) == (1, 0, 1)
    for n, bad in enumerate(("enrol_per_minute = 0", "pnp_source_pending = 0", "enrol_max = -1")):
        (tmp_path / str(n)).mkdir()
        with pytest.raises(ConfigError, match=bad.split()[0]):
            load_config(with_sip_keys(write_sip_config(tmp_path / str(n)), bad + "\n"))
