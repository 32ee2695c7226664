"""SIP end to end: `phoneprov pnp` / `phoneprov resync` against sipp playing the phone.

Two network namespaces (`ppsip-<pid>-s` appliance, `ppsip-<pid>-p` phone) joined by a veth
pair, addresses in 10.231.50.0/24, a 224.0.0.0/4 route on each side (DESIGN §3b). Timers are
shortened (T1 = 50 ms, so timer F = 3.2 s). Everything is torn down in `finally`.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyroute2 import IPRoute, netns  # type: ignore[import-untyped]

from phoneprov.state.db import Lease, State

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("sipp") is None, reason="needs sipp (Debian: sip-tester)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
]

SCENARIOS = Path(__file__).parent / "sipp"
APPLIANCE_IP, PHONE_IP = "10.231.50.1", "10.231.50.2"
ATTACKER_IP = "10.231.50.3"  # a second address in the phone's namespace: another LAN host
LAN_IF = "lan0"
PHONE_MAC = "00095200000E"  # in the inventory, with a lease
IDLE_MAC = "00095200000F"  # in the inventory, no lease
STRANGER_MAC = "00095200ABCD"  # not in the inventory (but the vendor's OUI)
SERVER_URL = f"http://{APPLIANCE_IP}:8080"
T1 = 0.05
TIMER_F = 64 * T1
# The lead wires `register` into the main group; until then a group of our own does.
RUNNER = """
from phoneprov.cli import cli, main
if "pnp" not in cli.commands:
    from phoneprov.cli import sip
    sip.register(cli)
main()
"""


@dataclass(frozen=True)
class Lan:
    appliance: str  # namespace names
    phone: str


def _add_end(ns: str, address: str, peer_ns: str | None) -> None:
    with IPRoute(netns=ns) as ipr:
        if peer_ns is not None:  # the peer end is created directly in its namespace
            ipr.link(
                "add", ifname=LAN_IF, kind="veth", peer={"ifname": LAN_IF, "net_ns_fd": peer_ns}
            )
        index = ipr.link_lookup(ifname=LAN_IF)[0]
        ipr.addr("add", index=index, address=address, prefixlen=24)
        ipr.link("set", index=index, state="up")
        ipr.route("add", dst="224.0.0.0/4", oif=index)


@pytest.fixture
def lan() -> Iterator[Lan]:
    names = Lan(f"ppsip-{os.getpid()}-s", f"ppsip-{os.getpid()}-p")
    created: list[str] = []
    try:
        for name in (names.appliance, names.phone):
            netns.create(name)
            created.append(name)
        _add_end(names.appliance, APPLIANCE_IP, peer_ns=names.phone)
        _add_end(names.phone, PHONE_IP, peer_ns=None)
        yield names
    finally:
        for name in created:
            netns.remove(name)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Config + inventory (two known phones) + state (a lease for PHONE_MAC only)."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["base.xml"]\n'
        + "".join(
            f'[[devices]]\nmac = "{mac}"\ntype = "D200"\nprofile = "default"\n'
            for mac in (PHONE_MAC, IDLE_MAC)
        )
    )
    path = tmp_path / "phoneprov.toml"
    path.write_text(
        f'[server]\nurl = "{SERVER_URL}"\ninterface = "{LAN_IF}"\n'
        f'[sip]\npnp_policy = "known"\nt1 = {T1}\n'
        '[sip.check_sync_events]\nD200 = "check-sync;reboot=false"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    with State(tmp_path / "state.db") as state:
        state.record_lease(Lease(PHONE_MAC, PHONE_IP), time.time())
    return path


def phoneprov(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-c", RUNNER, *args]


def sipp(ns: str, scenario: str, logs: Path, *args: str) -> list[str]:
    """sipp as the phone; logs and message trace named explicitly (DESIGN §3b)."""
    return [
        "ip", "netns", "exec", ns, "sipp", *args, "-sf", str(SCENARIOS / scenario),
        "-i", PHONE_IP, "-p", "5060", "-m", "1", "-nostdin", "-default_behaviors", "all,-bye",
        "-trace_logs", "-log_file", str(logs / f"{scenario}.log"),
        "-trace_msg", "-message_file", str(logs / f"{scenario}.msg"),
        "-trace_err", "-error_file", str(logs / f"{scenario}.err"),
    ]  # fmt: skip


def subscribe_argv(lan: Lan, logs: Path, mac: str, model: str, recv_timeout_ms: int) -> list[str]:
    """sipp as a phone multicasting its PnP SUBSCRIBE; fails when nothing answers in time."""
    return sipp(
        lan.phone, "pnp_subscribe.xml", logs, "224.0.1.75:5060",
        "-recv_timeout", str(recv_timeout_ms), "-key", "mac", mac, "-key", "model", model,
    )  # fmt: skip


class Service:
    """A long-running process (by PID) whose stderr lines a test can wait for."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> None:
        """Wait for a stderr line matching `pattern` (instead of sleeping)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return
        raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.seen)}")

    def stop(self) -> tuple[int, str]:
        """SIGTERM by PID; the exit status and all of stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.proc.returncode, "".join(self.seen)


def stop(proc: subprocess.Popen[str]) -> None:
    """End a process we started, by its PID."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def traced(logs: Path, scenario: str, what: str) -> int:
    """How many messages starting with `what` sipp traced."""
    path = logs / f"{scenario}.msg"
    text = path.read_text(errors="replace") if path.exists() else ""
    return len(re.findall(rf"^{re.escape(what)}", text, re.MULTILINE))


def test_pnp_answers_a_known_phone_with_its_url(lan: Lan, config: Path, tmp_path: Path) -> None:
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        phone = subprocess.run(
            subscribe_argv(lan, tmp_path, PHONE_MAC, "D200", recv_timeout_ms=10000),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        log = (tmp_path / "pnp_subscribe.xml.log").read_text()
        assert phone.returncode == 0, phone.stdout[-2000:] + log
        assert f"URL={SERVER_URL}/prov.py?mac={PHONE_MAC}\n" in log
        assert re.search(r"TOTAG=;tag=\w+ CTYPE=application/url", log)
        server.wait_for(rf"NOTIFY to {PHONE_MAC} at {PHONE_IP}:5060: accepted")

        stranger_logs = tmp_path / "stranger"
        stranger_logs.mkdir()
        stranger = subprocess.run(
            subscribe_argv(lan, stranger_logs, STRANGER_MAC, "D200", recv_timeout_ms=2000),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert stranger.returncode != 0  # never answered
        server.wait_for(rf"ignored PnP SUBSCRIBE from {STRANGER_MAC}")
        assert traced(stranger_logs, "pnp_subscribe.xml", "SUBSCRIBE") >= 2  # it retransmitted
        assert traced(stranger_logs, "pnp_subscribe.xml", "SIP/2.0") == 0
    finally:
        status, err = server.stop()
    assert status == 0, err
    assert "PnP responder stopping" in err


def test_pnp_vendor_policy_enrols_a_phone_of_a_configured_oui(
    lan: Lan, config: Path, tmp_path: Path
) -> None:
    config.write_text(config.read_text().replace('"known"', '"vendor"'))
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        phone = subprocess.run(
            subscribe_argv(lan, tmp_path, STRANGER_MAC, "D210", recv_timeout_ms=10000),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert phone.returncode == 0, phone.stdout[-2000:]
    finally:
        server.stop()
    assert (
        f"URL={SERVER_URL}/prov.py?mac={STRANGER_MAC}\n"
        in (tmp_path / "pnp_subscribe.xml.log").read_text()
    )
    with State(tmp_path / "state.db") as state:
        assert [(r["mac"], r["type"]) for r in state.enrolled()] == [(STRANGER_MAC, "D210")]


@pytest.mark.parametrize(
    ("scenario", "status", "report"),
    [
        ("checksync_answer.xml", 0, "accepted (200 OK)"),
        ("checksync_refuse.xml", 1, "refused (486 Busy Here)"),
    ],
)
def test_resync_reports_the_phones_answer(
    lan: Lan, config: Path, tmp_path: Path, scenario: str, status: int, report: str
) -> None:
    phone = subprocess.Popen(
        sipp(lan.phone, scenario, tmp_path, "-timeout", "10"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.3)  # sipp binds at once; it says nothing we could wait for
        result = subprocess.run(
            phoneprov(lan.appliance, "resync", "-c", str(config), PHONE_MAC),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert phone.wait(timeout=10) == 0
    finally:
        stop(phone)
    assert result.returncode == status, result.stderr
    assert result.stdout == f"{PHONE_MAC} {PHONE_IP} {report}\n"
    assert "EVENT=check-sync;reboot=false" in (tmp_path / f"{scenario}.log").read_text()


def test_resync_retransmits_and_reports_no_answer_within_timer_f(
    lan: Lan, config: Path, tmp_path: Path
) -> None:
    phone = subprocess.Popen(
        sipp(lan.phone, "checksync_silent.xml", tmp_path, "-timeout", "20"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        started = time.monotonic()
        result = subprocess.run(
            phoneprov(lan.appliance, "resync", "-c", str(config), "-vv", "--all"),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        stop(phone)
    # sends at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1; the answer is given up at 64T1
    assert result.returncode == 1, result.stderr
    assert result.stdout == (
        f"{PHONE_MAC} {PHONE_IP} no answer (7 sends)\n{IDLE_MAC} - no lease (not sent)\n"
    )
    assert result.stderr.count("retransmitting NOTIFY") == 6
    assert traced(tmp_path, "checksync_silent.xml", "NOTIFY sip:") == 7
    assert TIMER_F <= elapsed < TIMER_F + 3.0


def test_resync_never_sends_to_a_device_without_a_lease(
    lan: Lan, config: Path, tmp_path: Path
) -> None:
    phone = subprocess.Popen(
        sipp(lan.phone, "checksync_silent.xml", tmp_path, "-timeout", "5"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(0.3)
        result = subprocess.run(
            phoneprov(lan.appliance, "resync", "-c", str(config), IDLE_MAC),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        time.sleep(0.2)
    finally:
        stop(phone)
    assert (result.returncode, result.stdout) == (1, f"{IDLE_MAC} - no lease (not sent)\n")
    assert traced(tmp_path, "checksync_silent.xml", "NOTIFY") == 0


def test_resync_refuses_an_unknown_mac(lan: Lan, config: Path) -> None:
    result = subprocess.run(
        phoneprov(lan.appliance, "resync", "-c", str(config), STRANGER_MAC),
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (2, "")
    assert f"not in the inventory: {STRANGER_MAC}" in result.stderr


def add_address(ns: str, address: str) -> None:
    with IPRoute(netns=ns) as ipr:
        index = ipr.link_lookup(ifname=LAN_IF)[0]
        ipr.addr("add", index=index, address=address, prefixlen=24)


def flood(lan: Lan, logs: Path, macs: list[str]) -> subprocess.CompletedProcess[str]:
    """sipp at ATTACKER_IP sending one forged SUBSCRIBE per MAC in `macs`, 1,000 a second;
    it exits once all are sent, so every NOTIFY to it goes unanswered."""
    inf = logs / "macs.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{mac};\n" for mac in macs))
    argv = [
        "ip", "netns", "exec", lan.phone, "sipp", "224.0.1.75:5060",
        "-sf", str(SCENARIOS / "pnp_flood.xml"), "-inf", str(inf), "-i", ATTACKER_IP,
        "-p", "5070", "-m", str(len(macs)), "-r", "1000", "-rp", "1000", "-nostdin",
        "-timeout", "30", "-trace_err", "-error_file", str(logs / "flood.err"),
    ]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_pnp_flood_from_one_host_does_not_silence_pnp(
    lan: Lan, config: Path, tmp_path: Path
) -> None:
    """Issue 11.6: 300 forged SUBSCRIBEs naming an inventoried MAC, NOTIFYs unanswered (timer
    F 20 s here): the phone with that MAC and another phone, at another address, are answered
    at once, and the responder logs a bounded number of lines."""
    config.write_text(config.read_text().replace(f"t1 = {T1}\n", f"t1 = {T1}\ntimer_f = 20\n"))
    add_address(lan.phone, ATTACKER_IP)
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        forged = flood(lan, tmp_path, [PHONE_MAC] * 300)
        assert forged.returncode == 0, forged.stdout[-2000:]
        for mac in (PHONE_MAC, IDLE_MAC):
            logs = tmp_path / mac
            logs.mkdir()
            phone = subprocess.run(
                subscribe_argv(lan, logs, mac, "D200", recv_timeout_ms=3000),
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert phone.returncode == 0, phone.stdout[-2000:]
            log = (logs / "pnp_subscribe.xml.log").read_text()
            assert f"URL={SERVER_URL}/prov.py?mac={mac}\n" in log
    finally:
        status, err = server.stop()
    assert status == 0, err
    assert len(err.splitlines()) <= 60, err


def test_pnp_vendor_flood_enrols_a_bounded_number(lan: Lan, config: Path, tmp_path: Path) -> None:
    """Issue 11.6: 300 forged MACs of the vendor's OUI, source bounds opened wide: enrolment
    stops at enrol_per_minute."""
    text = config.read_text().replace('"known"', '"vendor"')
    keys = "pnp_source_pending = 1000\npnp_source_per_minute = 10000\nenrol_per_minute = 5\n"
    config.write_text(text.replace("[sip]\n", f"[sip]\n{keys}"))
    add_address(lan.phone, ATTACKER_IP)
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        forged = flood(lan, tmp_path, [f"000952{n:06X}" for n in range(0xF000, 0xF000 + 300)])
        assert forged.returncode == 0, forged.stdout[-2000:]
        server.wait_for(r"enrolment limit", timeout=10)
        time.sleep(1.0)  # the policy works through the rest
    finally:
        status, err = server.stop()
    assert status == 0, err
    with State(tmp_path / "state.db") as state:
        assert len(state.enrolled()) == 5
        assert len(state.discovered()) <= 30


def _forms() -> list[tuple[str, str, int, str, str, str, str]]:
    """(name, destination, port, Request-URI, From URI, To URI, Via) as real phones send."""
    group, via = "224.0.1.75", f"SIP/2.0/UDP {PHONE_IP}:5060;branch=z9hG4bKform1;rport"
    mac, lower = PHONE_MAC, PHONE_MAC.lower()
    return [
        ("snom: %3A, port 5062, no branch", group, 5062, f"sip:MAC%3A{mac}@{group}",
         f"sip:MAC%3A{mac}@{group}", f"sip:MAC%3A{mac}@{group}", f"SIP/2.0/UDP {PHONE_IP}:5062"),
        ("MAC<hex> in To/From only", group, 5060, f"sip:{group}", f"sip:MAC{lower}@{group}",
         f"sip:MAC{lower}@{group}", via),
        ("MAC=<hex> in the Request-URI only", group, 5060, f"sip:MAC={lower}@{group}",
         f"sip:anonymous@{group}", f"sip:anonymous@{group}", via),
        ("unicast to the appliance", APPLIANCE_IP, 5060, f"sip:MAC%3a{mac}@{APPLIANCE_IP}",
         f"sip:MAC%3a{mac}@{APPLIANCE_IP}", f"sip:MAC%3a{mac}@{APPLIANCE_IP}", via),
        ("no MAC: the source's lease", group, 5060, f"sip:{group}", f"sip:{group}",
         f"sip:{group}", via),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("destination", "port", "ruri", "from_uri", "to_uri", "via"),
    [form[1:] for form in _forms()],
    ids=[form[0] for form in _forms()],
)
def test_pnp_answers_real_phones_subscribe_forms(
    lan: Lan, config: Path, tmp_path: Path, destination: str, port: int, ruri: str,
    from_uri: str, to_uri: str, via: str,
) -> None:  # fmt: skip
    """Issue 11.8 (DESIGN §3b): the MAC as MAC%3A/MAC<hex>/MAC=<hex> in the Request-URI,
    To or From, or not at all (the lease of the source names the phone); from port 5062
    without a Via branch; sent to the appliance's own address instead of the group."""
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        argv = sipp(lan.phone, "pnp_forms.xml", tmp_path, f"{destination}:5060",
                    "-recv_timeout", "5000", "-key", "ruri", ruri, "-key", "from", from_uri,
                    "-key", "to", to_uri, "-key", "via", via)  # fmt: skip
        argv[argv.index("-p") + 1] = str(port)
        phone = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        log = (tmp_path / "pnp_forms.xml.log").read_text()
        assert phone.returncode == 0, phone.stdout[-2000:] + log
        assert f"URL={SERVER_URL}/prov.py?mac={PHONE_MAC}\n" in log
        # the responder names the phone by its MAC, or "(no MAC)" when the lease found it
        server.wait_for(rf"NOTIFY to ({PHONE_MAC}|\(no MAC\)) at {PHONE_IP}:{port}: accepted")
    finally:
        status, err = server.stop()
    assert status == 0, err


def test_pnp_same_dialog_ids_on_a_new_branch_get_482(
    lan: Lan, config: Path, tmp_path: Path
) -> None:
    """Issue 11.8, RFC 3261 §8.2.2.2: the phone's SUBSCRIBE again with its Call-ID, CSeq and
    From-tag but another branch: 482 Loop Detected, and no second NOTIFY."""
    server = Service(phoneprov(lan.appliance, "pnp", "-c", str(config)))
    try:
        server.wait_for(r"PnP responder on lan0")
        phone = subprocess.run(
            sipp(lan.phone, "pnp_loop.xml", tmp_path, "224.0.1.75:5060", "-recv_timeout",
                 "5000", "-key", "mac", PHONE_MAC),
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        log = (tmp_path / "pnp_loop.xml.log").read_text()
        assert phone.returncode == 0, phone.stdout[-2000:] + log
        assert "again" in log.split("LOOP=")[1]  # the 482 answers the second branch
    finally:
        status, err = server.stop()
    assert status == 0, err
    assert traced(tmp_path, "pnp_loop.xml", "NOTIFY") == 1
    assert err.count("PnP NOTIFY to") == 1
