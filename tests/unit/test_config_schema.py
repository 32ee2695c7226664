"""The one config schema: every problem at once, with file:line, nothing silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneprov.config import load_config
from phoneprov.config.schema import SCHEMA
from phoneprov.core.errors import ConfigError, ConfigErrors


def load(tmp_path: Path, text: str) -> None:
    (tmp_path / "pp.toml").write_text(text)
    load_config(tmp_path / "pp.toml")


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, text)
    errors = err.value.errors if isinstance(err.value, ConfigErrors) else [err.value]
    return [str(e).replace(f"{tmp_path}/", "") for e in errors]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[dhcp]\nhostdir = "hosts"\n',
            "pp.toml:2: unknown key dhcp.hostdir; did you mean dhcp.hostsdir?",
        ),
        (
            '[security]\nmdoe = "open"\n',
            "pp.toml:2: unknown key security.mdoe; did you mean security.mode?",
        ),
        ('[server]\nntp = ["auto"]\n', "pp.toml:2: unknown key server.ntp; it belongs in [dhcp]"),
        ("[sever]\n", "pp.toml:1: unknown section [sever]; did you mean [server]?"),
        ("[server]\nworkers = 2\n", "pp.toml:2: unknown key server.workers; known in [server]:"),
        ('[models]\nknown = "D100"\n', "pp.toml:2: models.known must be a list of strings"),
        ("models = 3\n", "pp.toml:1: models must be a [models] table"),
        (
            '[server]\nurl = "http://box:8080/prov"\n',
            "pp.toml:2: server.url must be http(s)://host[:port], no path",
        ),
        ('[server]\nurl = "http://box\\n"\n', "pp.toml:2: server.url must not contain control"),
        ('[server]\nurl = "http://bo\\"x"\n', "pp.toml:2: server.url must be http(s)://host"),
        ('[dhcp]\nntp = ["ntp.lan"]\n', "pp.toml:2: dhcp.ntp must be IPv4 addresses: 'ntp.lan'"),
        ('[dhcp]\nvendor_classes = ["a,b"]\n', "pp.toml:2: dhcp.vendor_classes not usable"),
        ('[server]\nlisten = "8080"\n', "pp.toml:2: server.listen must be host:port"),
        ('[server]\ninterface = "eth 0"\n', "pp.toml:2: server.interface not an interface"),
        ('[server]\nquery_path = "a/b.py"\n', "pp.toml:2: server.query_path must be one file"),
        ('[dhcp]\nhostsdir = "/srv/a #b"\n', "pp.toml:2: dhcp.hostsdir cannot be a dnsmasq path"),
        ('[server]\nuser = "pho ne"\n', "pp.toml:2: server.user must be a user name like"),
        ("[dhcp]\nleasefile = 0\n", "pp.toml:2: dhcp.leasefile must be text, not 0"),
        ('[sip]\ncheck_sync_event = "check sync"\n', "pp.toml:2: sip.check_sync_event bad Event"),
        ("[sip]\nt1 = true\n", "pp.toml:2: sip.t1 must be a number of seconds, not True"),
        ("[security]\ntrusted_proxies = -1\n", "pp.toml:2: security.trusted_proxies must be"),
        ('[paths]\nstate = "a\\u0000b"\n', "pp.toml:2: paths.state must not contain control"),
        ('[dhcp]\ndefault_type = "D999"\n', "pp.toml:2: dhcp.default_type 'D999' is not in"),
        (
            '[sip.check_sync_events]\nD999 = "check-sync"\n',
            "pp.toml:2: sip.check_sync_events: model 'D999' is not in models.known",
        ),
        ("[sip]\nt1 = 2\ntimer_f = 1\n", "pp.toml:3: sip.timer_f must not be shorter"),
        (
            '[dhcp]\nmode = "vendor"\n[security]\nmode = "token"\n',
            "pp.toml:2: dhcp.mode 'vendor' gives every phone the same options",
        ),
    ],
)
def test_each_problem_names_its_line(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_every_problem_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, '[dhcp]\nhostdir = "x"\nmode = "66"\n[security]\nmdoe = 1\n')
    assert [f.split(":")[1] for f in found] == ["2", "3", "5"]


def test_defaults_pass_their_own_checks(tmp_path: Path) -> None:
    load(tmp_path, "")
    config = load_config(tmp_path / "pp.toml")
    assert config.dhcp.vendor_ouis == ("000952",) and config.sip.timer_f == 32.0
    assert (config.retention.days, config.retention.rows) == (30, 10_000)


def test_every_key_has_help_and_a_default_of_its_type() -> None:
    for section, keys in SCHEMA.items():
        for name, key in keys.items():
            assert key.help, f"{section}.{name}"
            assert key.default is None or isinstance(key.default, key.types), f"{section}.{name}"


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=30))
def test_any_text_in_any_key_gives_a_config_or_our_error(tmp_path_factory, value: str) -> None:
    tmp_path = tmp_path_factory.mktemp("cfg")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped)
    for section, keys in SCHEMA.items():
        for name in keys:
            try:
                load(tmp_path, f'[{section}]\n{name} = "{escaped}"\n')
            except ConfigError as e:
                assert str(e).startswith(f"{tmp_path / 'pp.toml'}")
