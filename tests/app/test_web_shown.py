"""The path as logged: printable ASCII as it came, anything else escaped; tokens cut short."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from phoneprov.web.endpoint import MAX_LOGGED_PATH, _shown


@given(st.text(max_size=400), st.none() | st.text(max_size=20))
def test_the_logged_path_is_the_escaped_path(path: str, query_mac: str | None) -> None:
    shown = f"{path}?mac={query_mac}" if query_mac is not None else path
    if not shown.startswith("/t/"):  # (tokens: below)
        expected = shown[:MAX_LOGGED_PATH].encode("unicode_escape").decode("ascii")
        assert _shown(path, query_mac) == expected


def test_what_a_phone_asks_for_is_logged_as_it_came_and_the_rest_escaped() -> None:
    assert _shown("/prov/D200/00095200000E/device.xml", None) == (
        "/prov/D200/00095200000E/device.xml"
    )
    assert _shown("/prov.py", "00:09:52:00:00:0e") == "/prov.py?mac=00:09:52:00:00:0e"
    assert _shown("/a\nb\\c\x00é", None) == "/a\\nb\\\\c\\x00\\xe9"
    assert _shown("/t/abcdefgh/prov.py", "x") == "/t/abcd.../prov.py?mac=x"
