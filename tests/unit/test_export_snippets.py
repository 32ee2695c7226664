"""The nginx and Caddy snippets: what they serve, what they refuse to contain, and Caddy's own
parser on them (the e2e test runs both servers with them)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.core.errors import InputError
from phoneprov.core.layout import Layout
from phoneprov.export import SnippetOptions, caddy_snippet, export_paths, nginx_snippet
from phoneprov.export.snippets import PHONE_PATH, XML_TYPE
from phoneprov.web.endpoint import XML_TYPE as SERVE_XML_TYPE

TOKEN = "0123456789abcdef01234567"


def test_the_content_type_is_the_one_serve_sends() -> None:
    assert XML_TYPE == SERVE_XML_TYPE


@pytest.mark.parametrize("style", ["query", "path"])
def test_the_served_paths_are_exactly_the_phones_files(style: str) -> None:
    docs = export_paths(Layout(style), "D200", "00095200000E", TOKEN, ["common.xml"])
    for doc in docs:
        assert re.fullmatch(PHONE_PATH, "/" + doc.path), doc.path
    for refused in [
        "/t/",
        f"/t/{TOKEN}",
        f"/t/{TOKEN}/",
        f"/t/{TOKEN}/prov/D200/",
        f"/t/{TOKEN.upper()}/prov.py",
        f"/t/{TOKEN[:-1]}/prov.py",
        "/.phoneprov-export",
        "/prov.py",
    ]:
        assert not re.fullmatch(PHONE_PATH, refused), refused


def test_nginx_snippet_with_placeholders_says_so_and_warns_of_tokens_in_logs() -> None:
    text = nginx_snippet(SnippetOptions("/srv/export"))
    assert "Replace the placeholders" in text
    assert "access logs will contain the tokens" in text
    assert "listen 443 ssl;\n    listen [::]:443 ssl;\n" in text
    assert "ssl_certificate /etc/ssl/phoneprov/fullchain.pem;" in text
    assert "root /srv/export;" in text and "autoindex off;" in text
    assert f'default_type "{XML_TYPE}";' in text and "types { }" in text


def test_nginx_snippet_with_everything_given() -> None:
    text = nginx_snippet(
        SnippetOptions("/srv/export", "prov.example.org", 8443, "192.0.2.1", "/c.pem", "/k.pem")
    )
    assert "Replace the placeholders" not in text
    assert "    listen 192.0.2.1:8443 ssl;\n    server_name prov.example.org;\n" in text
    assert "ssl_certificate /c.pem;\n    ssl_certificate_key /k.pem;" in text


@pytest.mark.parametrize(
    "field, value",
    [
        ("root", "/srv/my export"),
        ("root", "/srv/x;include /etc/shadow"),
        ("root", "srv/relative"),
        ("server_name", 'a"b'),
        ("cert", "/c.pem}"),
        ("bind", "127.0.0.1 ssl; listen 80"),
    ],
)
def test_what_cannot_go_into_a_snippet_is_refused(field: str, value: str) -> None:
    values = {"root": "/srv/export", field: value}
    with pytest.raises(InputError):
        SnippetOptions(**values)  # type: ignore[arg-type]


def test_port_out_of_range_is_refused() -> None:
    with pytest.raises(InputError, match="port"):
        SnippetOptions("/srv/export", port=70000)


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")
@pytest.mark.parametrize("bind", [None, "127.0.0.1"])
def test_caddy_takes_the_snippet(tmp_path: Path, bind: str | None) -> None:
    caddyfile = tmp_path / "Caddyfile"
    text = caddy_snippet(SnippetOptions("/srv/export", bind=bind))
    assert "Replace the placeholders" in text and "access logs will contain the tokens" in text
    caddyfile.write_text(text)
    done = subprocess.run(
        ["caddy", "adapt", "--adapter", "caddyfile", "--config", str(caddyfile)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "not formatted" not in done.stderr  # indented as `caddy fmt` wants
    assert '"index_names"' not in done.stdout and '"browse"' not in done.stdout
    assert PHONE_PATH.replace("\\", "\\\\") in done.stdout


def test_cli_prints_the_snippets_for_an_absolute_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    for kind, wanted in [("nginx", f"root {tmp_path}/out;"), ("caddy", f"root * {tmp_path}/out")]:
        done = runner.invoke(cli, ["export", kind, str(tmp_path / "out"), "--port", "8443"])
        assert done.exit_code == 0, done.output
        assert wanted in done.output


def test_cli_snippet_with_an_unusable_dir_exits_2(tmp_path: Path) -> None:
    done = CliRunner().invoke(cli, ["export", "nginx", str(tmp_path / "my export")])
    assert done.exit_code == 2 and "can go into the snippet" in done.output
