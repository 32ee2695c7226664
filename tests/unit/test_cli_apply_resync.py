"""`phoneprov apply --resync` without a network: which devices it selects.

No device has a lease, so a selected device is reported `no lease (not sent)` and nothing
is sent; the shipped templates are rendered from a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.state.db import State
from sample_data import FRONT, NEW, RECEPTION, TEMPLATES, WAREHOUSE, device, four_phones


def write_inventory(site: Path, *extra: str, front: str = "Front desk") -> None:
    (site / "inventory.toml").write_text(four_phones(*extra, front=front))


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    write_inventory(tmp_path)
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n'
        '[dhcp]\nntp = ["10.231.0.1"]\nhostsdir = "hosts"\noptsdir = "opts"\n'
        'dnsmasq_pidfile = "dnsmasq.pid"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    return tmp_path


def apply(site: Path, *args: str) -> tuple[int, list[str]]:
    """Exit status and the output after the summary line."""
    result = CliRunner().invoke(cli, ["apply", "-c", str(site / "pp.toml"), *args])
    lines = result.stdout.splitlines()
    assert lines and lines[0].startswith("ok: "), (result.stdout, result.stderr)
    return result.exit_code, lines[1:]


def not_sent(*macs: str) -> list[str]:
    return [f"{mac} - no lease (not sent)" for mac in macs]


def test_first_run_records_then_nothing_changed(site: Path) -> None:
    assert apply(site, "--resync") == (0, ["resync: first run, recorded 3 devices; nothing sent"])
    assert apply(site, "--resync") == (0, ["resync: no device changed"])
    with State(site / "state.db") as state:
        assert sorted(state.rendered()) == sorted([FRONT, RECEPTION, WAREHOUSE])


def test_selects_what_changed(site: Path) -> None:
    apply(site, "--resync")
    write_inventory(site, front="Lobby")  # one device's line 1
    assert apply(site, "--resync") == (0, not_sent(FRONT))
    assert apply(site, "--resync") == (0, ["resync: no device changed"])

    reception = site / "templates" / "profiles" / "reception.xml.j2"  # one profile's layer
    reception.write_text(reception.read_text() + "<!-- edited -->\n")
    assert apply(site, "--resync") == (0, not_sent(RECEPTION))

    office = site / "templates" / "profiles" / "office.xml.j2"  # a layer both profiles use
    office.write_text(office.read_text() + "<!-- edited -->\n")
    assert apply(site, "--resync") == (0, not_sent(FRONT, RECEPTION, WAREHOUSE))

    write_inventory(site, device(NEW, "D200", "default", "204"), front="Lobby")  # added
    assert apply(site, "--resync") == (0, not_sent(NEW))
    write_inventory(site, front="Lobby")  # removed again: never resynced
    assert apply(site, "--resync") == (0, ["resync: no device changed"])


def test_dhcp_options_count_as_a_change(site: Path) -> None:
    apply(site, "--resync")
    config = site / "pp.toml"
    config.write_text(config.read_text().replace('ntp = ["10.231.0.1"]', 'ntp = ["10.231.0.9"]'))
    assert apply(site, "--resync") == (0, not_sent(FRONT, RECEPTION, WAREHOUSE))


def test_a_plain_apply_between_does_not_hide_a_change(site: Path) -> None:
    apply(site, "--resync")
    write_inventory(site, front="Lobby")
    assert apply(site) == (0, [])  # renders nothing, records nothing
    assert apply(site, "--resync") == (0, not_sent(FRONT))


def test_a_broken_template_fails_before_anything_is_written(site: Path) -> None:
    apply(site, "--resync")
    write_inventory(site, device(NEW, "D200", "default", "204"))  # plain apply would write it
    (site / "templates" / "device.xml.j2").write_text("<settings>{{ nope }}</settings>\n")
    result = CliRunner().invoke(cli, ["apply", "-c", str(site / "pp.toml"), "--resync"])
    assert result.exit_code == 2 and "device.xml.j2" in result.stderr
    assert not (site / "hosts" / NEW).exists()
    with State(site / "state.db") as state:
        assert NEW not in state.rendered()


def test_an_unusable_state_database_fails_before_anything_is_written(site: Path) -> None:
    config = site / "pp.toml"
    config.write_text(config.read_text().replace('"state.db"', '"missing/state.db"'))
    result = CliRunner().invoke(cli, ["apply", "-c", str(config), "--resync"])
    assert result.exit_code == 2 and "cannot open the state database" in result.stderr
    assert not (site / "hosts").exists()
