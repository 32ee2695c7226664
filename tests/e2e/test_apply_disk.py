"""`phoneprov apply` on a full disk: a real tmpfs of a few pages, mounted in a private mount
namespace (gone with its last process), holding dnsmasq's two directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PHONEPROV = str(Path(sys.executable).with_name("phoneprov"))
# Runs inside `unshare --mount --propagation private`: mounts the tmpfs, runs the steps with
# the CLI as an admin would, prints what it saw as JSON.
SCRIPT = r"""
import json, os, subprocess, sys
from pathlib import Path

phoneprov, root = sys.argv[1], Path(sys.argv[2])
disk = root / "disk"
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "pptest", str(disk)],
               check=True)
MACS = [f"00:09:52:00:00:{i:02x}" for i in range(1, 9)]

def inventory(count):
    devices = "".join(
        f'[[devices]]\nmac = "{mac}"\ntype = "D200"\nprofile = "default"\n' for mac in MACS[:count])
    profile = '[profiles.default]\ntemplates = ["office.xml"]\n'
    (root / "inventory.toml").write_text(profile + devices)

def apply():
    run = subprocess.run([phoneprov, "apply", "--config", str(root / "pp.toml")],
                         capture_output=True, text=True, timeout=120)
    return [run.returncode, run.stdout + run.stderr]

def files():
    return {f"{d}/{p.name}": p.read_text() for d in ("hosts", "opts")
            for p in sorted((disk / d).iterdir())}

out = {}
inventory(4)
out["first"] = apply()
before = files()
filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
try:  # fill the disk, then free four pages
    while True:
        os.write(filler, b"x" * 4096)
except OSError:
    os.ftruncate(filler, max(0, os.fstat(filler).st_size - 4 * 4096))
os.close(filler)
out["free_pages"] = os.statvfs(disk).f_bavail
inventory(8)  # 8 new files and the settings: more than four pages
out["full"] = apply()
out["unchanged"] = files() == before
out["scratch"] = [n for n in files() if n.split("/")[1].startswith(".") and
                  n.endswith((".tmp", ".gone"))]
inventory(5)  # 2 new files and the settings: fit, once the debris is gone
out["fits"] = apply()
print(json.dumps(out))
"""


def test_a_full_disk_fails_cleanly_naming_the_path_and_the_next_apply_works(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare (util-linux) for a private tmpfs")
    (tmp_path / "disk").mkdir()
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n[dhcp]\nmode = "66+67"\n'
        'hostsdir = "disk/hosts"\noptsdir = "disk/opts"\n'
        '[security]\nmode = "lease"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    run = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-c",
            SCRIPT,
            PHONEPROV,
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["first"][0] == 0, out["first"]
    assert out["free_pages"] == 4
    code, message = out["full"]
    assert code == 2 and "No space left on device" in message, message
    assert f"{tmp_path}/disk/" in message  # names the file it could not write
    assert out["unchanged"] and out["scratch"] == []
    assert out["fits"][0] == 0 and out["fits"][1].startswith("ok: 1 written"), out["fits"]
    assert not os.path.ismount(tmp_path / "disk")  # the mount went with its namespace
