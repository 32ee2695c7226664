"""A real `phoneprov admin` (uWSGI) on loopback, over HTTP: login with the session cookie,
the API with a Bearer token, a cross-site POST refused; under systemd-style socket activation
(systemd-socket-activate) it serves on the inherited socket and exits by itself once idle."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest

from admin_sample import PASSWORD, USER, admin_config
from phoneprov.admin.users import create_token
from phoneprov.config import Config
from sample_data import self_signed_cert

pytestmark = pytest.mark.e2e

PHONEPROV = Path(sys.executable).parent / "phoneprov"
STARTUP_S = 30.0
EXIT_WAIT_S = 120.0  # generous: the machine is loaded; the test asserts on the exit, not on time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    """Until the admin answers (its login page) or the process ended."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"phoneprov admin exited with {proc.returncode}")
        try:
            if request(port, "GET", "/login")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("phoneprov admin did not answer")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    if shutil.which("uwsgi-core") is None and not (Path(sys.executable).parent / "uwsgi").exists():
        pytest.skip("uWSGI is not installed")
    return admin_config(tmp_path)


@pytest.fixture
def admin(config: Config, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    log = (tmp_path / "admin.log").open("wb")
    proc = subprocess.Popen(
        [str(PHONEPROV), "admin", "-c", str(config.path), "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(proc, port)
        yield port
    finally:
        stop(proc)
        log.close()


def login(port: int) -> tuple[str, str]:
    """Log in as a browser does: the session cookie and its CSRF token."""
    status, headers, page = request(port, "GET", "/login")
    cookie = SimpleCookie(headers["Set-Cookie"])["phoneprov_admin"].value
    text = page.decode()
    marker = 'name="csrf_token" value="'
    token = text[text.index(marker) + len(marker) :].split('"', 1)[0]
    form = urlencode({"username": USER, "password": PASSWORD, "csrf_token": token}).encode()
    status, headers, _ = request(
        port,
        "POST",
        "/login",
        form,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"phoneprov_admin={cookie}",
        },
    )
    assert status == 302, status
    session = SimpleCookie(headers["Set-Cookie"])["phoneprov_admin"].value
    assert "httponly" in headers["Set-Cookie"].lower()
    assert "samesite=strict" in headers["Set-Cookie"].lower()
    # the session's CSRF token is new with the login: the pages carry it in a meta element
    status, _, page = request(port, "GET", "/", headers={"Cookie": f"phoneprov_admin={session}"})
    assert status == 200
    text = page.decode()
    marker = '<meta name="csrf-token" content="'
    return session, text[text.index(marker) + len(marker) :].split('"', 1)[0]


def test_login_and_api_over_http(admin: int, config: Config) -> None:
    port = admin
    status, _, body = request(port, "GET", "/api/v1/phones")
    assert status == 401 and json.loads(body)["error"].startswith("authentication required")
    cookie, token = login(port)
    jar = {"Cookie": f"phoneprov_admin={cookie}"}
    status, _, body = request(port, "GET", "/api/v1/phones", headers=jar)
    assert status == 200
    phones = json.loads(body)["phones"]
    assert [p["mac"] for p in phones] == [
        "00:09:52:00:00:0e",
        "00:09:52:00:00:1f",
        "00:09:52:00:00:30",
    ]
    assert {p["state"] for p in phones} == {"never fetched"}
    resync = f"/api/v1/phones/{phones[2]['mac']}/resync"
    status, _, body = request(port, "POST", resync, headers=jar)
    assert status == 403 and json.loads(body) == {"error": "missing or wrong CSRF token"}
    cross = jar | {"X-CSRF-Token": token, "Origin": "http://evil.example"}
    assert request(port, "POST", resync, headers=cross)[0] == 403
    status, _, body = request(port, "POST", resync, headers=jar | {"X-CSRF-Token": token})
    assert status == 200 and json.loads(body)["result"] == "no lease"


def test_bearer_token_over_http(admin: int, config: Config) -> None:
    token = create_token(config.admin.users_file, "script", time.time())
    status, _, body = request(
        admin, "GET", "/api/v1/phones/0009.5200.000e", headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200 and json.loads(body)["model"] == "D200"
    status, headers, _ = request(
        admin, "GET", "/api/v1/phones", headers={"Authorization": "Bearer not-a-token"}
    )
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")


def test_socket_activated_admin_exits_when_idle(config: Config, tmp_path: Path) -> None:
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed (package systemd)")
    port = free_port()
    log = (tmp_path / "admin.log").open("wb")
    proc = subprocess.Popen(
        [activate, "-l", f"127.0.0.1:{port}", "-E", "PHONEPROV_CONFIG=" + str(config.path),
         str(PHONEPROV), "admin", "--idle-exit", "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # systemd-socket-activate listens first and starts the admin at the first connection,
        # which waits in the backlog until uWSGI takes the inherited socket
        deadline = time.monotonic() + STARTUP_S
        while b"Listening on" not in (tmp_path / "admin.log").read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, "no socket"
            time.sleep(0.05)
        status, _, body = request(port, "GET", "/login")
        assert status == 200 and b"<form" in body
        token = create_token(config.admin.users_file, "idle", time.time())
        status, _, _ = request(
            port, "GET", "/api/v1/phones", headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        assert proc.wait(EXIT_WAIT_S) == 0  # no request for 2 s: it ended, and cleanly
        assert b"inactive for more than 2 seconds" in (tmp_path / "admin.log").read_bytes()
    finally:
        stop(proc)
        log.close()


def test_https_with_a_secure_session_cookie(config: Config, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    log = (tmp_path / "admin.log").open("wb")
    proc = subprocess.Popen(
        [str(PHONEPROV), "admin", "-c", str(config.path), "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "no HTTPS answer"
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
            try:
                conn.request("GET", "/login")
                response = conn.getresponse()
                break
            except OSError:
                time.sleep(0.1)
            finally:
                conn.close()
        assert response.status == 200
        assert "; secure" in response.getheader("Set-Cookie", "").lower()
    finally:
        stop(proc)
        log.close()
