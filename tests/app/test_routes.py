"""The HTTP endpoint through Flask's test client: every route, every refusal."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from phoneprov.config import Config
from phoneprov.core.layout import device_token
from phoneprov.core.reference import parse_reference, parse_xml, resolve_reference
from phoneprov.secret import load_secret
from phoneprov.state.db import Lease, State
from phoneprov.web.app import create_app, create_wsgi
from phoneprov.web.routes import provisioning

from .conftest import D200, SERVER

PHONE_IP = "10.0.0.50"
FILES = ["common.xml", "model.xml", "office.xml", "device.xml"]


def client(app: Flask, ip: str = PHONE_IP) -> FlaskClient:
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def lease(config: Config, mac: str = D200, ip: str = PHONE_IP) -> None:
    with State(config.state) as state:
        state.record_lease(Lease(mac, ip), time.time())


def logged(app: Flask) -> list[tuple[str | None, str, str, int, int]]:
    provisioning(app).close()  # drains the background writer
    with State(provisioning(app).config.state) as state:
        return [(f.mac, f.ip, f.path, f.status, f.bytes) for f in reversed(state.fetches())]


@pytest.fixture
def open_app(site: Callable[..., Config]) -> Flask:
    return create_app(site("open"))


# routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/prov.py?mac=00095200000E",
        "/prov.py?mac=00:09:52:00:00:0e",
        "/prov.py?mac=00-09-52-00-00-0E",
        "/prov.py?mac=0009.5200.000e",
    ],
)
def test_query_entry_in_any_mac_notation(open_app: Flask, url: str) -> None:
    response = client(open_app).get(url)
    assert response.status_code == 200
    assert response.content_type == "application/xml; charset=utf-8"
    refs = parse_reference(response.data)
    assert refs == tuple(f"prov/D200/{D200}/{name}" for name in FILES)


def test_path_entry_lists_files_relative_to_itself(open_app: Flask) -> None:
    response = client(open_app).get("/prov/d200/00:09:52:00:00:0E.xml")
    assert response.status_code == 200
    assert parse_reference(response.data) == tuple(f"{D200}/{name}" for name in FILES)


@pytest.mark.parametrize("entry", ["/prov.py?mac=00095200000E", "/prov/D200/00095200000E.xml"])
def test_every_listed_file_resolves_to_well_formed_xml(open_app: Flask, entry: str) -> None:
    c = client(open_app)
    base = "http://phones.example:8081" + entry
    for ref in parse_reference(c.get(entry).data):
        url = resolve_reference(base, ref)
        assert url.startswith("http://phones.example:8081/prov/D200/00095200000E/")
        response = c.get(url.removeprefix("http://phones.example:8081"))
        assert response.status_code == 200, url
        parse_xml(response.data)


def test_device_file_carries_escaped_vars_and_the_appliance(open_app: Flask) -> None:
    c = client(open_app)
    device = c.get(f"/prov/D200/{D200}/device.xml").data
    assert b"<password>pw&lt;&amp;&gt;201</password>" in device
    assert b"<displayname>Front desk</displayname>" in device
    assert b'<key keyNumber="1" label="Reception"' in device
    common = c.get(f"/prov/D200/{D200}/common.xml").data
    assert b"<allowlistEntry>10.0.0.1</allowlistEntry>" in common  # check-sync allowlist


def test_profile_layers_in_order(open_app: Flask) -> None:
    refs = parse_reference(client(open_app).get("/prov/D400/00095200001F.xml").data)
    assert [r.rsplit("/", 1)[1] for r in refs] == [
        "common.xml",
        "model.xml",
        "office.xml",
        "reception.xml",
        "device.xml",
    ]


def test_etag_gives_304_and_head_has_no_body(open_app: Flask) -> None:
    c = client(open_app)
    first = c.get(f"/prov/D200/{D200}/device.xml")
    etag = first.headers["ETag"]
    again = c.get(f"/prov/D200/{D200}/device.xml", headers={"If-None-Match": etag})
    assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", etag)
    other = c.get(f"/prov/D200/{D200}/device.xml", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200
    head = c.head(f"/prov/D200/{D200}/device.xml")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(first.data))


# refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/prov.py",
        "/prov.py?mac=nonsense",
        "/prov/D200/../../etc/passwd",
        "/prov/D200/00095200000E/..",
        "/prov/D200/00095200000E/.hidden",
        "/prov/D200/00095200000E/a/b.xml",
        "/prov/D2%2F00/00095200000E.xml",
        "/t/short/prov.py?mac=00095200000E",
        "/etc/passwd",
        "/prov.py?mac=" + "0" * 5000,
    ],
)
def test_not_a_provisioning_url_is_404(open_app: Flask, url: str) -> None:
    response = client(open_app).get(url)
    assert response.status_code == 404
    assert response.data == b"not found\n"


def test_unknown_mac_and_refused_look_the_same(site: Callable[..., Config]) -> None:
    config = site("lease")
    lease(config, ip="10.0.0.99")
    app = create_app(config)
    unknown = client(app).get("/prov.py?mac=00095200FFFF")
    refused = client(app).get("/prov.py?mac=00095200000E")
    assert unknown.status_code == refused.status_code == 403
    assert unknown.data == refused.data == b"forbidden\n"
    assert dict(unknown.headers) == dict(refused.headers)


def test_lease_mode_serves_only_the_lease_holder(site: Callable[..., Config]) -> None:
    config = site("lease")
    lease(config)
    app = create_app(config)
    assert client(app, PHONE_IP).get(f"/prov/D200/{D200}/device.xml").status_code == 200
    assert client(app, "10.0.0.51").get(f"/prov/D200/{D200}/device.xml").status_code == 403
    assert client(app, PHONE_IP).get("/prov/D400/00095200001F.xml").status_code == 403


def test_lease_mode_without_any_lease_refuses(site: Callable[..., Config]) -> None:
    assert client(create_app(site("lease"))).get("/prov.py?mac=00095200000E").status_code == 403


def test_token_mode(site: Callable[..., Config]) -> None:
    config = site("token")
    lease(config)  # a lease alone is not enough in token mode
    app = create_app(config)
    token = device_token(load_secret(config.security.secret_file), D200)
    c = client(app, "10.9.9.9")
    assert c.get(f"/t/{token}/prov.py?mac={D200}").status_code == 200
    refs = parse_reference(c.get(f"/t/{token}/prov.py?mac={D200}").data)
    base = f"{SERVER}/t/{token}/prov.py?mac={D200}"
    for ref in refs:
        path = resolve_reference(base, ref).removeprefix(SERVER)
        assert path.startswith(f"/t/{token}/prov/D200/{D200}/")
        assert c.get(path).status_code == 200
    assert client(app, PHONE_IP).get(f"/prov.py?mac={D200}").status_code == 403
    other = device_token(load_secret(config.security.secret_file), "00095200001F")
    assert c.get(f"/t/{other}/prov.py?mac={D200}").status_code == 403


def test_wrong_model_in_url_is_refused(open_app: Flask) -> None:
    assert client(open_app).get(f"/prov/D400/{D200}.xml").status_code == 403


def test_file_the_device_does_not_have_is_404(open_app: Flask) -> None:
    assert client(open_app).get(f"/prov/D200/{D200}/reception.xml").status_code == 404


def test_refusals_are_rate_limited_per_ip(site: Callable[..., Config]) -> None:
    app = create_app(site("open", extra="refused_per_minute = 3\n"))
    prober, phone = client(app, "10.0.0.66"), client(app, PHONE_IP)
    codes = [prober.get(f"/prov.py?mac=0009520000{i:02X}").status_code for i in range(0x40, 0x45)]
    assert codes == [403, 403, 403, 429, 429]
    assert prober.get(f"/prov.py?mac={D200}").status_code == 429  # even a valid one
    assert phone.get(f"/prov.py?mac={D200}").status_code == 200  # other IPs are not affected


def test_refusal_is_logged_with_source_ip(
    site: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    config = site("lease")
    app = create_app(config)
    client(app, "10.0.0.77").get("/prov.py?mac=00095200FFFF")
    lease(config, mac="00095200FFFF", ip="10.0.0.78")
    client(app, "10.0.0.78").get("/prov.py?mac=00095200FFFF")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    assert "ip=10.0.0.77" in lines[0] and "mac=00095200FFFF" in lines[0]
    assert "reason=10.0.0.77 holds no lease" in lines[0]  # the same for a known MAC
    assert "reason=unknown MAC" in lines[1]  # told only to the lease holder's request


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_are_405(open_app: Flask, method: str) -> None:
    response = getattr(client(open_app), method)(f"/prov.py?mac={D200}", data=b"x")
    assert response.status_code in (405, 413)
    assert b"<" not in response.data


def test_trusted_proxy_decides_the_client_ip(site: Callable[..., Config]) -> None:
    config = site("lease", extra="trusted_proxies = 1\n")
    lease(config)
    app = create_app(config)
    proxy = client(app, "127.0.0.1")
    url = f"/prov/D200/{D200}/device.xml"
    assert proxy.get(url, headers={"X-Forwarded-For": f"1.2.3.4, {PHONE_IP}"}).status_code == 200
    assert proxy.get(url, headers={"X-Forwarded-For": "10.0.0.51"}).status_code == 403
    # without a trusted proxy, X-Forwarded-For is ignored
    plain = create_app(site("lease"))
    assert (
        client(plain, "127.0.0.1").get(url, headers={"X-Forwarded-For": PHONE_IP}).status_code
        == 403
    )


# templates, cache, fetch log ---------------------------------------------------------------


def test_template_error_is_500_and_logged_never_partial(
    site: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    config = site("open")
    (config.templates / "device.xml.j2").write_text("<settings><a>{{ missing }}</a></settings>\n")
    response = client(create_app(config)).get(f"/prov/D200/{D200}/device.xml")
    assert (response.status_code, response.data) == (500, b"internal error\n")
    line = next(r.getMessage() for r in caplog.records if "template error" in r.getMessage())
    assert "device.xml.j2:1" in line and "missing" in line


def test_changed_template_and_inventory_are_served_fresh(site: Callable[..., Config]) -> None:
    config = site("open")
    app = create_app(config)
    provisioning(app).catalog.check_every = 0
    c = client(app)
    url = f"/prov/D200/{D200}/office.xml"
    before = c.get(url)
    template = config.templates / "profiles" / "office.xml.j2"
    template.write_text("<settings><changed>yes</changed></settings>\n")
    after = c.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and b"<changed>yes</changed>" in after.data
    inventory = config.inventory_path
    inventory.write_text(inventory.read_text().replace('"201"', '"2010"'))
    assert b"<username>2010</username>" in c.get(f"/prov/D200/{D200}/device.xml").data


def test_fast_path_answers_like_flask(site: Callable[..., Config]) -> None:
    config = site("open")
    fast, slow = create_app(config), create_app(config, fast_path=False)
    urls = [f"/prov.py?mac={D200}", f"/prov/D200/{D200}.xml", f"/prov/D200/{D200}/device.xml"]
    for url in urls:
        client(fast).get(url)  # fill the cache
        a, b = client(fast).get(url), client(slow).get(url)
        assert (a.status_code, a.data, dict(a.headers)) == (b.status_code, b.data, dict(b.headers))
        etag = {"If-None-Match": a.headers["ETag"]}
        a, b = client(fast).get(url, headers=etag), client(slow).get(url, headers=etag)
        assert (
            (a.status_code, dict(a.headers))
            == (b.status_code, dict(b.headers))
            == (
                304,
                dict(b.headers),
            )
        )


@pytest.mark.parametrize("fast_path", [True, False])
def test_one_request_path_behind_the_dispatch_and_in_flask(
    site: Callable[..., Config], fast_path: bool
) -> None:
    app = create_app(site("open"), fast_path=fast_path)
    service, calls = provisioning(app), []
    handle = service.handle
    service.handle = lambda *a: calls.append(a) or handle(*a)  # type: ignore[method-assign]
    url = f"/prov/D200/{D200}/device.xml"
    assert client(app).get(url).status_code == client(app).head(url).status_code == 200
    assert [c[0] for c in calls] == [f"/prov/D200/{D200}/device.xml"] * 2


def test_phones_never_make_the_server_load_flask(open_app: Flask) -> None:
    wsgi = create_wsgi(provisioning(open_app))
    statuses: list[str] = []
    for method in ("GET", "HEAD"):
        environ = {"REQUEST_METHOD": method, "PATH_INFO": f"/prov/D200/{D200}/device.xml"}
        wsgi(environ | {"REMOTE_ADDR": "10.0.0.5"}, lambda s, h: statuses.append(s))
    assert statuses == ["200 OK", "200 OK"]
    assert wsgi.app.app is None  # type: ignore[attr-defined]  # the lazy Flask app


def test_every_fetch_is_logged(site: Callable[..., Config]) -> None:
    config = site("lease")
    lease(config)
    app = create_app(config)
    c = client(app)
    size = len(c.get(f"/prov/D200/{D200}/device.xml").data)
    client(app, "10.0.0.51").get(f"/prov/D200/{D200}/device.xml")
    c.get("/nothing")
    assert logged(app) == [
        (D200, PHONE_IP, f"/prov/D200/{D200}/device.xml", 200, size),
        (D200, "10.0.0.51", f"/prov/D200/{D200}/device.xml", 403, len(b"forbidden\n")),
        (None, PHONE_IP, "/nothing", 404, len(b"not found\n")),
    ]


def test_token_is_not_logged_in_full(site: Callable[..., Config]) -> None:
    config = site("token")
    app = create_app(config)
    token = device_token(load_secret(config.security.secret_file), D200)
    client(app).get(f"/t/{token}/prov.py?mac={D200}")
    (entry,) = logged(app)
    assert token not in entry[2] and entry[2].startswith(f"/t/{token[:4]}.../prov.py")


def test_open_mode_warns_at_start(
    site: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    create_app(site("open"))
    assert any("OPEN" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    caplog.clear()
    create_app(site("lease"))
    assert not any("OPEN" in r.getMessage() for r in caplog.records)


def test_secret_file_is_created_private(site: Callable[..., Config]) -> None:
    config = site("lease")
    create_app(config)
    assert Path(config.security.secret_file).stat().st_mode & 0o777 == 0o600


def test_a_new_lease_counts_at_once(site: Callable[..., Config]) -> None:
    config = site("lease")
    app = create_app(config)
    url = f"/prov/D200/{D200}/device.xml"
    assert client(app).get(url).status_code == 403
    lease(config)  # the dnsmasq hook records the lease a moment later
    assert client(app).get(url).status_code == 200
    lease(config, ip="10.0.0.60")  # a new address counts at once too
    assert client(app, "10.0.0.60").get(url).status_code == 200
