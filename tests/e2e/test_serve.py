"""A real `phoneprov serve` on loopback, fetched as a phone fetches: entry, then each listed
URL resolved by the seed's rules, each checked well-formed; over HTTP and HTTPS."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from phoneprov.core.layout import Layout
from phoneprov.core.reference import parse_reference, parse_xml, resolve_reference
from phoneprov.state.db import Lease, State
from sample_data import TWO_PHONES_INVENTORY, self_signed_cert

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PHONEPROV = Path(sys.executable).parent / "phoneprov"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    scheme: str
    context: ssl.SSLContext | None = None

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def get(
        self, url: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One GET with a plain HTTP client, on a fresh connection like a phone's."""
        assert url.startswith(self.base)
        if self.context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=5, context=self.context
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", url.removeprefix(self.base), headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


APP_READY = b"WSGI app 0 (mountpoint='') ready"  # uWSGI, once the worker loaded the app


def wait_port(
    proc: subprocess.Popen[bytes], port: int, log: Path | None = None, timeout: float = 20.0
) -> None:
    """Until the router listens and (with `log`) the worker has loaded the app: the router
    accepts at once, a request before the app is loaded waits for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"phoneprov serve exited with {proc.returncode}")
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", port)) == 0
        if listening and (log is None or APP_READY in log.read_bytes()):
            return
        time.sleep(0.05)
    raise AssertionError(f"phoneprov serve not ready on {port}")


def start(
    root: Path,
    mode: str,
    tls: bool = False,
    *,
    server: str = "",
    security: str = "",
    leasefile: str = "",
    state: str = "state.db",
    prefix: Sequence[str] = (),
) -> Server:
    """`phoneprov serve` for a site in `root`; `server`/`security`: more lines for those
    tables; `leasefile`: dnsmasq's lease file to read ("" none); `prefix`: runs it."""
    shutil.copytree(ROOT / "conf" / "templates", root / "templates", dirs_exist_ok=True)
    (root / "inventory.toml").write_text(TWO_PHONES_INVENTORY)
    port = free_port()
    scheme = "https" if tls else "http"
    config = root / "phoneprov.toml"
    config.write_text(
        f'[server]\nurl = "{scheme}://127.0.0.1:{port}"\nlisten = "127.0.0.1:{port}"\n{server}'
        f'[security]\nmode = "{mode}"\nsecret_file = "secret"\n{security}'
        f'[dhcp]\nleasefile = "{leasefile}"\n'
        f'[paths]\ninventory = "inventory.toml"\nstate = "{state}"\n'
    )
    argv = [*prefix, str(PHONEPROV), "serve", "-c", str(config)]
    context = None
    if tls:
        cert, key = self_signed_cert(root)
        argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
        context = ssl.create_default_context(cafile=str(cert))
    with (root / "serve.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(proc, port, root / "serve.log")
    except AssertionError:  # never leave a server behind that no fixture knows of
        proc.kill()
        proc.wait()
        raise
    return Server(proc, port, root, scheme, context)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Server]:
    servers: list[Server] = []

    def make(mode: str = "open", tls: bool = False, **options: str) -> Server:
        server = start(tmp_path / f"s{len(servers)}", mode, tls, **options)
        servers.append(server)
        return server

    yield make  # type: ignore[misc]
    for server in servers:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def provision_like_a_phone(server: Server, mac: str, model: str, style: str) -> list[bytes]:
    """Fetch the entry, then every listed URL in order; return the settings files."""
    entry = Layout(style).entry_url(server.base, model, mac)
    status, _, body = server.get(entry)
    assert status == 200, entry
    files = []
    for ref in parse_reference(body):
        url = resolve_reference(entry, ref)
        status, headers, data = server.get(url)
        assert status == 200, url
        assert headers["Content-Type"].startswith("application/xml")
        parse_xml(data)
        files.append(data)
    return files


def test_phone_provisions_over_http(serve: object, tmp_path: Path) -> None:
    server: Server = serve("open")  # type: ignore[operator]
    for style in ("query", "path"):
        files = provision_like_a_phone(server, "00095200000E", "D200", style)
        assert len(files) == 4 and b"<username>201</username>" in files[-1]
    files = provision_like_a_phone(server, "00-09-52-00-00-1F", "D400", "path")
    assert len(files) == 4 and b"<username>202</username>" in files[-1]


def test_etag_and_refusals_over_the_wire(serve: object) -> None:
    server: Server = serve("open")  # type: ignore[operator]
    url = f"{server.base}/prov/D200/00095200000E/device.xml"
    _, headers, _ = server.get(url)
    status, _, body = server.get(url, {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    assert server.get(f"{server.base}/prov/D200/../../etc/passwd")[0] == 404
    assert server.get(f"{server.base}/prov.py?mac=00095200FFFF")[0] == 403
    assert server.get(f"{server.base}/x?" + "a" * 20000)[0] == 404
    assert server.get(url, {"X-Junk": "a" * 20000})[0] == 200


def test_lease_mode_over_loopback(serve: object) -> None:
    server: Server = serve("lease")  # type: ignore[operator]
    entry = f"{server.base}/prov.py?mac=00095200000E"
    assert server.get(entry)[0] == 403
    with State(server.root / "state.db") as state:
        state.record_lease(Lease("00095200000E", "127.0.0.1"), time.time())
    assert len(provision_like_a_phone(server, "00095200000E", "D200", "query")) == 4


def test_sigterm_stops_cleanly_and_keeps_every_fetch(serve: object) -> None:
    server: Server = serve("open")  # type: ignore[operator]
    url = f"{server.base}/prov/D200/00095200000E/common.xml"
    for _ in range(100):
        assert server.get(url)[0] == 200
    keep_alive = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(200):  # one connection, kept open: the worker is busy when SIGTERM comes
        keep_alive.request("GET", url.removeprefix(server.base))
        response = keep_alive.getresponse()
        assert response.status == 200 and response.read()
    server.proc.send_signal(signal.SIGTERM)
    keep_alive.close()
    assert server.proc.wait(10) == 0
    with State(server.root / "state.db") as state:
        assert len(state.fetches(limit=1000)) == 300
    log = (server.root / "serve.log").read_text()
    assert "security mode OPEN" in log


def test_fetches_command_shows_them(serve: object) -> None:
    server: Server = serve("open")  # type: ignore[operator]
    server.get(f"{server.base}/prov.py?mac=00:09:52:00:00:0e")
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(10)
    out = subprocess.run(
        [str(PHONEPROV), "fetches", "00095200000E", "-c", str(server.root / "phoneprov.toml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "00095200000E  127.0.0.1  200" in out.stdout
    assert "/prov.py?mac=00:09:52:00:00:0e" in out.stdout


def test_phone_provisions_over_https(serve: object) -> None:
    server: Server = serve("open", tls=True)  # type: ignore[operator]
    files = provision_like_a_phone(server, "00095200000E", "D200", "query")
    assert len(files) == 4
    with pytest.raises(ssl.SSLError):  # the server speaks TLS only
        ssl.create_default_context().wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=5),
            server_hostname="wrong.example",
        )


def test_stalled_clients_do_not_block_phones(serve: object) -> None:
    server: Server = serve("open")  # type: ignore[operator]
    stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(32)]
    try:
        for conn in stalled[::2]:  # half of them start a request and never finish it
            conn.sendall(b"GET /prov.py?mac=00095200000E HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert server.get(f"{server.base}/prov.py?mac=00095200000E")[0] == 200
        assert time.monotonic() - started < 1.0
    finally:
        for conn in stalled:
            conn.close()
