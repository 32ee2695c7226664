"""The admin's pages through Flask's test client: shells that need a login, static assets
that do not, nothing loaded from elsewhere, and the API paths the page's script asks for."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from phoneprov.admin import users
from phoneprov.admin.app import create_admin_app
from phoneprov.admin.pages import PHONE_COLUMNS

STATIC = Path(users.__file__).parent / "static"
TEMPLATES = Path(users.__file__).parent / "templates"
PAGES = ("/", "/phones/00-09-52-00-00-0E", "/discovered", "/doctor")
PASSWORD = "a good password"


class Links(HTMLParser):
    """Every src/href/action of a page, and the csrf-token meta tag."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.csrf = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action") and v]
        if tag == "meta" and found.get("name") == "csrf-token":
            self.csrf = found.get("content") or ""


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


@pytest.fixture
def app(site):
    config = site()
    users.add_user(config.admin.users_file, "alice", PASSWORD)
    return create_admin_app(config)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def logged_in(client):
    token = parse(client.get("/login").get_data(as_text=True)).csrf
    answer = client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code in (302, 303), answer.get_data(as_text=True)
    return client


@pytest.mark.parametrize("path", PAGES)
def test_every_page_needs_a_login(client, path):
    answer = client.get(path)
    assert answer.status_code in (302, 303)
    assert answer.headers["Location"].split("?")[0].endswith("/login")


@pytest.mark.parametrize("name", ["admin.js", "admin.css"])
def test_static_assets_need_no_login(client, name):
    with client.get(f"/static/{name}") as answer:  # a file response: closed here
        assert answer.status_code == 200
        assert answer.get_data() == (STATIC / name).read_bytes()


def test_the_phones_page_has_every_column_a_filter_and_its_refresh(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    headers = re.findall(r'<th scope="col" data-col="(\w+)"[^>]*><button[^>]*>([^<]+)<', html)
    assert headers == list(PHONE_COLUMNS)
    assert '<label for="filter">' in html and 'id="filter"' in html
    assert re.search(r'data-page="phones" data-refresh-ms="\d+"', html)
    assert parse(html).csrf  # the page's script sends it with its POSTs


def test_a_phone_page_takes_the_mac_in_any_notation(logged_in):
    for mac in ("00-09-52-00-00-0E", "0009.5200.000e", "00095200000E"):
        html = logged_in.get(f"/phones/{mac}").get_data(as_text=True)
        assert 'data-mac="00:09:52:00:00:0e"' in html
        assert 'href="/api/v1/phones/00:09:52:00:00:0e/backup"' in html
    assert logged_in.get("/phones/not-a-mac").status_code == 404


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_nothing_from_elsewhere(logged_in, path):
    answer = logged_in.get(path)
    assert answer.status_code == 200
    links = parse(answer.get_data(as_text=True))
    assert "/static/admin.js" in links.urls and "/static/admin.css" in links.urls
    assert all(url.startswith("/") and not url.startswith("//") for url in links.urls), links.urls


def test_the_shipped_files_name_no_other_host():
    for path in [*STATIC.iterdir(), *TEMPLATES.iterdir()]:
        text = path.read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path


def test_the_api_paths_the_script_asks_for_exist(app, logged_in):
    script = (STATIC / "admin.js").read_text()
    fixed = set(re.findall(r'api\("(/[a-z]+)"', script))
    assert fixed == {"/phones", "/models", "/discovered", "/doctor"}
    for path in sorted(fixed):
        answer = logged_in.get("/api/v1" + path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True))
        assert answer.is_json
    per_phone = re.findall(r'api\("(/[a-z]+)/" \+ macPath\(mac\) \+ (?:"(/[a-z]+)"|\()', script)
    assert sorted(set(per_phone)) == [
        ("/discovered", "/enrol"),
        ("/phones", ""),
        ("/phones", "/resync"),
    ]
    rules = {re.sub(r"<[^>]+>", "<mac>", rule.rule) for rule in app.url_map.iter_rules()}
    for prefix, suffix in per_phone:
        assert f"/api/v1{prefix}/<mac>{suffix}" in rules


def test_the_script_puts_values_in_as_text_never_as_html():
    """Discovered phones' vendor classes and addresses come from any DHCP client on the LAN:
    the page must never parse them as HTML (the CSP forbids inline scripts as well)."""
    script = (STATIC / "admin.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
