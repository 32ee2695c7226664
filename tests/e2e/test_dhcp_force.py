"""`dhcp.force` against the real dnsmasq 2.90 and clients that do not ask for 42/43/66/67.

What dnsmasq does (seen here, DESIGN §3): an option is sent only when the client lists it in
option 55, unless it is forced; options read from dhcp-optsdir cannot be forced, and an
optsdir line for an option beats a forced snippet line for it. Unasked, unforced 66/67 still
travel in the BOOTP `sname`/`file` header fields. So with force, `phoneprov apply` leaves the
opts files empty and the snippet forces 42/43/66/67 for tag `phoneprov`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.core.dhcp import url_from_options
from phoneprov.core.markers import DeviceInfo
from phoneprov.lab import Host, Lab
from phoneprov.lab.dnsmasq import Dnsmasq
from phoneprov.phone.dhcp_client import DhcpLease, dhcp_exchange
from sample_data import remove_site

pytestmark = pytest.mark.e2e

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
SERVER = "http://10.231.0.1:8080"
NTP = "10.231.0.1"
PHONE_MAC = "00:09:52:00:00:0e"
STRANGER_MAC = "02:00:5e:10:00:01"
NOT_ASKING = (1, 3, 6)  # option 55 without 42, 43, 66 and 67
URL = f"{SERVER}/prov.py?mac=00095200000E"
INVENTORY = """
[profiles.default]
templates = ["office.xml"]

[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"
"""
UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc calls this with the event as $1 and what it got in the environment
[ "$1" = bound ] || exit 0
{ echo "ip=$ip"; echo "opt43=$opt43"; echo "ntpsrv=$ntpsrv"; echo "sname=$sname"
  echo "boot_file=$boot_file"; echo "tftp=$tftp"; echo "bootfile=$bootfile"; } > "$0.out"
"""


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    """Namespaces ppforce<pid>.<n>-*, removed in Lab.close() (also on failure)."""
    with Lab("ppforce") as the_lab:
        yield the_lab


class Site:
    """A config, inventory and state in one directory dnsmasq (as nobody) can read."""

    def __init__(self, lab: Lab, appliance: Host, root: Path) -> None:
        self.lab, self.appliance, self.root = lab, appliance, root
        self.config = root / "phoneprov.toml"
        (root / "inventory.toml").write_text(INVENTORY)

    def write(self, mode: str, force: bool) -> None:
        self.config.write_text(
            f"""[server]
url = "{SERVER}"
interface = "eth0"
[dhcp]
mode = "{mode}"
ntp = ["{NTP}"]
force = {str(force).lower()}
hostsdir = "hosts"
optsdir = "opts"
dnsmasq_pidfile = "none.pid"
[security]
mode = "lease"
secret_file = "secret"
[paths]
inventory = "inventory.toml"
state = "state.db"
"""
        )

    def cli(self, *args: str) -> str:
        argv = [PHONEPROV, *args, "--config", str(self.config)]
        return self.lab.run(self.appliance, argv).stdout

    def options(self, mac: str) -> dict[str, Any]:
        return dict(json.loads(self.cli("options", mac, "--json")))


@pytest.fixture
def site(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    root = Path(tempfile.mkdtemp(prefix="ppforce-site-"))
    root.chmod(0o755)
    # the shipped hook (dhcp-script in the snippet) reads what apply wrote here
    monkeypatch.setenv("PHONEPROV_HOOK_SETTINGS", str(root / "hosts" / ".phoneprov-applied"))
    try:
        yield Site(lab, appliance, root)
    finally:
        remove_site(root)


@pytest.fixture
def serve(site: Site, dnsmasq_factory: Callable[..., Dnsmasq]) -> Callable[[str, bool], Dnsmasq]:
    """Write the config, start dnsmasq with the snippet phoneprov prints for it, apply."""

    def start(mode: str, force: bool) -> Dnsmasq:
        site.write(mode, force)
        for name in ("hosts", "opts"):
            (site.root / name).mkdir(mode=0o755, exist_ok=True)
        dm = dnsmasq_factory(site.appliance, conf=site.cli("dnsmasq-snippet"))
        assert site.cli("apply").startswith("ok: 1 written")
        dm.wait_for_line(r"read .*/hosts/00095200000E$")
        return dm

    return start


def exchange(lab: Lab, name: str, mac: str, **kwargs: Any) -> DhcpLease:
    host = lab.hosts.get(name) or lab.add_host(name, mac=mac)
    return dhcp_exchange(host.netns, host.ifname, mac, **kwargs)


def wire(expected: dict[str, Any]) -> dict[int, bytes | None]:
    """`phoneprov options --json` as the bytes dnsmasq puts on the wire (NUL after 66/67)."""
    return {
        42: bytes(map(int, NTP.split("."))) if expected["42"] else None,
        43: bytes.fromhex(expected["43"].replace(":", "")) if expected["43"] else None,
        66: expected["66"].encode() + b"\0" if expected["66"] else None,
        67: expected["67"].encode() + b"\0" if expected["67"] else None,
    }


@pytest.mark.parametrize("mode", ["43", "both", "66+67"])
def test_force_reaches_a_phone_that_asks_for_none_of_them(lab: Lab, site: Site, serve, mode):
    serve(mode, True)
    expected = site.options(PHONE_MAC)
    assert expected["url"] == URL and expected["applied"] is True
    lease = exchange(lab, "phone", PHONE_MAC, requested=NOT_ASKING)
    assert {code: lease.option(code) for code in (42, 43, 66, 67)} == wire(expected)
    assert lease.option(42) == bytes([10, 231, 0, 1])
    assert (site.root / "opts" / "00095200000E").read_text() == ""  # all in the snippet
    if mode != "66+67":
        assert url_from_options(option43=lease.option(43), device=DeviceInfo()).url == (
            f"{SERVER}/prov.py?mac=<MACADR>"
        )
    stranger = exchange(lab, "stranger", STRANGER_MAC, requested=NOT_ASKING)
    assert [stranger.option(code) for code in (42, 43, 66, 67)] == [None] * 4
    assert (stranger.sname.rstrip(b"\0"), stranger.file.rstrip(b"\0")) == (b"", b"")


def test_without_force_unasked_43_and_42_are_not_sent(lab: Lab, site: Site, serve):
    """Why force must cover 43: in mode 43 a phone that does not ask gets no URL at all."""
    serve("43", False)
    lease = exchange(lab, "phone", PHONE_MAC, requested=NOT_ASKING)
    assert [lease.option(code) for code in (42, 43, 66, 67)] == [None] * 4
    assert (lease.sname.rstrip(b"\0"), lease.file.rstrip(b"\0")) == (b"", b"")
    asking = exchange(lab, "phone", PHONE_MAC)  # the D-series request list
    assert asking.option(43) == wire(site.options(PHONE_MAC))[43]


def test_without_force_unasked_66_67_ride_in_the_bootp_header(lab: Lab, site: Site, serve):
    serve("both", False)
    lease = exchange(lab, "phone", PHONE_MAC, requested=NOT_ASKING)
    assert [lease.option(code) for code in (42, 43, 66, 67)] == [None] * 4
    assert lease.sname.rstrip(b"\0") == SERVER.encode()
    assert lease.file.rstrip(b"\0") == b"prov.py?mac=<MACADR>"
    asking = exchange(lab, "phone", PHONE_MAC, requested=(1, 3, 66, 67))
    assert asking.option(66) == SERVER.encode() + b"\0"
    assert (asking.sname.rstrip(b"\0"), asking.file.rstrip(b"\0")) == (b"", b"")


def udhcpc(lab: Lab, name: str, mac: str, workdir: Path) -> dict[str, str]:
    """busybox udhcpc with its own request list (1,3,6,12,15,28,42: no 43/66/67), bounded."""
    host = lab.hosts.get(name) or lab.add_host(name, mac=mac)
    script = workdir / f"udhcpc-{name}.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    argv = ["busybox", "udhcpc", "-i", host.ifname, "-f", "-q", "-n", "-t", "4", "-T", "1"]
    result = lab.run(host, [*argv, "-s", str(script)], timeout=20, check=False)
    assert result.returncode == 0, result.stderr
    out = Path(f"{script}.out").read_text()
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox (udhcpc)")
def test_busybox_udhcpc_gets_the_forced_43(lab: Lab, site: Site, serve):
    serve("43", True)
    got = udhcpc(lab, "phone", PHONE_MAC, site.root)
    assert got["opt43"] == site.options(PHONE_MAC)["43"].replace(":", "")
    assert got["ntpsrv"] == NTP
    assert url_from_options(option43=got["opt43"]).url == f"{SERVER}/prov.py?mac=<MACADR>"


@pytest.mark.skipif(shutil.which("busybox") is None, reason="needs busybox (udhcpc)")
def test_busybox_udhcpc_unforced_sees_66_67_only_as_sname_and_file(lab: Lab, site: Site, serve):
    serve("both", False)
    got = udhcpc(lab, "phone", PHONE_MAC, site.root)
    assert (got["opt43"], got["tftp"], got["bootfile"]) == ("", "", "")
    assert (got["sname"], got["boot_file"]) == (SERVER, "prov.py?mac=<MACADR>")
    assert got["ntpsrv"] == NTP  # udhcpc asks for 42 itself
