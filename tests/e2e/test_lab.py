"""The lab for real: namespaces on one LAN, a real dnsmasq, a real DHCP exchange."""

from __future__ import annotations

import os
import time

import pytest
from pyroute2 import IPRoute, netns

from phoneprov.core.errors import InputError
from phoneprov.lab import Lab, call_in_netns, socket_in
from phoneprov.lab.dnsmasq import Dnsmasq, DnsmasqError
from phoneprov.lab.netns import remove_stale, stale_namespaces
from phoneprov.phone.dhcp_client import DhcpTimeout, dhcp_exchange, release_lease

pytestmark = pytest.mark.e2e

PHONE_MAC = "00:09:52:00:00:0e"
OTHER_MAC = "00:09:52:00:00:0f"
OPT43_HEX = "42:0b:68:74:74:70:3a:2f:2f:66:6f:6f:00:43:0c:3c:48:57:54:59:50:3e:2e:62:61:6b:00"
HOST_LINE = f"dhcp-host={PHONE_MAC},set:t1\n"
OPTION_LINES = (
    'dhcp-option=tag:t1,66,"http://10.231.0.1:8080"\n'
    'dhcp-option=tag:t1,67,"prov.py?mac=<MACADR>"\n'
    f"dhcp-option=tag:t1,43,{OPT43_HEX}\n"
    "dhcp-option=tag:t1,42,10.231.0.1\n"
)


def _routes(ifname: str) -> set[str]:
    with IPRoute() as ip:
        index = ip.link_lookup(ifname=ifname)[0]
        return {
            f"{r.get_attr('RTA_DST')}/{r['dst_len']}" for r in ip.get_routes(oif=index, family=2)
        }


def _ours(prefix: str) -> list[str]:
    return [name for name in netns.listnetns() if name.startswith(prefix)]


def test_hosts_share_one_lan(lab: Lab) -> None:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    phone = lab.add_host("phone", "10.231.0.50/24", mac="0009.5200.000E")
    assert phone.mac == PHONE_MAC
    assert set(_ours(lab.prefix)) == {lab.switch, appliance.netns, phone.netns}
    assert "224.0.0.0/4" in call_in_netns(phone.netns, _routes, phone.ifname)
    with socket_in(appliance.netns) as rx, socket_in(phone.netns) as tx:
        rx.bind(("10.231.0.1", 5999))
        rx.settimeout(5)
        tx.sendto(b"hello", ("10.231.0.1", 5999))
        data, (src, _port) = rx.recvfrom(100)
    assert (data, src) == (b"hello", "10.231.0.50")


@pytest.mark.parametrize("where", ["conf-file", "hostsdir+optsdir"])
def test_dhcp_options_byte_exact(lab: Lab, dnsmasq_factory, where: str) -> None:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    phone = lab.add_host("phone", mac=PHONE_MAC)
    other = lab.add_host("other", mac=OTHER_MAC)
    if where == "conf-file":
        dm = dnsmasq_factory(appliance, conf=HOST_LINE + OPTION_LINES)
    else:  # written after start: picked up via inotify, read as user nobody
        dm = dnsmasq_factory(
            appliance,
            ["--dhcp-hostsdir={workdir}/hosts", "--dhcp-optsdir={workdir}/opts"],
            dirs=["hosts", "opts"],
        )
        # files in these dirs hold the values only, without the `dhcp-option=` key
        dm.write_file("opts/phone", OPTION_LINES.replace("dhcp-option=", ""))
        dm.wait_for_line(r"read .*/opts/phone$")
        dm.write_file("hosts/phone", HOST_LINE.removeprefix("dhcp-host="))
        dm.wait_for_line(r"read .*/hosts/phone$")

    lease = dhcp_exchange(phone.netns, phone.ifname, PHONE_MAC, vendor_class="Auerswald D200")
    assert not [line for line in dm.lines if " at line " in line]  # no config parse errors
    assert lease.option(66) == b"http://10.231.0.1:8080\0"
    assert lease.option(67) == b"prov.py?mac=<MACADR>\0"
    assert lease.option(43) == bytes.fromhex(OPT43_HEX.replace(":", ""))
    assert lease.option(42) == bytes([10, 231, 0, 1])
    assert lease.server_id == "10.231.0.1"
    assert lease.mac == PHONE_MAC
    assert lease.ip.startswith("10.231.0.")
    dm.wait_for_line(rf"DHCPACK\(eth0\) {lease.ip} {PHONE_MAC}")
    assert any(line.endswith("vendor class: Auerswald D200") for line in dm.lines)

    plain = dhcp_exchange(other.netns, other.ifname, OTHER_MAC)
    assert plain.option(66) is plain.option(67) is plain.option(43) is None
    assert plain.ip != lease.ip and plain.server_id == "10.231.0.1"
    # no host name or "pyroute2" vendor class unless asked for
    assert {row[1]: row[3] for row in dm.leases()} == {PHONE_MAC: "*", OTHER_MAC: "*"}
    assert not any("pyroute2" in line for line in dm.lines)


def test_release_and_assign(lab: Lab, dnsmasq_factory) -> None:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    phone = lab.add_host("phone", mac=PHONE_MAC)
    dm = dnsmasq_factory(appliance)
    lease = dhcp_exchange(phone.netns, phone.ifname, assign=True)
    assert [row[1:3] for row in dm.leases()] == [[PHONE_MAC, lease.ip]]
    assert f"{lease.ip}/24" in lab.run(phone, ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout

    release_lease(lease)
    dm.wait_for_line(rf"DHCPRELEASE\(eth0\) {lease.ip} {PHONE_MAC}")
    assert lease.ip not in lab.run(phone, ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout

    again = dhcp_exchange(phone.netns, phone.ifname, hostname="d200-lab", release=True)
    dm.wait_for_line(rf"DHCPACK\(eth0\) {again.ip} {PHONE_MAC} d200-lab$")
    dm.wait_for_line(rf"DHCPRELEASE\(eth0\) {again.ip} {PHONE_MAC}")


def test_dhcp_timeout_is_bounded(lab: Lab) -> None:
    phone = lab.add_host("phone", mac=PHONE_MAC)  # nobody answers on this LAN
    started = time.monotonic()
    with pytest.raises(DhcpTimeout, match="no DHCP lease on eth0"):
        dhcp_exchange(phone.netns, phone.ifname, timeout=0.5, retry=0.2)
    assert time.monotonic() - started < 3


def test_dnsmasq_bad_option_fails_fast(lab: Lab) -> None:
    appliance = lab.add_host("appl", "10.231.0.1/24")
    dm = Dnsmasq(appliance.netns, appliance.ifname, extra_args=["--no-such-option"])
    with pytest.raises(DnsmasqError, match="exited"):
        dm.start()
    assert not dm.alive()
    assert not dm.workdir.exists()


def test_teardown_removes_namespaces_and_processes(e2e_ready: None) -> None:
    with Lab() as lab:
        appliance = lab.add_host("appl", "10.231.0.1/24")
        lab.add_host("phone", mac=PHONE_MAC)
        dm = Dnsmasq(appliance.netns, appliance.ifname).start()
        sleeper = lab.spawn(appliance, ["sleep", "60"])
        assert len(_ours(lab.prefix)) == 3
    assert _ours(lab.prefix) == []
    assert sleeper.returncode is not None
    assert dm.alive() is False  # it was inside the lab, so close() killed it too
    dm.stop()


def test_teardown_after_error_removes_everything(e2e_ready: None) -> None:
    lab = Lab()
    with pytest.raises(RuntimeError, match="boom"), lab:
        appliance = lab.add_host("appl", "10.231.0.1/24")
        lab.add_host("phone")
        sleeper = lab.spawn(appliance, ["sleep", "60"])
        assert len(_ours(lab.prefix)) == 3
        raise RuntimeError("boom")
    assert _ours(lab.prefix) == []
    assert sleeper.returncode is not None


def test_stale_namespaces_of_dead_runs_are_found(e2e_ready: None) -> None:
    dead = f"pp0.{os.getpid()}-phone"  # pid 0 never has a /proc entry
    netns.create(dead)
    try:
        assert dead in stale_namespaces("pp")
        with Lab() as lab:
            assert lab.switch not in stale_namespaces("pp")  # our own pid is alive
        assert dead in remove_stale("pp")
        assert dead not in netns.listnetns()
    finally:
        if dead in netns.listnetns():
            netns.remove(dead)


def test_lab_rejects_addresses_outside_its_range(lab: Lab) -> None:
    with pytest.raises(InputError, match=r"10\.231"):
        lab.add_host("appl", "192.168.1.1/24")
    with pytest.raises(InputError, match="host name"):
        lab.add_host("Bad_Name")
