from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.mark.parametrize(
    ("mode", "codes"),
    [("66+67", ["42", "66", "67"]), ("43", ["42", "43"]), ("both", ["42", "43", "66", "67"])],
)
def test_force_sends_every_option_of_the_mode_from_the_snippet(mode, codes):
    """dnsmasq cannot force optsdir lines, and an optsdir line for the same option would
    beat the forced one: with force, everything is forced by tag and the opts file is empty."""
    forced = replace(BASE, mode=mode, force=True)
    options = conf.device_options(forced)
    files = conf.device_files(forced, MAC, options)
    assert files.host.endswith(",set:phoneprov\n")
    assert files.opts == ""
    lines = conf.render_snippet(forced, "/h", "/o", "/hook").splitlines()
    force_lines = [line for line in lines if line.startswith("dhcp-option-force=")]
    assert force_lines == [
        f"dhcp-option-force=tag:phoneprov,{code},{value}" for code, value in options.specs()
    ]
    assert [line.split(",")[1] for line in force_lines] == codes
    assert not [line for line in lines if line.startswith("dhcp-option=")]


def test_without_force_the_snippet_forces_nothing():
    for mode in conf.PER_MAC_MODES:
        snippet = conf.render_snippet(replace(BASE, mode=mode), "/h", "/o", "/hook")
        assert "dhcp-option" not in snippet


@pytest.mark.parametrize(
    "bad",
    [
        {"mode": "vendor", "tokens": True},
        {"mode": "66+67", "tokens": True, "force": True},
        {"mode": "43", "tokens": True, "force": True},
        {"mode": "both", "tokens": True, "force": True},
        {"mode": "vendor", "vendor_ouis": ()},
        {"mode": "dhcp"},
        {"server_url": "prov.example"},
        {"ntp": ("pool.ntp.org",)},
    ],
)
def test_impossible_settings_are_config_errors(bad):
    with pytest.raises(ConfigError):
        replace(BASE, **bad)


def test_force_with_tokens_says_why_it_cannot_work():
    """A token is per device, so it lives in dhcp-optsdir, which dnsmasq cannot force."""
    with pytest.raises(ConfigError, match="dhcp-optsdir") as caught:
        replace(BASE, mode="43", tokens=True, force=True)
    assert "security.mode 'lease'" in str(caught.value)


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


# one dnsmasq line: what the writer refuses to emit -------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "00:09:52:00:00:0e,set:phoneprov-00095200000e-0a1b2c3d,set:phoneprov",
        'tag:t,66,"http://10.231.0.1:8080"',
        'tag:t,67,"x = y"',
        "dhcp-vendorclass=set:t,Foo = Bar",
        'tag:t,67,"a\\\\b\\"c # not a comment in quotes"',
        "dhcp-hostsdir=/var/lib/phone prov/hosts#1",
        "dhcp-option-force=tag:phoneprov,43," + ":".join(["ab"] * 255),
        "dhcp-hostsdir=/" + "a" * 1009,  # 1024 bytes: the longest line dnsmasq reads as one
    ],
)
def test_check_line_accepts_what_dnsmasq_reads_as_one_line(line):
    assert conf.check_line(line) == line


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('tag:t,66,"http://a"\ndhcp-script=/tmp/x', "control character"),
        ("dhcp-hostsdir=/a\r", "control character"),
        ("dhcp-hostsdir=/a\tb", "control character"),
        ("dhcp-hostsdir=/a\x00b", "control character"),
        ("dhcp-hostsdir=/a\x7fb", "control character"),
        ("dhcp-hostsdir=/tmp/t\u00e9l", "non-ASCII"),
        ('dhcp-hostsdir=/tmp/h"x', "quote"),
        ('tag:t,66,"a\\tb"', "escape"),
        ('tag:t,66,"a\\b"', "escape"),
        ('tag:t,66,"ab\\"', "quote"),
        ("dhcp-optsdir=/tmp/a #b", "comment"),
        ('tag:t,66,"x"#y', "comment"),
        ("# a comment where a value belongs", "comment"),
        (" dhcp-hostsdir=/a", "space"),
        ("dhcp-hostsdir=/a ", "space"),
        ("dhcp-hostsdir= /a", "space beside the first '='"),
        ("dhcp-hostsdir =/a", "space beside the first '='"),
        ("", "empty"),
        ("dhcp-hostsdir=/" + "a" * 1010, "1024"),
    ],
)
def test_check_line_refuses_what_dnsmasq_would_split_cut_or_reject(line, why):
    with pytest.raises(conf.DnsmasqLineError, match=why):
        conf.check_line(line)


def test_a_line_error_is_a_config_error():
    assert issubclass(conf.DnsmasqLineError, ConfigError)


def test_comment_lines_only_where_comments_are_allowed():
    assert conf.check_line("# phoneprov", comment=True) == "# phoneprov"
    with pytest.raises(conf.DnsmasqLineError, match="control character"):
        conf.check_line("# for /tmp/x\ndhcp-script=/tmp/evil", comment=True)


@pytest.mark.parametrize(
    "paths",
    [
        ("/h\ndhcp-script=/tmp/evil", "/o", "/hook"),
        ("/h", '/o"', "/hook"),
        ("/h", "/o", "/hook #1"),
        ("/h", "/o", "/ho\nok"),
    ],
)
def test_render_snippet_refuses_a_path_that_would_not_be_one_line(paths):
    with pytest.raises(conf.DnsmasqLineError):
        conf.render_snippet(BASE, *paths)


def test_render_snippet_refuses_a_header_that_would_split():
    with pytest.raises(conf.DnsmasqLineError):
        conf.render_snippet(BASE, "/h", "/o", "/hook", ["for /tmp/x\ndhcp-script=/tmp/evil"])


@pytest.mark.parametrize(
    "options",
    [
        conf.DhcpOptions(option43="42:01\ntag:x,66"),
        conf.DhcpOptions(option42=("10.0.0.1\n10.0.0.2",)),
        conf.DhcpOptions(option42=('10.0.0.1"',)),
        conf.DhcpOptions(option43="42:01 #x"),
    ],
)
def test_device_files_never_emit_a_broken_line(options):
    """The core computes only valid values; the writer still refuses any line that would not
    be one dnsmasq line, whatever path a value took to get there."""
    with pytest.raises(conf.DnsmasqLineError):
        conf.device_files(BASE, MAC, options)


@given(st.text(max_size=40))
def test_any_option_text_is_quoted_into_one_line_or_refused(text):
    try:
        line = f"tag:t,67,{conf.quote(text)}"
    except InputError:
        return
    assert conf.check_line(line) == line


@pytest.mark.parametrize("check", [conf.quote, conf.check_vendor_class, conf.check_line])
def test_a_trailing_newline_is_refused_too(check):
    """`$` in a regex also matches before a final newline: the checks must not use it."""
    with pytest.raises((InputError, conf.DnsmasqLineError)):
        check("Auerswald\n")


@pytest.mark.parametrize("path", ['ho"sts', "my #hosts", "hosts\n", " hosts", "h\u00f6sts"])
def test_check_path_is_for_the_config_schema(path):
    """An InputError (a ValueError), as the schema's checks raise."""
    with pytest.raises(InputError, match="cannot be a dnsmasq path"):
        conf.check_path(path)
    assert conf.check_path("/var/lib/phone prov/hosts#1") == "/var/lib/phone prov/hosts#1"
