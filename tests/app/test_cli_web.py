"""`phoneprov render` prints the very bytes the endpoint serves; `fetches` shows the log."""

from __future__ import annotations

import json
from collections.abc import Callable

from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.config import Config
from phoneprov.web.app import create_app
from phoneprov.web.routes import provisioning

from .conftest import D200, SERVER


def run(*args: str) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout_bytes, result.stderr


def test_render_prints_exactly_what_is_served(site: Callable[..., Config]) -> None:
    config = site("open")
    c = create_app(config).test_client()
    for name in ("common.xml", "model.xml", "office.xml", "device.xml"):
        code, out, _ = run("render", D200, "--file", name, "-c", str(config.path))
        assert code == 0
        assert out == c.get(f"/prov/D200/{D200}/{name}").data
    code, out, _ = run("render", "00:09:52:00:00:0e", "-c", str(config.path))
    assert (code, out) == (0, c.get(f"/prov.py?mac={D200}").data)
    code, out, _ = run("render", D200, "--style", "path", "-c", str(config.path))
    assert out == c.get(f"/prov/D200/{D200}.xml").data


def test_render_uses_the_given_server_url(site: Callable[..., Config]) -> None:
    config = site("open")
    code, out, _ = run(
        "render",
        D200,
        "--file",
        "common.xml",
        "--server-url",
        "http://192.0.2.7",
        "-c",
        str(config.path),
    )
    assert code == 0 and b"<allowlistEntry>192.0.2.7</allowlistEntry>" in out
    assert SERVER.encode() not in out


def test_render_errors_exit_2(site: Callable[..., Config]) -> None:
    config = site("open")
    code, _, err = run("render", "00095200FFFF", "-c", str(config.path))
    assert code == 2 and "not in the inventory" in err
    code, _, err = run("render", D200, "--file", "reception.xml", "-c", str(config.path))
    assert code == 2 and "has no file 'reception.xml'" in err
    (config.templates / "device.xml.j2").write_text("<s>{{ nope }}</s>")
    code, _, err = run("render", D200, "--file", "device.xml", "-c", str(config.path))
    assert code == 2 and "device.xml.j2:1" in err


def test_render_lists_files(site: Callable[..., Config]) -> None:
    code, out, _ = run("render", D200, "--list", "-c", str(site("open").path))
    assert code == 0
    assert out.decode().split() == ["common.xml", "model.xml", "office.xml", "device.xml"]


def test_fetches_shows_the_log(site: Callable[..., Config]) -> None:
    config = site("open")
    app = create_app(config)
    c = app.test_client()
    c.get(f"/prov.py?mac={D200}")
    c.get("/prov.py?mac=00095200FFFF")
    provisioning(app).close()
    code, out, _ = run("fetches", "-c", str(config.path))
    lines = out.decode().splitlines()
    assert code == 0 and lines[0].split() == ["TIME", "MAC", "IP", "STATUS", "BYTES", "PATH"]
    assert "00095200FFFF  127.0.0.1  403" in lines[1]
    assert f"{D200}  127.0.0.1  200" in lines[2]
    code, out, _ = run("fetches", "00:09:52:00:00:0e", "--json", "-c", str(config.path))
    assert [row["status"] for row in json.loads(out)] == [200]


def test_fetches_without_a_database(site: Callable[..., Config]) -> None:
    code, _, err = run("fetches", "-c", str(site("open").path))
    assert code == 2 and "no state database" in err
