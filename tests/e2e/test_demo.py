"""The README's main job as a test: the whole demo, and its clean-up when interrupted."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from pyroute2 import netns

from phoneprov.lab.demo import PHONES

pytestmark = pytest.mark.e2e

DEMO = [sys.executable, "-m", "phoneprov", "demo"]
ADMIN_LINE = re.compile(
    r"^admin page: (http://127\.0\.0\.1:\d+/) \(.*\); user admin, one-time password (\S+)$",
    re.MULTILINE,
)


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


def registered(user: str, phone_ip: str = r"10\.231\.0\.\d+") -> str:
    """A summary result: the binding kamailio holds, from the phone's own address."""
    return rf"registered {user}@10\.231\.0\.5 -> sip:{user}-\S+@{phone_ip}:5062$"


def test_demo_provisions_and_registers_three_phones_and_a_resync(e2e_ready):
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    summary = out[out.index("== summary") :]
    flags = re.MULTILINE
    assert re.search(r"^phone1 +dhcp 66\+67 +[1-9]\d* +" + registered("201"), summary, flags)
    assert re.search(r"^phone2 +dhcp 43 +[1-9]\d* +" + registered("202"), summary, flags)
    assert re.search(r"^phone3 +pnp +[1-9]\d* +" + registered("203"), summary, flags)
    again = r"^phone1 \(check-sync\) +check-sync +[1-9]\d* +" + registered("201")
    assert re.search(again, summary, flags), summary
    # the check-sync round registered with the new password: the PBX knows no other by then
    assert out.count("identity 1 sip:201@10.231.0.5: 200 OK") == 2
    assert "display name 'Front desk (changed by the demo)'" in out
    assert "change arrived on phone1: yes" in out
    assert re.search(r"dnsmasq still running with pid \d+: True", out)
    assert "FAIL" not in out
    assert ADMIN_LINE.search(out), out  # the admin page ran beside it
    assert namespaces_of(proc.pid) == []


class CsrfToken(HTMLParser):
    token = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "meta" and found.get("name") == "csrf-token":
            self.token = found.get("content") or ""


def admin_get(url: str, password: str, path: str) -> dict:
    """Log in at the admin page as `admin` (a session cookie), then GET `path` as JSON."""
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
    )
    page = CsrfToken()
    with opener.open(url + "login", timeout=10) as answer:
        page.feed(answer.read().decode())
    form = {"username": "admin", "password": password, "csrf_token": page.token}
    with opener.open(url + "login", urllib.parse.urlencode(form).encode(), timeout=10) as answer:
        assert answer.url.rstrip("/") == url.rstrip("/"), answer.url  # to the phones page
    with opener.open(url + path, timeout=30) as answer:
        return dict(json.load(answer))


@contextlib.contextmanager
def demo_running(*args: str) -> Iterator[subprocess.Popen[str]]:
    """The demo with `args`, its output to read line by line; killed (by PID) if the test
    leaves it running."""
    proc = subprocess.Popen(
        [*DEMO, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, then what the demo prints while it ends."""
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)[0]


def test_demo_keep_leaves_the_admin_page_usable_until_ctrl_c(e2e_ready):
    seen = []
    with demo_running("--keep") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("--keep:"):
                break
        out = "".join(seen)
        assert proc.poll() is None, out  # still up after the summary
        url, password = ADMIN_LINE.findall(out)[-1]
        phones = admin_get(url, password, "api/v1/phones")["phones"]
        states = {p["mac"]: p["state"] for p in phones}
        assert states == {p.mac: "provisioned" for p in PHONES}, phones
        rest = interrupt(proc)
    assert proc.returncode == 0, out + rest
    assert "ending the demo" in rest
    assert namespaces_of(proc.pid) == []


def test_a_wrong_password_shows_as_401_from_the_registrar(e2e_ready):
    argv = [*DEMO, "--wrong-password", "phone2"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    summary = out[out.index("== summary") :]
    row = re.search(r"^phone2 +dhcp 43 +[1-9]\d* +(.*)$", summary, re.MULTILINE)
    assert row and row.group(1).startswith("401 from the registrar 10.231.0.5:5060"), summary
    assert "provisioned" not in row.group(1)
    assert "FAIL  register   identity 1 sip:202@10.231.0.5: 401 Unauthorized" in out
    assert re.search(r"^phone1 +dhcp 66\+67 +[1-9]\d* +" + registered("201"), summary, re.M)
    assert namespaces_of(proc.pid) == []


def test_demo_interrupted_leaves_nothing_behind(e2e_ready):
    seen = []
    with demo_running() as proc:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "phoneprov pnp running" in line or time.monotonic() > deadline:
                break
        names = namespaces_of(proc.pid)
        ids = namespace_ids(names)
        assert names and processes_in(ids), "".join(seen)  # the lab and its services were up
        rest = interrupt(proc)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted: lab removed" in rest
    assert namespaces_of(proc.pid) == []
    assert processes_in(ids) == []
