from dataclasses import replace
from pathlib import Path

import pytest

from phoneprov.config import load_config
from phoneprov.core import dnsmasq_conf as conf
from phoneprov.core.dhcp import decode_option43
from phoneprov.core.errors import ConfigError, InputError
from phoneprov.core.layout import Layout

ROOT = Path(__file__).resolve().parents[2]
MAC = "00:09:52:00:00:0e"
BASE = conf.DhcpSettings("66+67", "http://10.231.0.1:8080", Layout(), ("10.231.0.1",))


@pytest.mark.parametrize(
    ("mode", "sent"),
    [("66+67", {"42", "66", "67"}), ("43", {"42", "43"}), ("both", {"42", "43", "66", "67"})],
)
def test_each_mode_sends_its_options(mode, sent):
    options = conf.device_options(replace(BASE, mode=mode))
    assert {code for code, value in options.as_json().items() if value is not None} == sent
    if options.option43:
        decoded = decode_option43(options.option43)
        assert (decoded.option66, decoded.option67) == (BASE.server_url, "prov.py?mac=<MACADR>")


def test_token_goes_into_67_only_in_token_mode():
    assert conf.device_options(replace(BASE, tokens=True), "abc").option67 == (
        "t/abc/prov.py?mac=<MACADR>"
    )
    assert conf.device_options(BASE, "abc").option67 == "prov.py?mac=<MACADR>"


def test_no_ntp_means_no_option_42():
    assert conf.device_options(replace(BASE, ntp=())).option42 is None


def test_device_files_are_one_host_line_and_tagged_options():
    files = conf.device_files(BASE, MAC, conf.device_options(BASE))
    assert files.name == "00095200000E"
    assert files.host == f"00:09:52:00:00:0e,set:{files.tag}\n"
    assert files.opts.splitlines() == [
        f"tag:{files.tag},42,10.231.0.1",
        f'tag:{files.tag},66,"http://10.231.0.1:8080"',
        f'tag:{files.tag},67,"prov.py?mac=<MACADR>"',
    ]
    assert conf.parse_opts_file(files.opts) == (files.tag, conf.device_options(BASE))


def test_tag_generation_changes_with_the_options_only():
    one = conf.device_files(BASE, MAC, conf.device_options(BASE))
    same = conf.device_files(BASE, MAC, conf.device_options(BASE))
    other = conf.device_files(BASE, MAC, conf.device_options(replace(BASE, ntp=("10.0.0.2",))))
    assert one == same
    assert other.tag != one.tag and other.tag.startswith("phoneprov-00095200000e-")


def test_force_moves_shared_66_67_into_the_snippet():
    forced = replace(BASE, force=True)
    files = conf.device_files(forced, MAC, conf.device_options(forced))
    assert files.host.endswith(",set:phoneprov\n")
    assert [line.split(",")[1] for line in files.opts.splitlines()] == ["42"]
    snippet = conf.render_snippet(forced, "/h", "/o", "/hook")
    assert 'dhcp-option-force=tag:phoneprov,66,"http://10.231.0.1:8080"' in snippet
    assert 'dhcp-option-force=tag:phoneprov,67,"prov.py?mac=<MACADR>"' in snippet


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "vendor", "tokens": True},
        {"mode": "66+67", "tokens": True, "force": True},
        {"mode": "vendor", "vendor_ouis": ()},
        {"mode": "dhcp"},
        {"server_url": "prov.example"},
        {"ntp": ("pool.ntp.org",)},
    ],
)
def test_impossible_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        replace(BASE, **bad)


def test_tokens_with_force_work_through_option_43():
    settings = replace(BASE, mode="43", tokens=True, force=True)
    assert "t/tok/" in decode_option43(conf.device_options(settings, "tok").option43).option67


def test_vendor_snippet_matches_oui_and_class():
    vendor = replace(BASE, mode="vendor", vendor_classes=("Auerswald",))
    lines = conf.render_snippet(vendor, "/h", "/o", "/hook").splitlines()
    assert "dhcp-mac=set:phoneprov-vendor,00:09:52:*:*:*" in lines
    assert "dhcp-vendorclass=set:phoneprov-vendor,Auerswald" in lines
    assert 'dhcp-option=tag:phoneprov-vendor,66,"http://10.231.0.1:8080"' in lines
    assert "dhcp-option=tag:phoneprov-vendor,42,10.231.0.1" in lines
    forced = conf.render_snippet(replace(vendor, force=True), "/h", "/o", "/hook")
    assert "dhcp-option-force=tag:phoneprov-vendor,66," in forced


def test_vendor_class_with_a_comma_is_refused():
    with pytest.raises(ConfigError):
        conf.vendor_match_lines(replace(BASE, mode="vendor", vendor_classes=("a,b",)))


def test_quote_escapes_and_refuses_control_characters():
    assert conf.quote('a\\b"c') == '"a\\\\b\\"c"'
    with pytest.raises(InputError):
        conf.quote("line\nbreak")


def test_tombstones():
    stone = conf.tombstone(MAC)
    assert conf.is_tombstone(stone)
    assert not conf.is_tombstone(conf.device_files(BASE, MAC, conf.device_options(BASE)).host)
    assert conf.tombstone_expired(10.0, 20.0) and not conf.tombstone_expired(10.0, 10.05)


def test_parse_opts_file_refuses_foreign_lines():
    with pytest.raises(InputError):
        conf.parse_opts_file("dhcp-option=66,x\n")


def test_shipped_snippet_is_what_the_renderer_prints_for_the_defaults():
    config = load_config(ROOT / "conf" / "phoneprov.toml")
    settings = replace(BASE, mode=config.dhcp.mode, force=config.dhcp.force)
    rendered = conf.render_snippet(
        settings,
        str(config.dhcp.hostsdir),
        str(config.dhcp.optsdir),
        "/opt/phoneprov/hooks/dnsmasq-dhcp-script",
    )
    shipped = (ROOT / "conf" / "dnsmasq.d" / "phoneprov.conf").read_text()
    body = [line for line in rendered.splitlines() if not line.startswith("#")]
    assert [line for line in shipped.splitlines() if line and not line.startswith("#")] == body
