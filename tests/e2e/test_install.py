"""The Debian package on a clean Debian 12 root, the "fresh machine" proof (issue 13).

`make deb` builds it with Debian's tooling; mmdebstrap bootstraps a minbase root from this
host's own apt sources with dnsmasq and the package's dependencies; then, inside a network
namespace of ours (one LAN interface), apt installs the package (its postinst runs `phoneprov
setup`), and `check`, `apply`, `doctor`, the hook, a second setup (nothing changed), an
uninstall and a purge run there. At the end nothing of ours is left in the root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneprov.lab import Lab

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]
LEFT_ALONE = ("./var/cache/", "./var/lib/apt/", "./var/lib/dpkg/", "./var/log/", "./tmp/")
SHADOW_BACKUPS = {"./etc/passwd-", "./etc/group-", "./etc/shadow-", "./etc/gshadow-"}
PHONE_MAC, PHONE_IP = "00:09:52:00:00:0e", "10.231.0.50"
SERVER, ENTRY = "http://10.231.0.1:8080", "prov.py?mac=00095200000E"
FETCH = """
import sys, time, urllib.error, urllib.request
for _ in range(100):  # until serve listens (bounded: 20 s)
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
            print(reply.status); print(reply.read().decode()); break
    except urllib.error.HTTPError as e:
        print(e.code); break
    except OSError:
        time.sleep(0.2)
"""


def depends(deb: Path) -> list[str]:
    """The package names of a .deb's Depends (first of each alternative, no versions)."""
    field = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    names = [re.split(r"[\s(:|]", part.strip())[0] for part in field.split(",")]
    return sorted({n for n in names if n})


def files_of(root: Path) -> set[str]:
    listed = subprocess.run(
        ["find", ".", "-xdev"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    return {f for f in listed if f and not f.startswith(LEFT_ALONE)} - SHADOW_BACKUPS


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(root, deb): a minbase Debian 12 root with dnsmasq and the package's dependencies."""
    missing = [t for t in ("mmdebstrap", "dpkg-buildpackage", "dh") if shutil.which(t) is None]
    sources = next((s for s in SOURCES if s.exists()), None)
    if missing or sources is None:
        pytest.skip(f"needs {', '.join(missing) or 'apt sources'} (bash .ci/setup installs them)")
    built = subprocess.run(["make", "deb"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    deb = next((ROOT / "build").glob("phoneprov_*_all.deb"))
    root = tmp_path_factory.mktemp("debian") / "root"
    include = ",".join(["dnsmasq", *depends(deb)])
    strapped = subprocess.run(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={include}", "bookworm",
         str(root), str(sources)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert strapped.returncode == 0, strapped.stderr[-3000:]
    shutil.copy(deb, root / "tmp" / deb.name)
    try:
        yield root, Path("/tmp") / deb.name
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_package_sets_up_a_clean_debian_root_and_leaves_nothing(
    clean_root: tuple[Path, Path], e2e_ready: None
) -> None:
    root, deb = clean_root
    before = files_of(root)
    with Lab(base="ppinst") as lab:
        appliance = lab.add_host("appl", "10.231.0.1/24")

        def chroot(*argv: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
            done = lab.run(appliance, ["chroot", str(root), *argv], timeout=300, check=False)
            assert (done.returncode == 0) == ok, done.stdout + done.stderr
            return done

        # install with apt: the postinst runs setup (one LAN interface: no question)
        installed = chroot("apt-get", "install", "--yes", str(deb))
        assert "LAN interface eth0" in installed.stdout, installed.stdout
        assert "setup: " in installed.stdout and "step(s) done" in installed.stdout
        assert 'interface = "eth0"' in (root / "etc/phoneprov/phoneprov.toml").read_text()
        inventory = root / "etc/phoneprov/inventory.toml"
        assert inventory.stat().st_mode & 0o777 == 0o640
        snippet = (root / "etc/dnsmasq.d/phoneprov.conf").read_text()
        assert "dhcp-script=/var/lib/phoneprov/dnsmasq-dhcp-script" in snippet
        assert (root / "etc/systemd/system/phoneprov-http.service").exists()
        assert "phoneprov:x:" in (root / "etc/passwd").read_text()

        assert "ok: /etc/phoneprov/phoneprov.toml" in chroot("phoneprov", "check").stdout
        assert "0 written" in chroot("phoneprov", "apply").stdout  # setup applied already
        hosts = list((root / "var/lib/phoneprov/dnsmasq/hosts").iterdir())
        assert any(p.name == "00095200000E" for p in hosts)
        doctor = chroot("phoneprov", "doctor", ok=False)  # no dnsmasq, no server running here
        assert "FAIL" in doctor.stdout and "failures" in doctor.stdout

        # the hook as dnsmasq runs it, with Debian's python3 -IS
        chroot("/var/lib/phoneprov/dnsmasq-dhcp-script", "add", PHONE_MAC, PHONE_IP)
        assert PHONE_IP in chroot("phoneprov", "leases", "--json").stdout

        # serve as the unit starts it: Debian's uwsgi-core, then the service user
        serve_log = root / "tmp" / "serve.log"
        with serve_log.open("w") as out:
            server = lab.spawn(
                appliance, ["chroot", str(root), "phoneprov", "serve"], stdout=out, stderr=out
            )
        phone = lab.add_host("phone", f"{PHONE_IP}/24")  # holds the lease the hook recorded
        fetched = lab.run(phone, [sys.executable, "-c", FETCH, f"{SERVER}/{ENTRY}"], timeout=60)
        status, _, body = fetched.stdout.partition("\n")
        if status != "200":
            lab.stop(server)
            pytest.fail(f"{fetched.stdout}\nserve said:\n{serve_log.read_text()}")
        assert "<referencedSettings" in body, fetched.stdout
        stranger = lab.run(appliance, [sys.executable, "-c", FETCH, f"{SERVER}/{ENTRY}"])
        assert stranger.stdout.startswith("403"), stranger.stdout  # lease mode
        assert lab.stop(server) == 0
        log = serve_log.read_text()
        assert "uwsgi-core" in log or "/usr/bin/uwsgi" in log or "Python version: 3.11" in log, log
        workers = re.findall(r"spawned uWSGI worker 1 \(pid: \d+", log)
        assert workers and "setuid() to " in log, log  # the worker runs as phoneprov

        again = chroot("phoneprov", "setup")
        assert "setup: nothing changed, everything was set up already" in again.stdout
        assert "setup: 0 step(s) to do" in chroot("phoneprov", "setup", "--dry-run").stdout

        # uninstall keeps the admin's data; setup brings the rest back
        chroot("phoneprov", "setup", "--uninstall")
        assert not (root / "etc/dnsmasq.d/phoneprov.conf").exists()
        assert not (root / "var/lib/phoneprov/dnsmasq").exists()
        assert inventory.exists() and (root / "var/lib/phoneprov/state").is_dir()
        assert "step(s) done" in chroot("phoneprov", "setup").stdout

        chroot("apt-get", "purge", "--yes", "phoneprov")
    assert "phoneprov" not in (root / "etc/passwd").read_text()
    assert "phoneprov" not in (root / "etc/group").read_text()
    left = files_of(root) - before
    assert left == set(), sorted(left)[:20]
