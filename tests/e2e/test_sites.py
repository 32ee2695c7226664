"""Two sites from one Git repository (issue 16, part 4): two appliances, each its own lab
(namespaces), dnsmasq, `phoneprov serve` and a phone that gets a lease and provisions; both
`phoneprov sync` from one local bare repository holding `site-a/` and `site-b/`.

A commit that changes site B's phone: before taking it, `sync --plan` at A says no change
and at B names the field and the phone that will get a check-sync; then B's phone gets a
check-sync and fetches the new bytes, A's dnsmasq files stay as they were, A sends no
check-sync and `plan` at A says no change. A commit that breaks both
inventories: refused at both, both keep serving the previous revision. `sync --to` at B
rolls back: B's phone gets a check-sync and the old bytes again. With allowed signers at
B, unsigned commits are refused and B keeps serving the signed revision.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from phoneprov.core.markers import DeviceInfo
from phoneprov.lab import Host, Lab, call_in_netns
from phoneprov.lab.dnsmasq import Dnsmasq
from phoneprov.phone.check_sync import CheckSyncListener
from phoneprov.phone.simulator import Report, http_get, resync_on_check_sync, simulate
from site_repo import SiteRepo, inventory

pytestmark = pytest.mark.e2e

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
PORT = 8080
READY_TIMEOUT = 20.0
CHECK_SYNC_TIMEOUT = 15.0


@dataclass
class Site:
    """One appliance with its LAN: `net` is its /24 (`.1` the appliance)."""

    name: str  # "a" | "b": also the directory site-<name>/ in the repository
    net: str
    mac: str
    lab: Lab
    appliance: Host
    phone: Host
    root: Path  # the appliance's own files (0755: dnsmasq reads hostsdir/optsdir as nobody)
    dnsmasq: Dnsmasq | None = None
    serve: subprocess.Popen[bytes] | None = None
    report: Report | None = field(default=None, repr=False)

    @property
    def ip(self) -> str:
        return f"{self.net}.1"

    @property
    def config(self) -> Path:
        return self.root / "phoneprov.toml"

    def site_config(self) -> str:
        """site-<name>/phoneprov.toml in the repository."""
        return (
            f'[server]\nurl = "http://{self.ip}:{PORT}"\ninterface = "eth0"\n'
            f'listen = "{self.ip}:{PORT}"\n'
            f'[dhcp]\nmode = "66+67"\nntp = ["{self.ip}"]\n'
            f'hostsdir = "{self.root}/dnsmasq/hosts"\noptsdir = "{self.root}/dnsmasq/opts"\n'
            f'dnsmasq_pidfile = "{self.root}/dnsmasq/dnsmasq.pid"\n'
            f'leasefile = "{self.root}/dnsmasq/dnsmasq.leases"\n'
            f'[security]\nmode = "lease"\nsecret_file = "{self.root}/secret"\n'
            "[sip]\nt1 = 0.1\n"
            f'[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\n'
            f'state = "{self.root}/state.db"\n'
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [PHONEPROV, *args, "-c", str(self.config)]
        return self.lab.run(self.appliance, argv, check=False)

    def sync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli("sync", *args)

    def start(self) -> None:
        """dnsmasq with the snippet of the live revision, then `phoneprov serve`."""
        snippet = self.root / "dnsmasq.conf"
        out = self.cli("dnsmasq-snippet", "--hook", str(self.root / "hook"))
        assert out.returncode == 0, out.stderr
        snippet.write_text(out.stdout)
        self.dnsmasq = Dnsmasq(
            self.appliance.netns,
            dhcp_range=f"{self.net}.100,{self.net}.199,255.255.255.0,1h",
            extra_args=[f"--conf-file={snippet}"],
            workdir=self.root / "dnsmasq",
        )
        self.dnsmasq.start()
        with (self.root / "serve.log").open("wb") as log:
            self.serve = self.lab.spawn(
                self.appliance,
                [PHONEPROV, "serve", "-c", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while not call_in_netns(self.appliance.netns, _listening, self.ip):
            assert self.serve.poll() is None, (self.root / "serve.log").read_text()
            assert time.monotonic() < deadline, "phoneprov serve does not listen"
            time.sleep(0.05)

    def provision(self) -> Report:
        """The phone's first boot: DHCP, then every file from serve."""
        self.report = simulate(DeviceInfo(self.mac, "D200"), netns=self.phone.netns)
        assert self.report.ok, "\n".join(self.report.step_lines())
        return self.report

    def files(self) -> list[bytes]:
        """What serve hands the phone now: every URL of its chain, fetched from its address."""
        assert self.report is not None and self.report.outcome is not None
        bodies = []
        for step in self.report.outcome.steps:
            status, body = call_in_netns(self.phone.netns, http_get, step.url)
            assert status == 200, (step.url, status)
            bodies.append(body)
        return bodies

    def dnsmasq_files(self) -> dict[str, tuple[bytes, int]]:
        """The files dnsmasq reads from hostsdir/optsdir (not dot-names: it skips those, and
        apply rewrites its own notes there each run): bytes and modification time."""
        found = {}
        for path in sorted((self.root / "dnsmasq").glob("*s/[!.]*")):  # hosts/, opts/
            found[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
        return found

    def stop(self) -> None:
        if self.serve is not None:
            self.lab.stop(self.serve)
        if self.dnsmasq is not None:
            self.dnsmasq.stop()


def _listening(ip: str) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((ip, PORT)) == 0


def sync_with_check_sync(site: Site, *args: str) -> tuple[subprocess.CompletedProcess[str], Report]:
    """`sync` at `site` while its phone waits for a check-sync; the phone's fetch after it."""
    assert site.report is not None
    listening = threading.Event()
    result: list[Report] = []
    waiter = threading.Thread(
        target=lambda: result.append(
            resync_on_check_sync(
                site.report,  # type: ignore[arg-type]
                netns=site.phone.netns,
                timeout=CHECK_SYNC_TIMEOUT,
                listening=lambda _address: listening.set(),
            )
        )
    )
    waiter.start()
    try:
        assert listening.wait(READY_TIMEOUT), "the phone could not listen for check-sync"
        done = site.sync(*args)
    finally:
        waiter.join()
    return done, result[0]


@pytest.fixture
def sites(e2e_ready: None, tmp_path: Path) -> Iterator[tuple[SiteRepo, Site, Site]]:
    with ExitStack() as stack:
        repo = SiteRepo(tmp_path / "git")
        made = []
        for name, net, mac in (
            ("a", "10.231.71", "00:09:52:00:00:a1"),
            ("b", "10.231.72", "00:09:52:00:00:b1"),
        ):
            lab = stack.enter_context(Lab(base=f"ppsite{name}"))
            root = Path(tempfile.mkdtemp(prefix=f"ppsite-{name}-"))
            stack.callback(subprocess.run, ["rm", "-rf", "--", str(root)], check=False)
            root.chmod(0o755)
            site = Site(
                name,
                net,
                mac,
                lab,
                lab.add_host("appl", f"{net}.1/24"),
                lab.add_host("phone", mac=mac),
                root,
            )
            stack.callback(site.stop)
            (root / "dnsmasq" / "hosts").mkdir(parents=True)
            (root / "dnsmasq" / "opts").mkdir()
            site.config.write_text(
                f'[sync]\nrepo = "{repo.bare}"\npath = "site-{name}"\ndir = "sync"\n'
            )
            repo.add_site(f"site-{name}", site.site_config(), inventory(mac, "Front desk", site.ip))
            made.append(site)
        repo.commit("two sites")
        yield repo, made[0], made[1]


def test_two_sites_sync_from_one_repository(sites: tuple[SiteRepo, Site, Site]) -> None:
    repo, a, b = sites
    first = repo.git("rev-parse", "HEAD")
    for site in (a, b):
        done = site.sync()
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"switched to {first[:12]}\nok: ")
        site.start()
        site.provision()
    a_files, b_files = a.files(), b.files()
    assert any(b"Front desk" in body for body in b_files)

    # a commit that changes site B's phone
    repo.write("site-b/inventory.toml", inventory(b.mac, "Lobby", b.ip))
    second = repo.commit("site B: the phone is in the lobby now")
    a_dnsmasq = a.dnsmasq_files()
    assert len(a_dnsmasq) == 2  # the phone's host and options files
    # before taking it: `sync --plan` says what it would change at each site
    planned = a.sync("--plan")
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith(f"plan for {second[:12]} (live: {first[:12]})\nno change\n")
    planned = b.sync("--plan")
    assert planned.returncode == 1, planned.stderr
    mac = b.mac.replace(":", "").upper()
    assert f"~ {mac} changed (D200, profile default)\n" in planned.stdout
    assert "    lines[0].display_name: Front desk -> Lobby\n" in planned.stdout
    assert f"check-sync (apply --resync): {mac}\n" in planned.stdout
    with CheckSyncListener(netns=a.phone.netns) as a_phone:
        done = a.sync()
        assert a_phone.wait(0.2) is None and a_phone.answered == 0
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"switched to {second[:12]} (was {first[:12]})")
    assert done.stdout.endswith("ok: 0 written, 1 unchanged, 0 removed, 0 tombstones dropped "
                                f"({a.root}/dnsmasq/hosts, {a.root}/dnsmasq/opts)\n"
                                "resync: no device changed\n")  # fmt: skip
    assert a.dnsmasq_files() == a_dnsmasq
    assert a.files() == a_files
    planned = a.cli("plan")  # A applied B's commit: nothing for it to change
    assert planned.returncode == 0 and planned.stdout.startswith("no change\n"), planned.stdout

    done, again = sync_with_check_sync(b)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"switched to {second[:12]} (was {first[:12]})")
    assert re.search(rf"^{mac} {b.net}\.\d+ accepted \(200 OK\)$", done.stdout, re.MULTILINE)
    assert again.ok, "\n".join(again.step_lines())
    assert again.steps[0]["step"] == "check-sync"
    b_lobby = b.files()
    assert b_lobby != b_files and any(b"Lobby" in body for body in b_lobby)
    assert b"Lobby" in again.configuration  # what the phone applied after the check-sync

    # a commit with a broken inventory at both sites
    for site in (a, b):
        repo.write(f"site-{site.name}/inventory.toml", inventory("00:09:52:zz", "Broken"))
    broken = repo.commit("broken inventories")
    for site in (a, b):
        planned = site.sync("--plan")
        assert planned.returncode == 2 and planned.stderr.startswith(
            f"error: {broken[:12]} would be refused: site-{site.name}/inventory.toml:3: "
        ), planned.stderr
        done = site.sync()
        assert done.returncode == 2
        assert done.stderr.startswith(
            f"error: refused {broken[:12]}: site-{site.name}/inventory.toml:3: not a MAC address"
        )
        assert done.stderr.endswith(f"{second[:12]} stays live\n")
        status = site.sync("--status").stdout
        assert f"live: {second[:12]} " in status and f"refused {broken[:12]} at " in status
    assert a.files() == a_files and b.files() == b_lobby

    # B rolls back to the first revision: its phone gets the old bytes again
    done, again = sync_with_check_sync(b, "--to", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"switched to {first[:12]} (was {second[:12]})")
    assert re.search(rf"^{mac} {b.net}\.\d+ accepted \(200 OK\)$", done.stdout, re.MULTILINE)
    assert again.ok and b"Front desk" in again.configuration
    assert b.files() == b_files
    assert "pinned by `sync --to`" in b.sync("--status").stdout
    assert b.sync().stdout.startswith(f"pinned at {first[:12]}")
    assert a.files() == a_files


def test_signed_commits_only(sites: tuple[SiteRepo, Site, Site], tmp_path: Path) -> None:
    """B takes only commits signed by a listed SSH key: the fixture's unsigned commit and a
    later unsigned one are refused, and its phone keeps getting the signed revision's bytes."""
    repo, _a, b = sites
    signers = repo.make_signing_key(tmp_path)
    b.config.write_text(b.config.read_text() + f'allowed_signers = "{signers}"\n')
    unsigned = repo.git("rev-parse", "HEAD")
    done = b.sync()
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"error: refused {unsigned[:12]}: commit {unsigned[:12]} is not signed by an allowed key"
    )

    repo.write("site-b/inventory.toml", inventory(b.mac, "Signed desk", b.ip))
    signed = repo.commit("site B, signed")
    done = b.sync()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"switched to {signed[:12]}\n")
    b.start()
    b.provision()
    files = b.files()
    assert any(b"Signed desk" in body for body in files)

    repo.write("site-b/inventory.toml", inventory(b.mac, "Unsigned desk", b.ip))
    later = repo.commit("site B, not signed", sign=False)
    done = b.sync()
    assert done.returncode == 2
    assert f"refused {later[:12]}: commit {later[:12]} is not signed" in done.stderr
    assert b.files() == files
