"""The static export served by a real nginx (and Caddy, when installed) with the snippets
`phoneprov export nginx|caddy` prints, on loopback over HTTPS: a phone provisioned from it
(the simulator's fetch chain, from the URL `export redirect` prints) gets byte for byte what
`phoneprov serve` sends for the same site in token mode; nothing but the phones' files is
served; a new export is picked up at once, with unchanged files keeping their ETag."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from phoneprov.core.chain import provision
from phoneprov.core.markers import DeviceInfo
from phoneprov.settings_schema import shipped_schema
from sample_data import TWO_PHONES_INVENTORY, self_signed_cert

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PHONEPROV = Path(sys.executable).parent / "phoneprov"
PHONES = {"00095200000E": "D200", "00095200001F": "D400"}
APP_READY = b"WSGI app 0 (mountpoint='') ready"  # uWSGI, once the worker loaded the app
STARTUP_S = 20.0
SERVERS = ["nginx", "caddy"]


def phoneprov(*args: str | Path) -> str:
    done = subprocess.run([str(PHONEPROV), *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(proc: subprocess.Popen[bytes], port: int, ready: Path | None = None) -> None:
    """Until `port` accepts (and `ready`'s log has the app loaded); bounded."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", port)) == 0
        if listening and (ready is None or APP_READY in ready.read_bytes()):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} after {STARTUP_S:g} s")


@contextmanager
def running(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None, app: bool = False
) -> Iterator[None]:
    """A server process, stopped by its PID at the end (SIGTERM, then SIGKILL); `app`:
    wait for uWSGI's worker too."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(proc, port, log if app else None)
        yield
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Https:
    port: int
    context: ssl.SSLContext

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One GET on a fresh connection, as a phone makes it (header names in any case)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5, context=self.context)
        try:
            conn.request("GET", path.removeprefix(self.base), headers=headers or {})
            response = conn.getresponse()
            return response.status, response.headers, response.read()
        finally:
            conn.close()

    def chain(self, entry_url: str, mac: str) -> dict[str, tuple[str, bytes]]:
        """Provision like the simulator's phone (entry, then every listed file, applied in
        order); path → (Content-Type, bytes) of each document fetched."""
        got: dict[str, tuple[str, bytes]] = {}

        def fetch(url: str) -> tuple[int, bytes]:
            status, headers, body = self.get(url)
            got[url.removeprefix(self.base)] = (headers.get("Content-Type", ""), body)
            return status, body

        outcome = provision(entry_url, fetch, DeviceInfo(mac, PHONES[mac]), shipped_schema())
        assert outcome.ok and not outcome.stripped, outcome.error
        return got


@dataclass
class Site:
    root: Path
    config: Path
    cert: Path
    key: Path
    export: Path

    @property
    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture
def site(tmp_path: Path, e2e_ready: None, request: pytest.FixtureRequest) -> Iterator[Site]:
    """A token-mode site (the two phones on the shipped templates) and a directory for the
    export that the web server's user can reach (pytest's tmp_path is root's only)."""
    style = getattr(request, "param", "query")
    shutil.copytree(ROOT / "conf" / "templates", tmp_path / "templates")
    (tmp_path / "inventory.toml").write_text(TWO_PHONES_INVENTORY)
    config = tmp_path / "phoneprov.toml"
    config.write_text(
        f'[server]\nurl = "https://127.0.0.1:1"\nurl_style = "{style}"\n'
        '[security]\nmode = "token"\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    cert, key = self_signed_cert(tmp_path)
    public = Path(tempfile.mkdtemp(prefix="phoneprov-export-test-"))
    try:
        public.chmod(0o755)
        yield Site(tmp_path, config, cert, key, public / "export")
    finally:
        shutil.rmtree(public)


@contextmanager
def web_server(kind: str, site: Site, port: int) -> Iterator[Https]:
    """nginx (workers as www-data) or Caddy with the snippet phoneprov prints, on loopback."""
    snippet = phoneprov(
        "export", kind, site.export, "--bind", "127.0.0.1", "--port", port,
        "--server-name", "127.0.0.1", "--cert", site.cert, "--key", site.key,
    )  # fmt: skip
    work = site.root / kind
    work.mkdir()
    (work / "site.conf").write_text(snippet)
    if kind == "nginx":
        temp = " ".join(
            f"{name}_temp_path {work / name};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (work / "nginx.conf").write_text(
            f"user www-data;\nworker_processes 1;\npid {work / 'nginx.pid'};\n"
            f"error_log {work / 'error.log'};\ndaemon off;\nevents {{}}\n"
            f"http {{\n  access_log {work / 'access.log'};\n  {temp}\n"
            f"  include {work / 'site.conf'};\n}}\n"
        )
        argv = ["nginx", "-e", str(work / "error.log"), "-p", str(work), "-c"]
        argv.append(str(work / "nginx.conf"))
        env = None
    else:
        if shutil.which("caddy") is None:
            pytest.skip("caddy is not installed")
        (work / "Caddyfile").write_text("{\n\tadmin off\n}\n" + snippet)
        argv = ["caddy", "run", "--adapter", "caddyfile", "--config", str(work / "Caddyfile")]
        env = {"PATH": os.environ["PATH"], "HOME": str(work), "XDG_DATA_HOME": str(work),
               "XDG_CONFIG_HOME": str(work)}  # fmt: skip
    with running(argv, port, work / "server.log", env=env):
        yield Https(port, site.context)


@contextmanager
def phoneprov_serve(site: Site, server_url: str) -> Iterator[Https]:
    """`phoneprov serve` of the same site over HTTPS, rendering with the export's base URL."""
    port = free_port()
    argv = [
        str(PHONEPROV), "serve", "-c", str(site.config), "--listen", f"127.0.0.1:{port}",
        "--tls-cert", str(site.cert), "--tls-key", str(site.key), "--server-url", server_url,
    ]  # fmt: skip
    with running(argv, port, site.root / "serve.log", app=True):
        yield Https(port, site.context)


def export_and_urls(site: Site, base: str) -> dict[str, str]:
    out = phoneprov("export", "static", site.export, "-c", site.config, "--url", base)
    assert out.startswith("exported 2 device(s), 12 files")
    lines = phoneprov("export", "redirect", "-c", site.config, "--url", base).splitlines()
    return dict(line.split(",", 1) for line in lines)


@pytest.mark.parametrize("site", ["query", "path"], indirect=True)
@pytest.mark.parametrize("kind", SERVERS)
def test_a_phone_gets_from_the_export_what_serve_sends(site: Site, kind: str) -> None:
    port = free_port()
    static_base = f"https://127.0.0.1:{port}"
    urls = export_and_urls(site, static_base)
    with web_server(kind, site, port) as static, phoneprov_serve(site, static_base) as serve:
        for mac in PHONES:
            assert urls[mac].startswith(f"{static_base}/t/")
            from_static = static.chain(urls[mac], mac)
            from_serve = serve.chain(urls[mac].replace(static_base, serve.base), mac)
            assert len(from_static) == 5  # the entry and its four files
            assert from_static == from_serve  # the same paths, Content-Type and bytes


@pytest.mark.parametrize("kind", SERVERS)
def test_only_the_phones_files_are_served(site: Site, kind: str) -> None:
    port = free_port()
    urls = export_and_urls(site, f"https://127.0.0.1:{port}")
    token_path = urls["00095200000E"].split("/prov.py")[0]  # .../t/<token>
    device_dir = f"{token_path}/prov/D200/00095200000E"
    with web_server(kind, site, port) as static:
        status, headers, body = static.get(f"{device_dir}/device.xml")
        assert status == 200 and b"<username>201</username>" in body
        assert headers["Cache-Control"] == "no-cache" and "ETag" in headers
        for refused in [
            f"{static.base}/t/{'0' * 24}/prov.py",  # an unknown token
            f"{static.base}/t/",
            f"{token_path}/",
            f"{token_path}/prov",
            f"{device_dir}/",
            f"{static.base}/.phoneprov-export",
            f"{token_path}/../../.phoneprov-export",
            f"{static.base}/",
        ]:
            status, _, body = static.get(refused)
            assert status == 404, refused
            assert b"prov" not in body and b"00095" not in body, refused  # nothing listed
    token = token_path.rsplit("/", 1)[1]
    logs = b"".join(p.read_bytes() for p in (site.root / kind).glob("*.log"))
    # what the snippets' comment says: nginx's access log holds the tokens, Caddy keeps none
    assert (token.encode() in logs) == (kind == "nginx")


@pytest.mark.parametrize("kind", SERVERS)
def test_a_new_export_is_served_at_once_and_unchanged_files_keep_their_etag(
    site: Site, kind: str
) -> None:
    port = free_port()
    urls = export_and_urls(site, f"https://127.0.0.1:{port}")
    device_dir = urls["00095200000E"].split("/prov.py")[0] + "/prov/D200/00095200000E"
    with web_server(kind, site, port) as static:
        before = {name: static.get(f"{device_dir}/{name}") for name in ("common.xml", "device.xml")}
        inventory = site.root / "inventory.toml"
        inventory.write_text(inventory.read_text().replace('"201"', '"301"'))
        export_and_urls(site, static.base)  # within the same second, as like as not
        status, _, body = static.get(f"{device_dir}/device.xml")
        assert status == 200 and b"<username>301</username>" in body
        for name, (_, headers, _) in before.items():
            status, _, _ = static.get(f"{device_dir}/{name}", {"If-None-Match": headers["ETag"]})
            assert status == (304 if name == "common.xml" else 200), name
