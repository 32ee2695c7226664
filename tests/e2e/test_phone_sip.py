"""The phone's side of SIP against sipp, in a lab: PnP discovery and the check-sync listener.

sipp cannot join a multicast group itself. The PnP server runs as `sipp -i 0.0.0.0` (bound
to INADDR_ANY, as DESIGN §3b asks: not the unicast IP) while the test holds a socket that
joined 224.0.1.75 on the appliance's eth0; with Linux's default IP_MULTICAST_ALL=1 that
membership delivers the group's datagrams to sipp's socket too.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from phoneprov.core.markers import DeviceInfo
from phoneprov.core.sipdialog import PNP_GROUP, read_pnp_subscribe
from phoneprov.core.sipmsg import Request, parse_message, top_via
from phoneprov.lab import Host, Lab, call_in_netns
from phoneprov.phone.check_sync import CheckSyncListener
from phoneprov.phone.pnp_client import discover, discover_url
from phoneprov.phone.simulator import Options, Report, resync_on_check_sync, simulate

pytestmark = pytest.mark.e2e

SCENARIOS = Path(__file__).parent / "sipp_phone"
APPLIANCE_IP = "10.231.0.1"
PHONE_IP = "10.231.0.50"
PHONE_MAC = "00:09:52:00:00:0e"
DEVICE = DeviceInfo(PHONE_MAC, "D200", "S123")
URL = f"http://{APPLIANCE_IP}:8080/prov/<MACADR>.xml"
SIPP_TIMEOUT = 15.0


@pytest.fixture
def hosts(lab: Lab) -> tuple[Host, Host]:
    if shutil.which("sipp") is None:
        pytest.skip("needs sipp (Debian package sip-tester)")
    appliance = lab.add_host("appl", f"{APPLIANCE_IP}/24")
    phone = lab.add_host("phone", f"{PHONE_IP}/24", mac=PHONE_MAC)
    return appliance, phone


def _membership(bind_port: int | None) -> socket.socket:
    """A socket that joined the PnP group on eth0 (bound to the group:port if asked)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if bind_port is not None:
            sock.bind((PNP_GROUP, bind_port))
        index = socket.if_nametoindex("eth0")
        mreqn = struct.pack("=4s4si", socket.inet_aton(PNP_GROUP), bytes(4), index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    except OSError:
        sock.close()
        raise
    return sock


@pytest.fixture
def group_member(hosts: tuple[Host, Host]) -> Iterator[None]:
    with call_in_netns(hosts[0].netns, _membership, None):
        yield


def _wait_listening(lab: Lab, host: Host, proto: str, port: int, proc: subprocess.Popen) -> None:
    """Poll `ss` until something listens on `port` (sipp and http.server give no signal)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode} before listening")
        out = lab.run(host, ["ss", "-Hln", f"-{proto}", f"sport = :{port}"]).stdout
        if out.strip():
            return
        time.sleep(0.02)
    pytest.fail(f"nothing listens on {proto} port {port} in {host.netns}")


def _sipp_argv(scenario: str, logs: Path, *args: str) -> list[str]:
    return [
        "sipp", *args, "-sf", str(SCENARIOS / scenario), "-m", "1", "-nostdin",
        "-default_behaviors", "all,-bye", "-timeout", f"{SIPP_TIMEOUT:g}s", "-timeout_error",
        "-trace_err", "-error_file", str(logs / f"{scenario}.err"),
        "-trace_msg", "-message_file", str(logs / f"{scenario}.msg"),
    ]  # fmt: skip


def _sipp_failed(logs: Path, scenario: str, rc: int) -> str:
    parts = [f"sipp {scenario} exited {rc}"]
    for suffix in ("err", "msg"):
        path = logs / f"{scenario}.{suffix}"
        if path.exists():
            parts.append(path.read_text(errors="replace")[-3000:])
    return "\n".join(parts)


def _pnp_server(lab: Lab, appliance: Host, logs: Path) -> subprocess.Popen:
    argv = _sipp_argv(
        "pnp_server.xml", logs,
        "-i", "0.0.0.0", "-p", "5060", "-key", "url", URL, "-key", "server_ip", APPLIANCE_IP,
    )  # fmt: skip
    proc = lab.spawn(appliance, argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(lab, appliance, "u", 5060, proc)
    return proc


def _ended(lab: Lab, proc: subprocess.Popen) -> int:
    """sipp ends on its own once the scenario is through; wait for that, then reap."""
    try:
        proc.wait(SIPP_TIMEOUT)
    finally:
        lab.stop(proc)
    return proc.returncode


def test_pnp_url_from_sipp_notify(lab: Lab, hosts, group_member, tmp_path: Path) -> None:
    appliance, phone = hosts
    server = _pnp_server(lab, appliance, tmp_path)
    found = discover(DEVICE, netns=phone.netns, timeout=5.0)
    rc = _ended(lab, server)
    assert rc == 0, _sipp_failed(tmp_path, "pnp_server.xml", rc)
    assert found is not None
    assert found.url == URL  # markers are the simulator's job, not discovery's
    assert found.source == (APPLIANCE_IP, 5060)
    # the phone's SUBSCRIBE as sipp received it (sipp also checked Event vendor and Accept)
    log = (tmp_path / "pnp_server.xml.msg").read_text()
    assert "SUBSCRIBE sip:MAC%3a00095200000E@224.0.1.75 SIP/2.0" in log
    assert f"Contact: <sip:{PHONE_IP}:5060>" in log


def test_pnp_mac_from_interface(lab: Lab, hosts, group_member, tmp_path: Path) -> None:
    appliance, phone = hosts
    server = _pnp_server(lab, appliance, tmp_path)
    url = discover_url(DeviceInfo(type="D100"), netns=phone.netns, timeout=5.0)
    rc = _ended(lab, server)
    assert rc == 0, _sipp_failed(tmp_path, "pnp_server.xml", rc)
    assert url == URL
    log = (tmp_path / "pnp_server.xml.msg").read_text()
    assert 'model="D100"' in log and "From: <sip:MAC%3a00095200000E@224.0.1.75>" in log


def test_pnp_no_answer_is_none_within_timeout(lab: Lab, hosts) -> None:
    appliance, phone = hosts
    with call_in_netns(appliance.netns, _membership, 5060) as listener:
        started = time.monotonic()
        assert discover_url(DEVICE, netns=phone.netns, timeout=2.0) is None
        elapsed = time.monotonic() - started
        listener.setblocking(False)
        copies = []
        while True:
            try:
                copies.append(listener.recvfrom(65_535))
            except BlockingIOError:
                break
    assert 1.9 < elapsed < 2.5
    # sent at 0, 0.5 and 1.5 s (T1 doubling), the same transaction each time
    assert len(copies) == 3
    requests = [parse_message(data) for data, _ in copies]
    assert all(isinstance(r, Request) for r in requests)
    assert len({data for data, _ in copies}) == 1  # same branch, Call-ID, CSeq: one transaction
    assert {source for _, source in copies} == {(PHONE_IP, 5060)}
    subscribe = requests[0]
    assert isinstance(subscribe, Request)
    assert (top_via(subscribe).branch or "").startswith("z9hG4bK")
    assert read_pnp_subscribe(subscribe).mac == "00095200000E"


def _uac(lab: Lab, appliance: Host, scenario: str, logs: Path, event: str, *keys: str) -> None:
    argv = _sipp_argv(scenario, logs, "-i", APPLIANCE_IP, "-key", "event", event, *keys)
    argv.append(f"{PHONE_IP}:5060")
    result = lab.run(appliance, argv, timeout=SIPP_TIMEOUT + 5, check=False)
    assert result.returncode == 0, _sipp_failed(logs, scenario, result.returncode)


def test_check_sync_answered_and_reported(lab: Lab, hosts, tmp_path: Path) -> None:
    appliance, phone = hosts
    with (
        CheckSyncListener(netns=phone.netns) as listener,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        assert listener.address == (PHONE_IP, 5060)
        waiting = pool.submit(listener.wait, SIPP_TIMEOUT)
        # another event package: 489 Bad Event (sipp checks Allow-Events), still waiting
        _uac(lab, appliance, "bad_event_uac.xml", tmp_path, "presence")
        assert not waiting.done()
        _uac(lab, appliance, "check_sync_uac.xml", tmp_path, "check-sync;reboot=false")
        got = waiting.result(timeout=5.0)
    assert got is not None
    assert got.header == "check-sync;reboot=false"
    assert got.event.package == "check-sync" and got.reboot is False
    assert got.source[0] == APPLIANCE_IP
    assert listener.sock is None and listener.answered == 2


def test_check_sync_timeout_is_none(lab: Lab, hosts) -> None:
    _, phone = hosts
    with CheckSyncListener(netns=phone.netns) as listener:
        started = time.monotonic()
        assert listener.wait(0.3) is None
        assert 0.29 < time.monotonic() - started < 1.0


SETTINGS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<configuration><identities version="1.34.0" '
    'patch="true"><identity><active>true</active><username>{user}</username></identity>'
    "</identities></configuration>"
)
WEB = f"http://{APPLIANCE_IP}:8080"


def _provisioned(lab: Lab, hosts, tmp_path: Path) -> tuple[Path, Report]:
    """A web server on the appliance serving `www/`, and a first provisioning from it."""
    appliance, phone = hosts
    docroot = tmp_path / "www"
    docroot.mkdir()
    (docroot / "00095200000E.xml").write_text(SETTINGS.format(user="201"))
    web = lab.spawn(
        appliance,
        ["python3", "-m", "http.server", "--bind", APPLIANCE_IP, "--directory", str(docroot),
         "8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait_listening(lab, appliance, "t", 8080, web)
    options = Options(WEB, "<MACADR>.xml", None, (APPLIANCE_IP,))
    first = simulate(DEVICE, options=options, netns=phone.netns)
    assert first.ok, first.steps
    assert [(i.index, i.username, i.active) for i in first.identities] == [(1, "201", True)]
    return docroot, first


def _resync(lab: Lab, hosts, first: Report, tmp_path: Path, scenario: str, *keys: str) -> Report:
    appliance, phone = hosts
    bound = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        second = pool.submit(
            resync_on_check_sync, first, netns=phone.netns, timeout=SIPP_TIMEOUT,
            listening=lambda _address: bound.set(),
        )  # fmt: skip
        assert bound.wait(5.0)
        _uac(lab, appliance, scenario, tmp_path, "check-sync", *keys)
        again = second.result(timeout=SIPP_TIMEOUT)
    assert again.ok, again.steps
    assert [s["step"] for s in again.steps] == ["check-sync", "fetch", "apply"]
    return again


def test_simulator_resyncs_on_check_sync(lab: Lab, hosts, tmp_path: Path) -> None:
    """Provision from a web server, change the device's file, check-sync: the second round
    fetches the same URL again and applies the new value."""
    docroot, first = _provisioned(lab, hosts, tmp_path)
    (docroot / "00095200000E.xml").write_text(SETTINGS.format(user="202"))
    again = _resync(lab, hosts, first, tmp_path, "check_sync_uac.xml")
    assert "no URL in it" in again.steps[0]["detail"]
    assert again.url == first.url == f"{WEB}/00095200000E.xml"
    assert [i.username for i in again.identities] == ["202"]


def test_simulator_fetches_the_url_check_sync_names(lab: Lab, hosts, tmp_path: Path) -> None:
    """A check-sync whose notifySync body names a URL: the phone fetches that one directly."""
    docroot, first = _provisioned(lab, hosts, tmp_path)
    (docroot / "other.xml").write_text(SETTINGS.format(user="203"))
    url = f"{WEB}/other.xml"
    again = _resync(lab, hosts, first, tmp_path, "check_sync_url_uac.xml", "-key", "url", url)
    assert f"its body names {url}" in again.steps[0]["detail"]
    assert (again.path, again.url) == ("check-sync", url)
    assert [i.username for i in again.identities] == ["203"]
