"""The simulator's steps with options given by hand; fetching goes to a closed loopback port."""

import json
import socket

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.core.dhcp import encode_option43, parse_hex
from phoneprov.core.markers import DeviceInfo
from phoneprov.phone.simulator import Options, simulate

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
