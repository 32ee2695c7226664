"""`phoneprov apply --resync` end to end: sipp plays the phone in its own namespace.

A lab (`Lab(base="ppars")`: appliance 10.231.61.1, phone 10.231.61.2), the shipped
templates, a lease for the phone recorded straight into the state database (no dnsmasq
needed). Edit the phone's vars → apply --resync sends it check-sync; unchanged → nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.lab import Host, Lab
from phoneprov.state.db import Lease, State

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("sipp") is None, reason="needs sipp (Debian: sip-tester)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
]

SCENARIOS = Path(__file__).parent / "sipp"
TEMPLATES = Path(__file__).resolve().parents[2] / "conf" / "templates"
APPLIANCE_IP, PHONE_IP = "10.231.61.1", "10.231.61.2"
PHONE_MAC = "00095200000E"  # has a lease
IDLE_MAC = "00095200001F"  # has none
T1 = 0.05  # timer F = 3.2 s


def write_inventory(site: Path, phone_name: str) -> None:
    (site / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["office.xml"]\n'
        + "".join(
            f'[[devices]]\nmac = "{mac}"\ntype = "D200"\nprofile = "default"\n'
            f'[[devices.lines]]\nusername = "{user}"\npassword = "pw"\n'
            f'display_name = "{name}"\nregistrar = "{APPLIANCE_IP}"\n'
            for mac, name, user in ((PHONE_MAC, phone_name, "201"), (IDLE_MAC, "Idle", "202"))
        )
    )


@pytest.fixture
def lab() -> Iterator[tuple[Lab, Host, Host]]:
    with Lab(base="ppars") as the_lab:
        appliance = the_lab.add_host("appl", f"{APPLIANCE_IP}/24")
        phone = the_lab.add_host("phone", f"{PHONE_IP}/24")
        yield the_lab, appliance, phone


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    write_inventory(tmp_path, "Front desk")
    (tmp_path / "pp.toml").write_text(
        f'[server]\nurl = "http://{APPLIANCE_IP}:8080"\ninterface = "eth0"\n'
        f'[dhcp]\nntp = ["{APPLIANCE_IP}"]\nhostsdir = "hosts"\noptsdir = "opts"\n'
        f'dnsmasq_pidfile = "dnsmasq.pid"\n[sip]\nt1 = {T1}\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    with State(tmp_path / "state.db") as state:
        state.record_lease(Lease(PHONE_MAC, PHONE_IP), time.time())
    return tmp_path


def sipp_argv(scenario: str, logs: Path) -> list[str]:
    """sipp as the phone, taking one NOTIFY; logs named explicitly (DESIGN §3b)."""
    return [
        "sipp", "-sf", str(SCENARIOS / scenario), "-i", PHONE_IP, "-p", "5060", "-m", "1",
        "-timeout", "10", "-nostdin", "-default_behaviors", "all,-bye",
        "-trace_logs", "-log_file", str(logs / f"{scenario}.log"),
        "-trace_msg", "-message_file", str(logs / f"{scenario}.msg"),
    ]  # fmt: skip


def start_phone(lab: Lab, phone: Host, scenario: str, logs: Path) -> subprocess.Popen[str]:
    return lab.spawn(phone, sipp_argv(scenario, logs), stdout=subprocess.DEVNULL, text=True)


def apply_resync(lab: Lab, appliance: Host, site: Path) -> tuple[int, list[str]]:
    argv = [sys.executable, "-m", "phoneprov", "apply", "-c", str(site / "pp.toml"), "--resync"]
    done = lab.run(appliance, argv, check=False)
    lines = done.stdout.splitlines()
    assert lines and lines[0].startswith("ok: "), (done.stdout, done.stderr)
    return done.returncode, lines[1:]


def notifies(logs: Path, scenario: str) -> int:
    path = logs / f"{scenario}.msg"
    text = path.read_text(errors="replace") if path.exists() else ""
    return len(re.findall(r"^NOTIFY sip:", text, re.MULTILINE))


def test_apply_resync_notifies_the_changed_phone_only(
    lab: tuple[Lab, Host, Host], site: Path, tmp_path: Path
) -> None:
    the_lab, appliance, phone = lab
    assert apply_resync(the_lab, appliance, site) == (
        0, ["resync: first run, recorded 2 devices; nothing sent"],
    )  # fmt: skip

    write_inventory(site, "Lobby")  # the phone's device.xml changes
    sipp = start_phone(the_lab, phone, "checksync_answer.xml", tmp_path)
    try:
        time.sleep(0.3)  # sipp binds at once; it says nothing we could wait for
        status, lines = apply_resync(the_lab, appliance, site)
        assert sipp.wait(timeout=10) == 0
    finally:
        the_lab.stop(sipp)
    assert (status, lines) == (0, [f"{PHONE_MAC} {PHONE_IP} accepted (200 OK)"])
    log = (tmp_path / "checksync_answer.xml.log").read_text()
    assert "EVENT=check-sync;reboot=false" in log
    # sip.check_sync_url (default on): the body names the entry URL DHCP hands out
    notify = (tmp_path / "checksync_answer.xml.msg").read_text()
    assert "Content-Type: application/xml" in notify
    url = f"http://{APPLIANCE_IP}:8080/prov.py?mac={PHONE_MAC}"
    assert f"<notifySync><checkSync><url>{url}</url><dataAvailable>true</dataAvailable>" in notify

    sipp = start_phone(the_lab, phone, "checksync_silent.xml", tmp_path)
    try:
        time.sleep(0.3)
        assert apply_resync(the_lab, appliance, site) == (0, ["resync: no device changed"])
        time.sleep(0.3)
    finally:
        the_lab.stop(sipp)
    assert notifies(tmp_path, "checksync_silent.xml") == 0


def test_apply_resync_exits_1_when_the_phone_refuses(
    lab: tuple[Lab, Host, Host], site: Path, tmp_path: Path
) -> None:
    the_lab, appliance, phone = lab
    apply_resync(the_lab, appliance, site)
    profile = site / "templates" / "profiles" / "office.xml.j2"  # both devices' files change
    profile.write_text(profile.read_text() + "<!-- edited -->\n")
    sipp = start_phone(the_lab, phone, "checksync_refuse.xml", tmp_path)
    try:
        time.sleep(0.3)
        status, lines = apply_resync(the_lab, appliance, site)
        sipp.wait(timeout=10)
    finally:
        the_lab.stop(sipp)
    assert (status, lines) == (
        1, [f"{PHONE_MAC} {PHONE_IP} refused (486 Busy Here)", f"{IDLE_MAC} - no lease (not sent)"],
    )  # fmt: skip
