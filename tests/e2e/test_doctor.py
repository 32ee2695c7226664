"""`phoneprov doctor` on a real appliance in a lab: dnsmasq with the snippet, `phoneprov serve`,
the doctor run inside the appliance's namespace; then broken on purpose, one thing at a time."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneprov.core.dnsmasq_cmdline import parse_version
from phoneprov.lab import Host, Lab, call_in_netns
from phoneprov.lab.dnsmasq import Dnsmasq
from phoneprov.phone.simulator import http_get
from sample_data import TWO_PHONES_INVENTORY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
ADDR, PORT = "10.231.0.1", 8080
MACS = ("00095200000E", "00095200001F")
CONFIG = f"""[server]
url = "auto"
interface = "eth0"
listen = "{ADDR}:{PORT}"
[dhcp]
mode = "both"
ntp = ["auto"]
hostsdir = "hosts"
optsdir = "opts"
[security]
mode = "lease"
secret_file = "secret"
[paths]
inventory = "inventory.toml"
templates = "{ROOT / "conf" / "templates"}"
state = "state.db"
"""


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    """Namespaces ppdoc<pid>.<n>-*, removed in Lab.close()."""
    with Lab(base="ppdoc") as the_lab:
        yield the_lab


class Appliance:
    def __init__(self, lab: Lab, host: Host, root: Path) -> None:
        self.lab, self.host, self.root = lab, host, root
        self.config = root / "phoneprov.toml"
        self.serve: subprocess.Popen[bytes] | None = None
        self.dnsmasq: Dnsmasq | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.lab.run(self.host, [PHONEPROV, *args, "-c", str(self.config)], check=False)

    def doctor(self, *args: str) -> tuple[int, str]:
        out = self.cli("doctor", *args)
        assert not out.stderr, out.stderr
        return out.returncode, out.stdout

    def start_serve(self) -> None:
        with (self.root / "serve.log").open("wb") as log:
            self.serve = self.lab.spawn(
                self.host,
                [PHONEPROV, "serve", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while not call_in_netns(self.host.netns, port_open):
            assert self.serve.poll() is None, (self.root / "serve.log").read_text()
            assert time.monotonic() < deadline, "phoneprov serve does not listen"
            time.sleep(0.05)
        # uWSGI listens before it loads the app (which creates the secret): one answer first
        status, _body = call_in_netns(self.host.netns, http_get, f"http://{ADDR}:{PORT}/")
        assert status == 404, (self.root / "serve.log").read_text()


def port_open() -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ADDR, PORT)) == 0


@pytest.fixture
def appliance(lab: Lab, dnsmasq_factory: Callable[..., Dnsmasq]) -> Iterator[Appliance]:
    root = Path(tempfile.mkdtemp(prefix="ppdoc-site-"))
    root.chmod(0o755)  # dnsmasq reads hostsdir/optsdir as nobody
    try:
        (root / "phoneprov.toml").write_text(CONFIG)
        (root / "inventory.toml").write_text(TWO_PHONES_INVENTORY)
        (root / "inventory.toml").chmod(0o640)  # SIP passwords: root and the service user
        site = Appliance(lab, lab.add_host("appl", f"{ADDR}/24"), root)
        applied = site.cli("apply")
        assert applied.returncode == 0, applied.stderr
        snippet = site.cli("dnsmasq-snippet").stdout
        site.dnsmasq = dnsmasq_factory(site.host, conf=snippet)
        site.start_serve()
        yield site
    finally:
        subprocess.run(["rm", "-rf", "--", str(root)], check=False)


def test_doctor_on_a_working_appliance(appliance: Appliance):
    dm = appliance.dnsmasq
    assert dm is not None
    version = parse_version(
        subprocess.run(["dnsmasq", "--version"], capture_output=True, text=True).stdout
    )
    code, out = appliance.doctor()
    assert code == 0, out
    assert f"  ok    dnsmasq {version} running (pid {dm.pid}, uid 65534); snippet in " in out
    assert str(dm.workdir / "test.conf") in out  # found through the process's --conf-file
    assert "  WARN  never `systemctl reload dnsmasq` or SIGHUP" in out
    assert (
        "        fix: after changing dnsmasq's own configuration: systemctl restart dnsmasq" in out
    )
    assert f"dhcp-script {ROOT / 'hooks' / 'dnsmasq-dhcp-script'} is executable" in out
    assert f"  ok    phoneprov serve answers on {ADDR}:{PORT}" in out
    assert f"  ok    option 42 offers {ADDR}" in out
    inventory = appliance.root / "inventory.toml"
    assert f"  ok    {inventory}: not readable by other users (it holds SIP passwords)\n" in out
    for mac in MACS:
        section = out.split(f"device {mac} ")[1].split("\ndevice ")[0]
        assert f"  ok    url http://{ADDR}:{PORT}/prov.py?mac={mac}\n" in section
        assert "  ok    files ok: " in section and "FAIL" not in section
    assert out.rstrip().endswith(", 1 warnings, 0 failures")

    report = json.loads(appliance.cli("doctor", "--json", "--device", "00:09:52:00:00:1f").stdout)
    assert report["ok"] is True
    (device,) = report["devices"]
    assert device["mac"] == MACS[1] and device["files"] >= 1 and device["size"] > 0
    # lease mode: the doctor holds no lease, so it used the device's token path
    assert device["fetched"].startswith(f"http://{ADDR}:{PORT}/t/")
    assert device["fetched"].endswith(f"/prov.py?mac={MACS[1]}")
    assert dm.alive()  # read only: never a signal
    # the state database's write probe was rolled back
    db = sqlite3.connect(appliance.root / "state.db")
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert "leases" in tables and not [t for t in tables if "doctor" in t]


def test_doctor_names_what_is_broken_and_how_to_fix_it(appliance: Appliance):
    inventory = appliance.root / "inventory.toml"
    inventory.chmod(0o644)
    code, out = appliance.doctor()
    assert code == 0, out  # a warning, not a failure
    assert (
        f"  WARN  {inventory} is readable by every user, and it holds SIP passwords\n"
        f"        fix: chmod o-rwx {inventory}\n"
    ) in out
    assert out.rstrip().endswith(", 2 warnings, 0 failures")
    inventory.chmod(0o640)

    hosts = appliance.root / "hosts"
    hosts.chmod(0o700)
    code, out = appliance.doctor()
    assert code == 1
    assert f"  FAIL  {hosts}: dnsmasq (user nobody) cannot read it" in out
    assert f"        fix: chmod 0755 {hosts}\n" in out
    assert out.rstrip().endswith("1 failures")
    hosts.chmod(0o755)

    assert appliance.serve is not None
    appliance.lab.stop(appliance.serve)
    code, out = appliance.doctor()
    assert code == 1
    assert f"  FAIL  nothing accepts connections on {ADDR}:{PORT}" in out
    assert "        fix: systemctl start phoneprov-http" in out
    assert "files ok" not in out  # devices are not fetched from a server that is not there

    code, out = appliance.doctor("--device", "00:09:52:00:00:77")
    assert code == 1
    assert "device 000952000077\n  FAIL  gets no options: none: not in the inventory\n" in out


def test_doctor_config_error_exits_2(appliance: Appliance):
    (appliance.root / "inventory.toml").write_text("[[devices]]\nmac = 'nonsense'\n")
    out = appliance.cli("doctor")
    assert out.returncode == 2 and out.stderr.startswith("error: ")
