"""The simulator's steps with options given by hand; fetching goes to a closed loopback port."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.core.dhcp import encode_option43, parse_hex
from phoneprov.core.markers import DeviceInfo
from phoneprov.core.reference import build_reference
from phoneprov.phone.simulator import Options, reprovision, simulate

DEV = DeviceInfo("00:09:52:00:00:0e", "D200")


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when we fetch: connection refused


@pytest.mark.parametrize(
    ("o66", "o67", "o43", "path"),
    [
        ("S", "prov.py?mac=<MACADR>", None, "manual 66+67"),
        (None, None, ("S", "prov.py?mac=<MACADR>"), "manual 43"),
        ("S", "prov.py?mac=<MACADR>", ("http://other", "x"), "manual 66+67"),
        (None, "prov.py?mac=<MACADR>", ("S", None), "manual 43+67"),
    ],
)
def test_url_and_path_taken(closed_port, o66, o67, o43, path):
    server = f"http://127.0.0.1:{closed_port}"
    opt43 = parse_hex(encode_option43(*(server if v == "S" else v for v in o43))) if o43 else None
    options = Options(server if o66 == "S" else o66, o67, opt43, ntp=("127.0.0.1",))
    report = simulate(DEV, options=options)
    assert report.path == path
    assert report.url == f"{server}/prov.py?mac=00095200000E"
    assert report.failed_step == "fetch"
    assert "no answer (connection failed)" in report.steps[-2]["detail"]


def test_no_time_no_provisioning():
    report = simulate(DEV, options=Options("http://127.0.0.1:9", "x"))
    assert (report.ok, report.failed_step) == (False, "time")
    assert [s["step"] for s in report.steps] == ["network", "time"]


def test_cli_json_and_exit_status(closed_port):
    args = [
        "simulate",
        "--mac",
        "00095200000e",
        "--option66",
        f"http://127.0.0.1:{closed_port}",
        "--option67",
        "{mac}.xml",
        "--allow-no-time",
        "--json",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["failed_step"] == "fetch"
    assert out["url"] == f"http://127.0.0.1:{closed_port}/00095200000E.xml"
    assert [s["step"] for s in out["steps"]] == ["network", "time", "url", "fetch", "apply"]


# --- fetch and apply against a loopback HTTP server ----------------------------------------

IDENTITY = (
    '<configuration><identities version="1.34.0" patch="true"><identity><active>true</active>'
    "<username>{user}</username><password>pw</password><registrar>pbx.lan</registrar>"
    "<registrarPort>5060</registrarPort></identity></identities></configuration>"
)
UPDATE = '<configuration><update version="1.34.0"><check>true</check></update></configuration>'


@pytest.fixture
def web():
    """`files` (path -> bytes) served on 127.0.0.1; yields (base URL, files)."""
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def manual(base: str) -> Options:
    return Options(base, "prov.py?mac=<MACADR>", None, ("127.0.0.1",))


def test_the_files_are_applied_with_the_phones_merge(web):
    base, files = web
    files["/prov.py?mac=00095200000E"] = build_reference(["a.xml", "b.xml"])
    files["/a.xml"] = UPDATE.encode()
    files["/b.xml"] = IDENTITY.format(user="201").encode()
    report = simulate(DEV, options=manual(base))
    assert report.ok, report.steps
    assert report.steps[-1]["detail"].startswith("2 settings file(s) applied in order")
    assert [(i.index, i.username, i.registrar, i.registrar_port) for i in report.identities] == [
        (1, "201", "pbx.lan", 5060)
    ]
    assert report.identities[0].password == "pw"
    assert b"<check>true</check>" in report.configuration
    out = report.as_dict()
    assert out["stripped"] == [] and out["warnings"] == []
    assert out["identities"][0]["username"] == "201" and "password" not in out["identities"][0]
    assert out["configuration"] == report.configuration.decode()


def test_what_the_phone_strips_fails_the_apply_step(web):
    base, files = web
    files["/prov.py?mac=00095200000E"] = build_reference(["a.xml"])
    files["/a.xml"] = (
        b"<configuration><settings><sip><account/></sip></settings>"
        + IDENTITY.format(user="201").encode()[len(b"<configuration>") :]
    )
    report = simulate(DEV, options=manual(base))
    assert report.failed_step == "apply"
    assert report.steps[-1]["detail"] == (
        "stripped: /configuration/settings (a.xml) "
        "(the phone drops elements its schema does not know)"
    )
    assert report.steps[-2]["detail"].endswith("(1 stripped)")
    assert [i.username for i in report.identities] == ["201"]  # kept for a later step
    assert report.as_dict()["stripped"] == ["/configuration/settings"]


def test_a_file_in_another_format_fails_the_fetch(web):
    base, files = web
    files["/prov.py?mac=00095200000E"] = b"<settings><user>201</user></settings>"
    report = simulate(DEV, options=manual(base))
    assert report.failed_step == "fetch"
    assert "is neither <configuration> nor a settings section" in report.steps[-1]["detail"]
    assert report.configuration == b"" and report.identities == ()


def test_reprovision_fetches_the_url_check_sync_named_onto_the_settings_so_far(web):
    base, files = web
    files["/prov.py?mac=00095200000E"] = IDENTITY.format(user="201").encode()
    files["/other/00095200000E.xml"] = UPDATE.encode()
    first = simulate(DEV, options=manual(base))
    assert first.ok, first.steps
    again = reprovision(
        first, None, trigger="check-sync", detail="d", url=f"{base}/other/<MACADR>.xml"
    )
    assert again.ok, again.steps
    assert (again.path, again.url) == ("check-sync", f"{base}/other/00095200000E.xml")
    assert [s["step"] for s in again.steps] == ["check-sync", "fetch", "apply"]
    assert [i.username for i in again.identities] == ["201"]  # from the first round
    assert b"<check>true</check>" in again.configuration

    same = reprovision(first, None, trigger="check-sync", detail="d")
    assert (same.path, same.url) == (first.path, first.url)


def test_cli_prints_identities_and_hides_passwords(web, tmp_path):
    base, files = web
    files["/prov.py?mac=00095200000E"] = IDENTITY.format(user="201").encode()
    args = ["simulate", "--mac", "00095200000e", "--option66", base, "--option67",
            "prov.py?mac=<MACADR>", "--ntp", "127.0.0.1"]  # fmt: skip
    args += ["-c", str(tmp_path / "none.toml")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "none.toml: no such config file" in result.stderr
    result = CliRunner().invoke(cli, args[:-2], env={"PHONEPROV_CONFIG": ""})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "identities:" in lines and "  1  201 @ pbx.lan:5060  active" in lines
    assert "  /identities/identity/password = ***" in lines
    assert lines[-1] == "result: provisioned via manual 66+67, 1 file(s)"
