"""phoneprov + the real dnsmasq: apply, the snippet and the hook, with a real DHCP client.

The appliance namespace runs dnsmasq with the snippet `phoneprov dnsmasq-snippet` prints
(the shipped one, for this config) and the shipped hook; `phoneprov` itself runs in the
appliance namespace as the CLI, so `auto` resolves from its eth0 (10.231.0.1).
"""

from __future__ import annotations

import json
import os
import sqlite3
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
from phoneprov.phone.dhcp_client import DhcpLease, dhcp_exchange
from sample_data import remove_site

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
HOOK = ROOT / "hooks" / "dnsmasq-dhcp-script"
PHONE_MAC = "00:09:52:00:00:0e"
STRANGER_MAC = "02:00:5e:10:00:01"  # not Auerswald, not in the inventory
UNKNOWN_PHONE_MAC = "00:09:52:00:00:77"  # Auerswald OUI, not in the inventory
INVENTORY = """
[profiles.default]
templates = ["office.xml"]

[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"
"""


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    """Our namespaces are named ppdns<pid>.<n>-*, torn down in Lab.close() (a finally)."""
    with Lab("ppdns") as the_lab:
        yield the_lab


class Site:
    """One appliance: config, inventory and state in a dir dnsmasq (as nobody) can read."""

    def __init__(self, lab: Lab, appliance: Host, root: Path) -> None:
        self.lab, self.appliance, self.root = lab, appliance, root
        self.config = root / "phoneprov.toml"
        self.inventory = root / "inventory.toml"
        self.state = root / "state.db"
        self.settings: dict[str, Any] = {"mode": "both", "auto_enrol": False, "force": False}
        self.security = "token"
        self.pidfile = root / "none.pid"

    def write(self, **dhcp: Any) -> None:
        self.settings.update(dhcp)
        d = self.settings
        self.config.write_text(
            f"""[server]
url = "auto"
interface = "eth0"
listen = "0.0.0.0:8080"
[dhcp]
mode = "{d["mode"]}"
ntp = ["auto"]
force = {str(d["force"]).lower()}
auto_enrol = {str(d["auto_enrol"]).lower()}
default_type = "D100"
hostsdir = "hosts"
optsdir = "opts"
dnsmasq_pidfile = "{self.pidfile}"
[security]
mode = "{self.security}"
secret_file = "secret"
[paths]
inventory = "inventory.toml"
state = "state.db"
"""
        )

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [PHONEPROV, *args, "--config", str(self.config)]
        return self.lab.run(self.appliance, argv, check=check)

    def options(self, mac: str) -> dict[str, Any]:
        return dict(json.loads(self.cli("options", mac, "--json").stdout))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if not self.state.exists():  # the hook creates it on its first event
            return []
        db = sqlite3.connect(f"file:{self.state}?mode=ro", uri=True)
        try:
            return list(db.execute(sql))
        except sqlite3.OperationalError:  # created, schema not yet written
            return []
        finally:
            db.close()


@pytest.fixture
def site(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    root = Path(tempfile.mkdtemp(prefix="ppdns-site-"))
    root.chmod(0o755)  # dnsmasq reads hostsdir/optsdir as nobody
    site = Site(lab, appliance, root)
    site.inventory.write_text(INVENTORY)
    site.write()
    # dnsmasq passes it to the (shipped, unbound) hook
    monkeypatch.setenv("PHONEPROV_HOOK_SETTINGS", str(site.root / "hosts" / ".phoneprov-applied"))
    try:
        yield site
    finally:
        remove_site(root)


@pytest.fixture
def start_dnsmasq(site: Site, dnsmasq_factory: Callable[..., Dnsmasq]) -> Callable[..., Dnsmasq]:
    def start(expect_alive: bool = True) -> Dnsmasq:
        snippet = site.cli("dnsmasq-snippet").stdout
        assert f"dhcp-script={HOOK}" in snippet
        for name in ("hosts", "opts"):  # as the README's install does before starting dnsmasq
            (site.root / name).mkdir(mode=0o755, exist_ok=True)
        dm = dnsmasq_factory(site.appliance, conf=snippet, expect_alive=expect_alive)
        site.pidfile = dm.pidfile
        site.write()
        return dm

    return start


def exchange(lab: Lab, name: str, mac: str, **kwargs: Any) -> DhcpLease:
    host = lab.hosts.get(name) or lab.add_host(name, mac=mac)
    return dhcp_exchange(host.netns, host.ifname, mac, **kwargs)


def assert_options(lease: DhcpLease, expected: dict[str, Any]) -> None:
    """The exact bytes on the wire are the ones `phoneprov options` computed."""
    assert lease.option(66) == expected["66"].encode() + b"\0"
    assert lease.option(67) == expected["67"].encode() + b"\0"
    assert lease.option(43) == bytes.fromhex(expected["43"].replace(":", ""))
    assert lease.option(42) == b"".join(bytes(map(int, a.split("."))) for a in expected["42"])


def assert_no_options(lease: DhcpLease) -> None:
    assert [lease.option(code) for code in (42, 43, 66, 67)] == [None] * 4


def wait_until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """The hook runs after the ACK, asynchronously: poll its database with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_inventoried_phone_gets_exact_options_others_none(lab: Lab, site: Site, start_dnsmasq):
    dm = start_dnsmasq()
    assert site.cli("apply").stdout.startswith("ok: 1 written")
    dm.wait_for_line(r"read .*/hosts/00095200000E$")
    expected = site.options(PHONE_MAC)
    assert expected["66"] == "http://10.231.0.1:8080"
    assert expected["67"].startswith("t/") and expected["42"] == ["10.231.0.1"]
    assert expected["applied"] is True

    lease = exchange(lab, "phone", PHONE_MAC, vendor_class="Auerswald D200")
    assert_options(lease, expected)
    assert_no_options(exchange(lab, "stranger", STRANGER_MAC))
    assert not [line for line in dm.lines if "phoneprov-hook" in line or " at line " in line]

    # the hook recorded the lease with the right IP (and what dnsmasq told it)
    mac = PHONE_MAC.replace(":", "").upper()
    row = wait_until(lambda: site.rows(f"SELECT ip, vendor_class FROM leases WHERE mac='{mac}'"))
    assert row == [(lease.ip, "Auerswald D200")]
    shown = site.cli("leases", "--json").stdout
    assert {(r["mac"], r["ip"]) for r in json.loads(shown)} >= {(mac, lease.ip)}


def test_edit_and_remove_without_restart(lab: Lab, site: Site, start_dnsmasq):
    dm = start_dnsmasq(expect_alive=False)  # stopped by this test, checked by hand
    pid = dm.pid
    site.cli("apply")
    dm.wait_for_line(r"read .*/hosts/00095200000E$")
    first = exchange(lab, "phone", PHONE_MAC)
    assert_options(first, site.options(PHONE_MAC))

    site.security = "lease"  # no token in 67 any more: a changed device
    site.write(mode="66+67")
    reads = len(dm.lines)
    assert site.cli("apply").stdout.startswith("ok: 1 written")
    dm.wait_for_line(r"read .*/hosts/00095200000E$")  # the new host line
    assert any("/hosts/00095200000E" in line for line in dm.lines[reads:])
    second = exchange(lab, "phone", PHONE_MAC)
    expected = site.options(PHONE_MAC)
    assert expected["67"] == "prov.py?mac=<MACADR>" and expected["43"] is None
    assert second.option(66) == b"http://10.231.0.1:8080\0"
    assert second.option(67) == b"prov.py?mac=<MACADR>\0"
    assert second.option(43) is None  # the old generation's 43 is not sent any more
    assert second.option(42) == bytes([10, 231, 0, 1])

    site.inventory.write_text(INVENTORY.split("[[devices]]")[0])
    reads = len(dm.lines)
    assert "1 removed" in site.cli("apply").stdout
    wait_until(lambda: any("/hosts/00095200000E" in line for line in dm.lines[reads:]))
    assert_no_options(exchange(lab, "phone", PHONE_MAC))
    assert dm.alive() and dm.pid == pid  # never restarted, never SIGHUPed

    # once a dnsmasq started after the tombstone runs, apply drops the tombstone
    dm.stop()
    start_dnsmasq()
    assert "1 tombstones dropped" in site.cli("apply").stdout
    assert not (site.root / "hosts" / "00095200000E").exists()
    assert_no_options(exchange(lab, "phone", PHONE_MAC))


def handled_so_far(site: Site, dm: Dnsmasq, name: str) -> None:
    """dnsmasq handles inotify events in order: once it read this new file, it has handled
    every change made before it (a name apply leaves alone: not 12 hex digits)."""
    temp = site.root / "hosts" / f".{name}"
    temp.write_text("02:00:5e:99:99:99,set:sentinel\n")
    temp.chmod(0o644)
    os.replace(temp, site.root / "hosts" / name)
    dm.wait_for_line(rf"read .*/hosts/{name}$")


def test_removing_a_phone_makes_dnsmasq_log_no_error(lab: Lab, site: Site, start_dnsmasq):
    first = start_dnsmasq(expect_alive=False)  # restarted by this test
    site.cli("apply")
    first.wait_for_line(r"read .*/hosts/00095200000E$")
    site.inventory.write_text(INVENTORY.split("[[devices]]")[0])
    assert "1 removed" in site.cli("apply").stdout  # a tombstone, and its opts file goes
    assert not (site.root / "opts" / "00095200000E").exists()
    handled_so_far(site, first, "sentinel-1")
    first.stop()
    second = start_dnsmasq()
    assert "1 tombstones dropped" in site.cli("apply").stdout  # the tombstone goes too
    assert not (site.root / "hosts" / "00095200000E").exists()
    handled_so_far(site, second, "sentinel-2")
    logged = first.lines + second.lines
    assert not [line for line in logged if "cannot read" in line or "No such file" in line]
    assert_no_options(exchange(lab, "phone", PHONE_MAC))


def test_unknown_vendor_phone_is_discovered_then_auto_enrolled(lab, site: Site, start_dnsmasq):
    dm = start_dnsmasq()
    site.cli("apply")
    mac = UNKNOWN_PHONE_MAC.replace(":", "").upper()
    lease = exchange(lab, "newphone", UNKNOWN_PHONE_MAC)
    assert_no_options(lease)
    assert wait_until(lambda: site.rows(f"SELECT ip FROM discovered WHERE mac='{mac}'")) == [
        (lease.ip,)
    ]
    shown = json.loads(site.cli("discovered", "--json").stdout)
    assert [(d["mac"], d["enrolled"]) for d in shown] == [(mac, False)]
    assert site.options(UNKNOWN_PHONE_MAC)["66"] is None

    site.write(auto_enrol=True)
    site.cli("apply")  # the hook takes its settings from the last apply
    exchange(lab, "newphone", UNKNOWN_PHONE_MAC)  # enrolled by the hook after this ACK
    dm.wait_for_line(rf"read .*/hosts/{mac}$")
    enrolled = exchange(lab, "newphone", UNKNOWN_PHONE_MAC)
    expected = site.options(UNKNOWN_PHONE_MAC)
    assert expected["source"].startswith("auto-enrolled (D100)") and expected["applied"]
    assert_options(enrolled, expected)
    assert site.rows("SELECT mac, type FROM enrolled") == [(mac, "D100")]
    assert "phoneprov-hook: error" not in "\n".join(dm.lines)


def test_vendor_wide_mode(lab: Lab, site: Site, start_dnsmasq):
    site.security = "lease"
    site.write(mode="vendor")
    start_dnsmasq()
    expected = site.options(UNKNOWN_PHONE_MAC)
    assert expected["source"].startswith("vendor-wide")
    assert_options(exchange(lab, "newphone", UNKNOWN_PHONE_MAC), expected)
    assert_no_options(exchange(lab, "stranger", STRANGER_MAC))


def test_forced_options_reach_a_phone_that_does_not_ask(lab: Lab, site: Site, start_dnsmasq):
    site.security = "lease"
    site.write(mode="66+67", force=True)
    dm = start_dnsmasq()
    site.cli("apply")
    dm.wait_for_line(r"read .*/hosts/00095200000E$")
    lease = exchange(lab, "phone", PHONE_MAC, requested=(1, 3, 42))
    assert lease.option(66) == b"http://10.231.0.1:8080\0"
    assert lease.option(67) == b"prov.py?mac=<MACADR>\0"
    assert_no_options(exchange(lab, "stranger", STRANGER_MAC, requested=(1, 3, 42)))


def test_garbage_to_the_hook_loses_nothing(lab: Lab, site: Site, start_dnsmasq):
    dm = start_dnsmasq()
    site.cli("apply")
    lease = exchange(lab, "phone", PHONE_MAC)
    mac = PHONE_MAC.replace(":", "").upper()
    assert wait_until(lambda: site.rows("SELECT ip FROM leases")) == [(lease.ip,)]
    before = site.rows("SELECT * FROM leases")
    env = {
        "PATH": os.environ["PATH"],
        "PHONEPROV_HOOK_SETTINGS": str(site.root / "hosts" / ".phoneprov-applied"),
    }
    for argv, extra in [
        ([], {}),
        (["add"], {}),
        (["add", "not-a-mac", "10.231.0.5"], {}),
        (["old", PHONE_MAC, "999.1.1.1"], {}),
        (["bogus", "\udcff", "x"], {}),
        (
            ["add", PHONE_MAC, "10.231.0.9"],
            {"PHONEPROV_HOOK_SETTINGS": "/nonexistent/.phoneprov-applied"},
        ),
        (["del", PHONE_MAC], {"DNSMASQ_LEASE_EXPIRES": "soon"}),
    ]:
        run = subprocess.run(
            [str(HOOK), *argv], env={**env, **extra}, capture_output=True, text=True, timeout=30
        )
        assert run.returncode == 0, run.stderr
        assert run.stderr.startswith("phoneprov-hook: error:"), (argv, run.stderr)
    assert site.rows("SELECT * FROM leases") == before
    assert site.rows(f"SELECT ip FROM leases WHERE mac='{mac}' AND active=1") == [(lease.ip,)]
    assert dm.alive()


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_a_locked_database_holds_up_no_event_and_loses_none(lab: Lab, site: Site, start_dnsmasq):
    dm = start_dnsmasq()
    site.cli("apply")
    first = exchange(lab, "phone", PHONE_MAC)
    assert wait_until(lambda: site.rows("SELECT ip FROM leases")) == [(first.ip,)]
    clients = {f"02:00:5e:10:00:{i:02x}": f"pc{i}" for i in range(1, 4)}
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(site.state), "12"], stdout=subprocess.PIPE, text=True
    )
    with locker:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        got = {
            mac.replace(":", "").upper(): exchange(lab, name, mac).ip
            for mac, name in clients.items()
        }

        def kept() -> int:
            return sum("event kept in" in line for line in dm.lines)

        # dnsmasq ran the hook for every event while the lock was still held: none waited
        assert wait_until(lambda: kept() >= len(clients), 6) and locker.poll() is None, dm.lines[
            -5:
        ]
        assert locker.wait(timeout=30) == 0
    # written once the lock is gone, with no further DHCP event
    rows = "SELECT mac, ip FROM leases WHERE mac LIKE '02005E%'"
    assert wait_until(lambda: dict(site.rows(rows)) == got, 20), site.rows(rows)
    assert not [line for line in dm.lines if "phoneprov-hook: error" in line]


def test_leasefile_ro_init_hands_dnsmasq_our_leases(lab: Lab, site: Site, dnsmasq_factory):
    site.cli("apply")  # makes hosts/ and opts/, and the settings the hook reads
    snippet = site.cli("dnsmasq-snippet").stdout
    first = dnsmasq_factory(site.appliance, ["--leasefile-ro"], conf=snippet, expect_alive=False)
    lease = exchange(lab, "phone", PHONE_MAC, hostname="d200")
    mac = PHONE_MAC.replace(":", "").upper()
    assert wait_until(lambda: site.rows(f"SELECT ip FROM leases WHERE mac='{mac}'"))
    first.stop()
    assert not first.leases()  # --leasefile-ro: dnsmasq kept no lease file of its own
    second = dnsmasq_factory(site.appliance, ["--leasefile-ro"], conf=snippet)
    init = site.lab.run(
        site.appliance, [str(HOOK), "init"], check=True
    )  # what dnsmasq read at start
    assert init.stdout.split()[1:4] == [PHONE_MAC, lease.ip, "d200"]
    again = exchange(lab, "phone", PHONE_MAC)
    assert again.ip == lease.ip
    assert not [line for line in second.lines if "phoneprov-hook" in line]
