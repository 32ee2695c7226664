import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.dhcp import (
    Option43,
    UnknownSub,
    decode_option43,
    encode_option43,
    join_66_67,
    parse_hex,
    phone_url,
    url_from_options,
)
from phoneprov.core.errors import InputError
from phoneprov.core.markers import DeviceInfo

SEED_43 = "42:0b:68:74:74:70:3a:2f:2f:66:6f:6f:00:43:0c:3c:48:57:54:59:50:3e:2e:62:61:6b:00"


@pytest.mark.parametrize(
    ("o66", "o67", "url"),
    [
        (
            "http://prov.server.com",
            "prov.py?mac=<MACADR>",
            "http://prov.server.com/prov.py?mac=<MACADR>",
        ),  # the seed's isc-dhcp example
        ("http://foo", "<HWTYP>.bak", "http://foo/<HWTYP>.bak"),
        ("http://foo/", "x.xml", "http://foo/x.xml"),
        ("http://foo", "/x.xml", "http://foo/x.xml"),
        ("http://foo/", "/x.xml", "http://foo/x.xml"),  # never doubled
        ("http://foo", None, "http://foo"),
        (None, "http://foo/x.xml", "http://foo/x.xml"),
        ("http://foo", "", "http://foo"),
    ],
)
def test_join(o66, o67, url):
    assert join_66_67(o66, o67) == url


def test_join_needs_something():
    with pytest.raises(InputError):
        join_66_67(None, "")


def test_seed_option43_byte_for_byte():
    assert encode_option43("http://foo", "<HWTYP>.bak") == SEED_43
    assert decode_option43(SEED_43) == Option43("http://foo", "<HWTYP>.bak")


@pytest.mark.parametrize(
    "text",
    [
        SEED_43,
        SEED_43.replace(":0b:", ":b:").replace(":0c:", ":c:").replace(":00", ":0"),  # dhclient
        SEED_43.replace(":", ""),  # plain hex
        SEED_43.replace(":", "").upper(),
        # without the trailing NULs (lengths one less)
        "42:0a:68:74:74:70:3a:2f:2f:66:6f:6f:43:0b:3c:48:57:54:59:50:3e:2e:62:61:6b",
    ],
)
def test_decode_accepts_every_form(text):
    assert decode_option43(text) == Option43("http://foo", "<HWTYP>.bak")


def test_unknown_suboptions_are_reported():
    value = decode_option43("01:02:aa:bb:42:02:78:00:ff")
    assert value == Option43("x", None, (UnknownSub(1, b"\xaa\xbb"),))
    assert value.unknown[0].hex == "aabb"


@pytest.mark.parametrize(
    "text",
    [
        "42",  # no length
        "42:05:68:74",  # truncated value
        "42:0b:68",
        "4",  # odd plain hex
        "zz:01",
        "42:0b:68:74:74:70:3a:2f:2f:66:6f:6f:00:42:02:78:00",  # twice
        "42:03:61:00:62",  # NUL inside
        "42:02:ff:00",  # not UTF-8
        "ff:42",  # data after end
        ":".join(["00"] * 256),  # overlong
    ],
)
def test_decode_errors(text):
    with pytest.raises(InputError):
        decode_option43(text)


def test_encode_refuses_values_that_do_not_fit():
    assert decode_option43(encode_option43("x" * 252)).option66 == "x" * 252
    with pytest.raises(InputError, match="sub-option holds at most 252"):
        encode_option43("x" * 253)
    with pytest.raises(InputError, match="one DHCP option holds 255"):
        encode_option43("x" * 200, "y" * 100)
    with pytest.raises(InputError):
        encode_option43("a\x00b")
    with pytest.raises(InputError):
        encode_option43()


printable = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FFF), max_size=80)


@given(st.one_of(st.none(), printable), st.one_of(st.none(), printable))
def test_round_trip(o66, o67):
    if o66 is None and o67 is None:
        return
    try:
        encoded = encode_option43(o66, o67)
    except InputError:
        return  # too long for one option: refused, never cut
    assert decode_option43(encoded) == Option43(o66, o67)
    assert decode_option43(encoded.replace(":", "")) == Option43(o66, o67)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_value_or_our_error(data):
    for form in (data, data.hex(), ":".join(f"{b:x}" for b in data)):
        with contextlib.suppress(InputError):
            assert isinstance(decode_option43(form), Option43)


@given(st.text(max_size=60))
def test_arbitrary_text_gives_a_value_or_our_error(text):
    try:
        parse_hex(text)
        decode_option43(text)
    except InputError:
        pass


def test_phone_url_plain_options_win_over_43():
    o43 = decode_option43(SEED_43)
    dev = DeviceInfo(mac="00:09:52:00:00:0e", type="D200")
    assert phone_url(None, None, o43, dev) == "http://foo/D200.bak"
    assert phone_url("http://bar", None, o43, dev) == "http://bar/D200.bak"
    assert phone_url(None, "prov.py?mac=<MACADR>", o43, dev) == (
        "http://foo/prov.py?mac=00095200000E"
    )


@pytest.mark.parametrize(
    ("o66", "o67"),
    [
        (None, "prov.py?mac=<MACADR>"),
        ("prov.example", "x.xml"),
        ("prov.example:8080", "x.xml"),
        ("ftp://prov.example", "x.xml"),
        ("http://", None),
        ("http:///x", None),
    ],
)
def test_phone_url_must_be_http(o66, o67):
    with pytest.raises(InputError, match="not an http"):
        phone_url(o66, o67)


def test_phone_url_takes_either_scheme_in_any_case():
    assert phone_url("HTTPS://foo", "x") == "HTTPS://foo/x"


def test_url_from_options_ignores_a_broken_43_when_66_67_suffice():
    found = url_from_options("http://bar", "x.xml", "42:ff")
    assert found.url == "http://bar/x.xml"
    assert len(found.warnings) == 1 and "option 43 ignored" in found.warnings[0]


def test_url_from_options_uses_43_for_what_66_67_lack():
    found = url_from_options(None, None, SEED_43, DeviceInfo(type="D200"))
    assert (found.url, found.warnings) == ("http://foo/D200.bak", ())
    assert url_from_options(None, "a.xml", SEED_43).url == "http://foo/a.xml"


def test_url_from_options_with_a_broken_43_that_was_needed_is_the_43_error():
    with pytest.raises(InputError, match="truncated"):
        url_from_options(None, "x.xml", "42:ff")
    with pytest.raises(InputError, match="truncated"):
        url_from_options(None, None, b"\x42\xff")
