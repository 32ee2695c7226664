"""A throwaway site for the HTTP endpoint: shipped templates, three phones, state in tmp."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
SERVER = "http://10.0.0.1:8080"
INVENTORY = """
[profiles.default]
templates = ["office.xml"]

[profiles.reception]
templates = ["office.xml", "reception.xml"]

[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
serial = "D200000E"
profile = "default"
[[devices.lines]]
username = "201"
password = "pw<&>201"
display_name = "Front desk"
registrar = "pbx.example.lan"
[[devices.keys]]
number = 1
label = "Reception"
target = "202"

[[devices]]
mac = "00-09-52-00-00-1F"
type = "D400"
profile = "reception"
lines = [{ username = "202", password = "pw202", registrar = "pbx.example.lan" }]

[[devices]]
mac = "0009.5200.0030"
type = "D100"
profile = "default"
lines = [{ username = "203", password = "pw203", registrar = "pbx.example.lan" }]
"""
D200 = "00095200000E"


def write_site(root: Path, mode: str = "lease", extra: str = "", url_style: str = "query") -> Path:
    shutil.copytree(ROOT / "conf" / "templates", root / "templates", dirs_exist_ok=True)
    (root / "inventory.toml").write_text(INVENTORY)
    config = root / "phoneprov.toml"
    config.write_text(
        f'[server]\nurl = "{SERVER}"\nlisten = "127.0.0.1:8080"\nurl_style = "{url_style}"\n'
        f'[security]\nmode = "{mode}"\nsecret_file = "secret"\n{extra}'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
        '[dhcp]\nleasefile = "dnsmasq.leases"\n'  # none until a test writes it
    )
    return config


@pytest.fixture
def site(tmp_path: Path) -> Callable[..., Config]:
    """site(mode="lease", extra="", url_style="query") -> Config in a fresh directory."""

    def make(mode: str = "lease", extra: str = "", url_style: str = "query") -> Config:
        return load_config(write_site(tmp_path, mode, extra, url_style))

    return make


@pytest.fixture(autouse=True)
def close_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Provisioning a test makes is closed at its end (its fetch-log thread stops)."""
    from phoneprov.web import endpoint as service

    made: list[service.Provisioning] = []
    original = service.Provisioning.__init__

    def tracking_init(self: service.Provisioning, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(service.Provisioning, "__init__", tracking_init)
    yield
    for provisioning in made:
        provisioning.close()
