"""core.layout: the URLs handed out and the requests understood are one grammar."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import InputError
from phoneprov.core.layout import (
    Layout,
    ProvRequest,
    device_token,
    norm_device_type,
    parse_request,
    request_path,
)
from phoneprov.core.reference import resolve_reference

MAC = "00095200000E"
TOKEN = device_token(b"secret", MAC)
LAYOUTS = [Layout("query"), Layout("path"), Layout("query", "cfg.php")]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_entry_url_handed_out_is_understood(layout: Layout, token: str | None) -> None:
    url = layout.entry_url("http://10.0.0.1:8080", "D200", "00:09:52:00:00:0e", token)
    path, _, query = url.removeprefix("http://10.0.0.1:8080").partition("?mac=")
    req = parse_request(layout, path, query or None)
    assert (req.mac, req.name, req.style, req.token) == (MAC, None, layout.style, token)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("token", [None, TOKEN])
def test_listed_files_resolve_to_file_requests(layout: Layout, token: str | None) -> None:
    entry = layout.entry_url("http://h:81", "D200", MAC, token)
    for ref, name in zip(
        layout.file_refs("D200", MAC, ["common.xml", "x.xml"]), ["common.xml", "x.xml"], strict=True
    ):
        url = resolve_reference(entry, ref)
        req = parse_request(layout, url.removeprefix("http://h:81"), None)
        assert req == ProvRequest(MAC, name, "path", "D200", token)


@pytest.mark.parametrize(
    "req",
    [
        ProvRequest(MAC, None, "query"),
        ProvRequest(MAC, None, "path", "D400"),
        ProvRequest(MAC, "device.xml", "path", "D100", TOKEN),
    ],
)
def test_request_path_round_trip(req: ProvRequest) -> None:
    path, _, query = request_path(Layout(), req).partition("?mac=")
    assert parse_request(Layout(), path, query or None) == req


@pytest.mark.parametrize(
    ("path", "mac"),
    [
        ("/prov.py", None),
        ("/prov.py", "zz"),
        ("/other.py", MAC),
        ("prov.py", MAC),
        ("/prov/D200/..", None),
        ("/prov/D200/00095200000E/../x", None),
        ("/prov/D200/00095200000E/.env", None),
        ("/prov/D2 00/00095200000E.xml", None),
        ("/prov/D200/00095200000E.cfg", None),
        ("/prov//00095200000E.xml", None),
        ("/t/XYZ/prov.py", MAC),
        ("/t/" + "A" * 24 + "/prov.py", MAC),  # tokens are lower-case hex
        ("/" + "a/" * 300, None),
        ("/prov/D200/00095200000E/a\x00.xml", None),
    ],
)
def test_not_provisioning_urls(path: str, mac: str | None) -> None:
    with pytest.raises(InputError):
        parse_request(Layout(), path, mac)


def test_device_type_normalised_like_the_inventory() -> None:
    assert norm_device_type("d-400") == "D400"
    with pytest.raises(InputError):
        norm_device_type("../x")


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=20)))
def test_any_input_gives_a_request_or_input_error(path: str, mac: str | None) -> None:
    try:
        req = parse_request(Layout(), "/" + path, mac)
    except InputError:
        return
    assert len(req.mac) == 12 and (req.name is None or "/" not in req.name)
