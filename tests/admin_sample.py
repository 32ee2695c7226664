"""A throwaway site for the admin app (shipped templates, three phones, state and dnsmasq
files in tmp, one admin user) and helpers to log in and to put facts into the state
database (on pytest's pythonpath: the admin tests of every kind share it)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from phoneprov.admin.users import add_user
from phoneprov.config import Config, load_config
from phoneprov.state.db import Discovered, Fetch, Lease, State

ROOT = Path(__file__).resolve().parents[1]
USER, PASSWORD = "alice", "correct horse battery"
D200, D400, D100 = "00095200000E", "00095200001F", "000952000030"
STRANGER = "000952ABCDEF"


SERVER = "http://10.0.0.1:8080"
INVENTORY = """
[profiles.default]
templates = ["office.xml"]
[profiles.reception]
templates = ["office.xml", "reception.xml"]
lines = [{ username = "299", registrar = "pbx.example.lan", port = 5070 }]

[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "default"
[[devices.lines]]
username = "201"
password = "pw201-secret"
display_name = "Front desk"
registrar = "pbx.example.lan"

[[devices]]
mac = "00-09-52-00-00-1F"
type = "D400"
profile = "reception"
lines = [{ username = "202", password = "pw202-secret", registrar = "pbx.example.lan" }]

[[devices]]
mac = "0009.5200.0030"
type = "D100"
profile = "default"
"""


def admin_config(root: Path, extra: str = "", server: str = SERVER) -> Config:
    """A site in `root`: `extra` is TOML appended to the config (its own tables)."""
    shutil.copytree(ROOT / "conf" / "templates", root / "templates", dirs_exist_ok=True)
    (root / "inventory.toml").write_text(INVENTORY)
    path = root / "phoneprov.toml"
    path.write_text(
        f'[server]\nurl = "{server}"\nlisten = "127.0.0.1:8080"\n'
        '[security]\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
        '[dhcp]\nleasefile = ""\nhostsdir = "hosts"\noptsdir = "opts"\n'
        'dnsmasq_pidfile = "dnsmasq.pid"\nvendor_classes = ["Auerswald"]\n' + extra
    )
    config = load_config(path)
    add_user(config.admin.users_file, USER, PASSWORD)
    return config


def csrf_of(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]


def logged_in(app: Flask) -> tuple[FlaskClient, str]:
    """A test client with a session, and the session's CSRF token."""
    client = app.test_client()
    token = csrf_of(client)
    response = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    with client.session_transaction() as session:
        return client, str(session["csrf"])


def record(
    config: Config,
    *,
    leases: Sequence[Lease] = (),
    fetches: Sequence[Fetch] = (),
    discovered: Sequence[Discovered] = (),
) -> None:
    """Facts into the state database as the hook and the endpoint write them."""
    with State(config.state) as state:
        for lease in leases:
            state.record_lease(lease, lease.last_seen)
        for fetch in fetches:
            state.log_fetch(fetch)
        for found in discovered:
            state.record_discovered(found)
