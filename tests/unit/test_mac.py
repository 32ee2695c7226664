import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import InputError
from phoneprov.core.mac import colon_mac, mac_has_oui, norm_mac, norm_oui


@pytest.mark.parametrize(
    "text",
    ["00:09:52:00:00:0e", "00-09-52-00-00-0E", "0009.5200.000e", "00095200000e", "00095200000E"],
)
def test_every_accepted_notation_normalises_to_the_phone_form(text):
    assert norm_mac(text) == "00095200000E"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00:09:52:00:00",
        "00:09:52:00:00:0g",
        "00:09:52-00:00:0e",
        "0009.5200.000",
        "0009520000",
        "00:09:52:00:00:0e:11",
        "0:9:52:0:0:e",
        "00095200000e0",
        "00 09 52 00 00 0e",
    ],
)
def test_anything_else_is_refused_quoting_the_value(text):
    with pytest.raises(InputError) as err:
        norm_mac(text)
    assert repr(text) in str(err.value)


@given(st.binary(min_size=6, max_size=6))
def test_all_forms_agree(raw):
    bare = raw.hex()
    forms = [
        bare,
        ":".join(bare[i : i + 2] for i in range(0, 12, 2)),
        "-".join(bare[i : i + 2] for i in range(0, 12, 2)).upper(),
        ".".join(bare[i : i + 4] for i in range(0, 12, 4)),
    ]
    assert {norm_mac(f) for f in forms} == {bare.upper()}
    assert colon_mac(bare) == forms[1]


@given(st.text(max_size=30))
def test_arbitrary_text_gives_a_mac_or_our_error(text):
    with contextlib.suppress(InputError):
        assert len(norm_mac(text)) == 12


def test_oui():
    assert norm_oui("00:09:52") == "000952"
    assert mac_has_oui("00:09:52:aa:bb:cc", {"000952"})
    assert not mac_has_oui("00:09:53:aa:bb:cc", {"000952"})
    with pytest.raises(InputError):
        norm_oui("00:09")
