"""`phoneprov plan` with the real dnsmasq: the phone that got a lease is the one it names for
check-sync, and `apply --resync` then notifies exactly that one.

A lab (`Lab("ppplan")`: appliance 10.231.0.1 running dnsmasq with the snippet and the shipped
hook), two phones in the inventory; one takes a lease from dnsmasq (the hook records it),
the other never shows up. sipp plays the leased phone and answers the NOTIFY.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.lab import Host, Lab
from phoneprov.lab.dnsmasq import Dnsmasq
from phoneprov.phone.dhcp_client import dhcp_exchange
from phoneprov.state.db import State
from sample_data import remove_site

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="needs sipp (Debian: sip-tester)"),
]

ROOT = Path(__file__).resolve().parents[2]
PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
TEMPLATES = ROOT / "conf" / "templates"
SCENARIOS = Path(__file__).parent / "sipp"
APPLIANCE_IP = "10.231.0.1"
PHONE, IDLE = "00095200000E", "00095200001F"  # PHONE takes a lease; IDLE never shows up
INVENTORY = "".join(
    f'[[devices]]\nmac = "{mac}"\ntype = "D200"\nprofile = "default"\n'
    f'[[devices.lines]]\nusername = "{user}"\npassword = "pw"\nregistrar = "{APPLIANCE_IP}"\n'
    for mac, user in ((PHONE, "201"), (IDLE, "202"))
)
CONFIG = f"""[server]
url = "http://{APPLIANCE_IP}:8080"
[dhcp]
ntp = ["{APPLIANCE_IP}"]
hostsdir = "hosts"
optsdir = "opts"
dnsmasq_pidfile = "{{pidfile}}"
[sip]
t1 = 0.05
[paths]
inventory = "inventory.toml"
templates = "templates"
state = "state.db"
"""


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    with Lab("ppplan") as the_lab:
        yield the_lab


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ppplan-site-"))
    root.chmod(0o755)  # dnsmasq reads hostsdir/optsdir as nobody
    shutil.copytree(TEMPLATES, root / "templates")
    (root / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["office.xml"]\n' + INVENTORY
    )
    (root / "inventory.toml").chmod(0o640)
    (root / "pp.toml").write_text(CONFIG.format(pidfile=root / "none.pid"))
    for name in ("hosts", "opts"):  # as the README's install does before starting dnsmasq
        (root / name).mkdir(mode=0o755)
    monkeypatch.setenv("PHONEPROV_HOOK_SETTINGS", str(root / "hosts" / ".phoneprov-applied"))
    try:
        yield root
    finally:
        remove_site(root)


def cli(lab: Lab, appliance: Host, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run(appliance, [PHONEPROV, *args, "-c", str(site / "pp.toml")], check=False)


def plan(lab: Lab, appliance: Host, site: Path) -> tuple[int, dict[str, Any]]:
    done = cli(lab, appliance, site, "plan", "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def leased_ip(site: Path, mac: str, timeout: float = 5.0) -> str | None:
    """The hook records the lease after the ACK, asynchronously: poll with a deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (site / "state.db").exists():
            with State.read_only(site / "state.db") as state:
                lease = state.lease_for(mac)
            if lease is not None:
                return lease.ip
        time.sleep(0.02)
    return None


def test_plan_names_the_leased_phone_and_resync_notifies_only_it(
    lab: Lab, site: Path, dnsmasq_factory: Callable[..., Dnsmasq], tmp_path: Path
) -> None:
    appliance = lab.add_host("appl", f"{APPLIANCE_IP}/24")
    snippet = cli(lab, appliance, site, "dnsmasq-snippet").stdout
    dm = dnsmasq_factory(appliance, conf=snippet)
    config = site / "pp.toml"
    config.write_text(CONFIG.format(pidfile=dm.pidfile))
    first = cli(lab, appliance, site, "apply", "--resync")
    assert first.returncode == 0 and "resync: first run, recorded 2 devices" in first.stdout

    phone = lab.add_host("phone", mac=PHONE)
    lease = dhcp_exchange(phone.netns, phone.ifname, PHONE, assign=True)
    assert leased_ip(site, PHONE) == lease.ip
    assert plan(lab, appliance, site)[0] == 0  # a lease changes nothing

    office = site / "templates" / "profiles" / "office.xml.j2"  # both phones' files change
    office.write_text(office.read_text() + "<!-- edited -->\n")
    hosts_before = {p.name: p.read_bytes() for p in (site / "hosts").iterdir()}
    status, data = plan(lab, appliance, site)
    assert status == 1
    assert (data["check_sync"], data["no_lease"]) == ([PHONE], [IDLE])
    assert [(c["mac"], c["files"], c["dhcp"]) for c in data["changes"]] == [
        (PHONE, ["office.xml"], []),
        (IDLE, ["office.xml"], []),
    ]
    assert {p.name: p.read_bytes() for p in (site / "hosts").iterdir()} == hosts_before

    argv = [
        "sipp", "-sf", str(SCENARIOS / "checksync_answer.xml"), "-i", lease.ip, "-p", "5060",
        "-m", "1", "-timeout", "10", "-nostdin", "-default_behaviors", "all,-bye",
        "-trace_msg", "-message_file", str(tmp_path / "notify.msg"),
    ]  # fmt: skip
    sipp = lab.spawn(phone, argv, stdout=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.3)  # sipp binds at once; it says nothing we could wait for
        done = cli(lab, appliance, site, "apply", "--resync")
        assert sipp.wait(timeout=10) == 0
    finally:
        lab.stop(sipp)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        f"{PHONE} {lease.ip} accepted (200 OK)",
        f"{IDLE} - no lease (not sent)",
    ]
    sent = re.findall(r"^NOTIFY sip:", (tmp_path / "notify.msg").read_text(), re.MULTILINE)
    assert len(sent) == 1
    assert plan(lab, appliance, site)[0] == 0  # applied and recorded: nothing left
