"""The chain's last link: a phone's identities REGISTER with a real registrar.

Debian's kamailio (auth_db over db_text, usrloc in memory) in one lab namespace, Debian's
baresip as the phone's user agent in another. Afterwards no process and no namespace is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns

from phoneprov.lab import Host, Lab
from phoneprov.lab.registrar import Registrar, RegistrarError
from phoneprov.phone.netns import call_in_netns
from phoneprov.phone.register import (
    RegisterError,
    SipIdentity,
    register_identities,
    registered,
)

pytestmark = pytest.mark.e2e

REGISTRAR_IP = "10.231.0.1"
PHONE_IP = "10.231.0.50"
DOMAIN = "lab.test"
SUBSCRIBERS = [("201", "secret201"), ("202", "s3cret;202 x")]  # ; and space: quoting works


@dataclass(frozen=True)
class SipLab:
    lab: Lab
    registrar: Registrar
    phone: Host


def _identity(index: int, username: str, password: str, **kwargs: Any) -> SipIdentity:
    return SipIdentity(index, username, password, REGISTRAR_IP, domain=DOMAIN, **kwargs)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture
def sip_lab(e2e_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipLab]:
    for tool in ("kamailio", "baresip"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool!r} (Debian: kamailio, baresip-core)")
    workdir: Path = tmp_path_factory.mktemp("kam")  # short: the RPC socket lives there
    with Lab(base="ppreg") as lab:
        server = lab.add_host("registrar", f"{REGISTRAR_IP}/24")
        phone = lab.add_host("phone", f"{PHONE_IP}/24")
        with Registrar(workdir, server.netns, REGISTRAR_IP, DOMAIN, SUBSCRIBERS) as registrar:
            kamailio = registrar.pid
            yield SipLab(lab, registrar, phone)
            assert registrar.alive(), "kamailio died:\n" + "\n".join(registrar.lines[-15:])
            assert netns.ns_pids().get(phone.netns, []) == []  # baresip is gone
        prefix = lab.prefix
    assert _gone(kamailio)
    assert not [name for name in netns.listnetns() if name.startswith(prefix)]


def test_phone_registers_after_the_challenge(sip_lab: SipLab) -> None:
    registrar = sip_lab.registrar
    identity = _identity(1, "201", "secret201", display_name="Desk 201", register_interval=30)
    with registered(sip_lab.phone.netns, [identity], timeout=5) as results:
        assert results == [results[0]]
        assert (results[0].index, results[0].aor) == (1, "sip:201@lab.test")
        assert (results[0].ok, results[0].status) == (True, "200 OK")
        assert "registered with the registrar 10.231.0.1:5060" in results[0].detail
        [binding] = registrar.bindings()
        assert binding.aor == registrar.aor("201") == "201@lab.test"
        assert binding.contact.startswith("sip:201")
        assert f"@{PHONE_IP}:5060" in binding.contact
        assert 1700 < binding.expires <= 1800  # 30 minutes
        # challenged once; kamailio counts a reply after sending it: read until it has
        deadline = time.monotonic() + 2.0
        while True:
            stats = registrar.statistics()
            replies = (stats["sl:401_replies"], stats["sl:200_replies"])
            if replies == (1, 1) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert replies == (1, 1)
    assert registrar.bindings() == []  # baresip unregistered when it stopped


def test_wrong_password_says_so(sip_lab: SipLab) -> None:
    [result] = register_identities(
        sip_lab.phone.netns, [_identity(1, "201", "not-the-secret")], timeout=5
    )
    assert (result.ok, result.status) == (False, "401 Unauthorized")
    assert result.detail.startswith("401 from the registrar 10.231.0.1:5060")
    assert "wrong password" in result.detail
    assert sip_lab.registrar.bindings() == []


def test_two_identities_register_at_once(sip_lab: SipLab) -> None:
    identities = [
        _identity(1, "201", "secret201"),
        _identity(2, "202", "s3cret;202 x", register_interval=2),
        _identity(3, "203", "unused", active=False),  # skipped: no account, no result
    ]
    with registered(sip_lab.phone.netns, identities, timeout=5) as results:
        assert [(r.index, r.ok, r.status) for r in results] == [
            (1, True, "200 OK"),
            (2, True, "200 OK"),
        ]
        bindings = {b.aor: b for b in sip_lab.registrar.bindings()}
        assert sorted(bindings) == ["201@lab.test", "202@lab.test"]
        assert all(f"@{PHONE_IP}:5060" in b.contact for b in bindings.values())
        assert bindings["202@lab.test"].expires <= 120


def test_other_domain_and_silent_registrar(sip_lab: SipLab) -> None:
    identities = [
        SipIdentity(1, "201", "secret201", REGISTRAR_IP),  # AOR sip:201@10.231.0.1
        SipIdentity(2, "201", "secret201", "10.231.0.9", domain=DOMAIN),  # nobody there
    ]
    other, silent = register_identities(sip_lab.phone.netns, identities, timeout=1)
    assert (other.aor, other.ok, other.status[:3]) == ("sip:201@10.231.0.1", False, "403")
    assert "wrong domain" in other.detail
    assert (silent.ok, silent.status) == (False, "timeout")
    assert "10.231.0.9:5060" in silent.detail


def test_a_second_ua_on_the_same_port_fails_clearly(sip_lab: SipLab) -> None:
    identities = [_identity(1, "201", "secret201")]
    with registered(sip_lab.phone.netns, identities, timeout=5) as results:
        assert results[0].ok
        with pytest.raises(RegisterError, match=r"(?s)exited before.*Address already in use"):
            register_identities(sip_lab.phone.netns, identities, timeout=5)


def test_refused_config_is_reported_with_kamailio_log(sip_lab: SipLab, tmp_path: Path) -> None:
    bad = Registrar(tmp_path, sip_lab.registrar.netns, REGISTRAR_IP, DOMAIN, SUBSCRIBERS)
    broken = '#!KAMAILIO\nloadmodule "no_such_module.so"\n'
    bad.config_text = lambda: broken  # type: ignore[method-assign]
    with pytest.raises(RegistrarError, match=r"(?s)kamailio refuses .*no_such_module"):
        bad.start()
    assert not bad.alive()
    assert os.path.exists(tmp_path / "kamailio.cfg")


@contextmanager
def settings_server(ns: str, ip: str, body: bytes) -> Iterator[int]:
    """An HTTP server in namespace `ns` answering every GET with `body`; yields its port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = call_in_netns(ns, ThreadingHTTPServer, (ip, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("password", "status", "answer"),
    [("secret201", 0, "200 OK - registered with the registrar"), ("nope", 1, "401 from the")],
)
def test_simulate_registers_the_identities_it_applied(
    sip_lab: SipLab, password: str, status: int, answer: str
) -> None:
    device_xml = (
        '<configuration><identities version="1.34.0" patch="true"><identity>'
        f"<active>true</active><username>201</username><password>{password}</password>"
        f"<registrar>{REGISTRAR_IP}</registrar><domain>{DOMAIN}</domain>"
        "</identity></identities></configuration>"
    ).encode()
    registrar_ns = sip_lab.lab.hosts["registrar"].netns
    with settings_server(registrar_ns, REGISTRAR_IP, device_xml) as port:
        argv = [sys.executable, "-m", "phoneprov", "simulate", "--netns", sip_lab.phone.netns]
        argv += ["--mac", "00:09:52:00:00:0e", "--option66", f"http://{REGISTRAR_IP}:{port}"]
        argv += ["--option67", "device.xml", "--ntp", REGISTRAR_IP, "--register", "--json"]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == status, run.stdout + run.stderr
    report = json.loads(run.stdout)
    [step] = [s for s in report["steps"] if s["step"] == "register"]
    assert step["ok"] is (status == 0)
    assert step["detail"].startswith(f"identity 1 sip:201@{DOMAIN}: ")
    assert answer in step["detail"], step
    assert report["failed_step"] == (None if status == 0 else "register")
