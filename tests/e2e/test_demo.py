"""The README's main job as a test: the whole demo, and its clean-up when interrupted."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from pyroute2 import netns

pytestmark = pytest.mark.e2e

DEMO = [sys.executable, "-m", "phoneprov", "demo"]


def namespaces_of(pid: int) -> list[str]:
    return [n for n in netns.listnetns() if re.match(rf"^ppdemo{pid}\.\d+-", n)]


def namespace_ids(names: list[str]) -> set[int]:
    ids = set()
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            ids.add(os.stat(f"/run/netns/{name}").st_ino)
    return ids


def processes_in(ids: set[int]) -> list[int]:
    """PIDs of processes whose network namespace is one of `ids`."""
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}/ns/net").st_ino in ids:
                pids.append(int(entry))
    return pids


def test_demo_provisions_three_phones_and_a_resync(e2e_ready):
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    summary = out[out.index("== summary") :]
    assert re.search(r"phone1 +dhcp 66\+67 +[1-9]\d* +provisioned", summary), summary
    assert re.search(r"phone2 +dhcp 43 +[1-9]\d* +provisioned", summary), summary
    assert re.search(r"phone3 +pnp +[1-9]\d* +provisioned", summary), summary
    assert re.search(r"phone1 \(check-sync\) +\S.* [1-9]\d* +provisioned", summary), summary
    assert "change arrived on phone1: yes" in out
    assert re.search(r"dnsmasq still running with pid \d+: True", out)
    assert "FAIL" not in out
    assert namespaces_of(proc.pid) == []


def test_demo_interrupted_leaves_nothing_behind(e2e_ready):
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "phoneprov pnp running" in line or time.monotonic() > deadline:
                break
        names = namespaces_of(proc.pid)
        ids = namespace_ids(names)
        assert names and processes_in(ids), "".join(seen)  # the lab and its services were up
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted: lab removed" in rest
    assert namespaces_of(proc.pid) == []
    assert processes_in(ids) == []
