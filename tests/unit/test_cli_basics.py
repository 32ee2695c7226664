import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli

CONF = Path(__file__).resolve().parents[2] / "conf"
SEED_43 = "42:0b:68:74:74:70:3a:2f:2f:66:6f:6f:00:43:0c:3c:48:57:54:59:50:3e:2e:62:61:6b:00"


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("check", "dhcp", "ref"):
        assert command in result.output


def test_check_on_the_shipped_example():
    result = run("check", "--config", str(CONF / "phoneprov.toml"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ")
    assert "3 devices, 2 profiles" in result.output


def test_check_reports_problems_with_file_line_and_exit_2(tmp_path):
    (tmp_path / "phoneprov.toml").write_text('[paths]\ninventory = "inv.toml"\n')
    (tmp_path / "inv.toml").write_text(
        '[profiles.p]\ntemplates = []\n[[devices]]\nmac = "nope"\ntype = "D200"\nprofile = "q"\n'
    )
    result = run("check", "--config", str(tmp_path / "phoneprov.toml"))
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'inv.toml'}:3: not a MAC address: 'nope'" in result.stderr
    assert f"{tmp_path / 'inv.toml'}:3: unknown profile 'q'" in result.stderr


def test_encode_43_prints_one_line_of_hex():
    result = run("dhcp", "encode-43", "--option66", "http://foo", "--option67", "<HWTYP>.bak")
    assert result.output == SEED_43 + "\n"


def test_decode_43_prints_json():
    assert json.loads(run("dhcp", "decode-43", SEED_43).output) == {
        "66": "http://foo",
        "67": "<HWTYP>.bak",
    }
    assert json.loads(run("dhcp", "decode-43", "42:2:78:0:7:1:aa").output) == {
        "66": "x",
        "unknown": [{"code": 7, "hex": "aa"}],
    }


@pytest.mark.parametrize(
    ("args", "url"),
    [
        (
            [
                "--option66",
                "http://prov.server.com",
                "--option67",
                "prov.py?mac=<MACADR>",
                "--mac",
                "00:09:52:00:00:0e",
            ],
            "http://prov.server.com/prov.py?mac=00095200000E",
        ),
        (["--option43", SEED_43, "--type", "D200"], "http://foo/D200.bak"),
        (
            ["--option66", "http://bar/", "--option43", SEED_43, "--type", "D100"],
            "http://bar/D100.bak",
        ),
        (
            ["--option66", "http://x", "--option67", "{serial}.xml", "--serial", "S9"],
            "http://x/S9.xml",
        ),
    ],
)
def test_url(args, url):
    assert run("dhcp", "url", *args).output == url + "\n"


@pytest.mark.parametrize(
    "args",
    [
        ["dhcp", "decode-43", "42:ff"],
        ["dhcp", "encode-43"],
        ["dhcp", "url"],
        ["dhcp", "url", "--option43", "zz"],
        ["ref", "resolve", "relative.xml", "x"],
    ],
)
def test_bad_input_is_an_error_on_stderr_with_status_2(args):
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")


def test_ref_resolve_build_parse():
    out = run(
        "ref",
        "resolve",
        "http://prov.server.com/prov/references.xml",
        "first_file.xml",
        "/second_file.xml",
        "http://another.server.com/third_file.xml",
    ).output
    assert out.splitlines() == [
        "http://prov.server.com/prov/first_file.xml",
        "http://prov.server.com/second_file.xml",
        "http://another.server.com/third_file.xml",
    ]
    built = run("ref", "build", "a.xml", "/b.xml").stdout_bytes
    assert run("ref", "parse", "-", input=built).output == "a.xml\n/b.xml\n"


def test_ref_parse_refuses_a_settings_file(tmp_path):
    (tmp_path / "s.xml").write_bytes(b"<settings/>")
    result = run("ref", "parse", str(tmp_path / "s.xml"))
    assert result.exit_code == 2
    assert "not a reference file" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--option67", "prov.py?mac=<MACADR>"],  # 67 alone: a path, no server
        ["--option66", "prov.example", "--option67", "x.xml"],  # a bare host in 66
        ["--option66", "tftp://prov.example", "--option67", "x.xml"],
        ["--option66", "http://"],
        ["--option43", "43:06:78:2e:78:6d:6c:00"],  # 43 with only a file part
    ],
)
def test_url_options_that_form_no_http_url_exit_2(args):
    result = run("dhcp", "url", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and "http(s) URL" in result.stderr


def test_url_with_a_malformed_43_beside_valid_66_67_warns_and_uses_them():
    result = run(
        "dhcp", "url", "--option66", "http://bar", "--option67", "x.xml", "--option43", "42:ff"
    )
    assert result.exit_code == 0
    assert result.stdout == "http://bar/x.xml\n"
    assert result.stderr.startswith("warning: option 43 ignored: ")
    assert "truncated" in result.stderr


def test_url_with_a_malformed_43_and_nothing_else_is_the_43_error():
    result = run("dhcp", "url", "--option67", "x.xml", "--option43", "42:ff")
    assert result.exit_code == 2
    assert "option 43 is truncated" in result.stderr
