"""`phoneprov plan` and `apply --plan` on a temp site: exit status, output, and that nothing
is written (every file of the site, its bytes and mtime, the same before and after)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneprov.cli import cli
from phoneprov.state.db import Lease, State
from sample_data import FRONT, NEW, RECEPTION, TEMPLATES, WAREHOUSE, device, four_phones


def write_inventory(site: Path, *extra: str, front: str = "Front desk", pw: str = "pw") -> None:
    text = four_phones(*extra, front=front)
    (site / "inventory.toml").write_text(text.replace('password = "pw"', f'password = "{pw}"', 1))
    (site / "inventory.toml").chmod(0o640)  # else `check` warns: a problem in every plan


@pytest.fixture
def site(tmp_path: Path) -> Path:
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    write_inventory(tmp_path)
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n'
        '[dhcp]\nntp = ["10.231.0.1"]\nhostsdir = "hosts"\noptsdir = "opts"\n'
        'dnsmasq_pidfile = "dnsmasq.pid"\n[security]\nmode = "token"\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\ntemplates = "templates"\nstate = "state.db"\n'
    )
    return tmp_path


def run(site: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(site / "pp.toml")])


def plan(site: Path, *args: str) -> tuple[int, list[str]]:
    result = run(site, "plan", *args)
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    return result.exit_code, result.stdout.splitlines()


def plan_json(site: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = run(site, *(args or ("plan",)), "--json")
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    return result.exit_code, json.loads(result.stdout)


def everything(site: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under the site (names too: a new file shows), by mtime and bytes."""
    found = {}
    for directory, _dirs, names in os.walk(site):
        for name in names:
            path = Path(directory, name)
            found[str(path.relative_to(site))] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def test_never_applied_then_applied_then_no_change(site: Path) -> None:
    status, lines = plan(site)
    assert status == 1
    assert f"+ {FRONT} added (D200, profile default)" in lines
    assert "note: never applied: every device is new" in lines
    assert any("token secret does not exist yet" in line for line in lines)
    assert not (site / "secret").exists()  # plan never makes it
    assert lines[-1] == "plan: 3 added, 0 removed, 0 changed, 0 to check-sync"

    assert run(site, "apply", "--resync").exit_code == 0
    assert plan(site) == (0, ["no change", "plan: 0 added, 0 removed, 0 changed, 0 to check-sync"])
    assert run(site, "apply", "--plan").exit_code == 0


def test_a_changed_device_names_fields_files_and_check_sync(site: Path) -> None:
    run(site, "apply", "--resync")
    with State(site / "state.db") as state:
        state.record_lease(Lease(FRONT, "10.231.0.50"), time.time())
    write_inventory(site, front="Lobby", pw="s3cret-new")
    status, lines = plan(site)
    assert status == 1
    assert lines == [
        f"~ {FRONT} changed (D200, profile default)",
        "    lines[0].display_name: Front desk -> Lobby",
        "    lines[0].password: *** -> ***",
        "    files: device.xml",
        f"check-sync (apply --resync): {FRONT}",
        "plan: 0 added, 0 removed, 1 changed, 1 to check-sync",
    ]
    status, data = plan_json(site)
    assert status == 1 and "s3cret" not in json.dumps(data)
    assert data == {
        "version": 1,
        "changed": True,
        "added": [],
        "removed": [],
        "changes": [
            {
                "mac": FRONT,
                "device": "D200, profile default",
                "fields": [
                    {"field": "lines[0].display_name", "old": "Front desk", "new": "Lobby"},
                    {"field": "lines[0].password", "old": "***", "new": "***"},
                ],
                "files": ["device.xml"],
                "dhcp": [],
            }
        ],
        "check_sync": [FRONT],
        "no_lease": [],
        "problems": [],
        "notes": [],
    }
    assert plan_json(site, "apply", "--plan") == (status, data)


def test_added_removed_and_dhcp_lines(site: Path) -> None:
    run(site, "apply", "--resync")
    write_inventory(site, device(NEW, "D200", "default", "204"))
    run(site, "apply")  # a plain apply: the new phone's files are written, not recorded
    (site / "inventory.toml").write_text(
        (site / "inventory.toml").read_text().replace(f'mac = "{WAREHOUSE}"', 'mac = "BAD"')
    )
    result = run(site, "plan")
    assert result.exit_code == 2 and "inventory.toml:" in result.stderr  # file:line, as check
    write_inventory(site)  # NEW removed again
    status, data = plan_json(site)
    assert status == 1
    (removed,) = data["removed"]
    host_line = (site / "hosts" / NEW).read_text().strip()
    assert removed["mac"] == NEW and removed["dhcp"][0] == {
        "directory": "dhcp-hostsdir",
        "old": [host_line],
        "new": [f"{host_line.split(',')[0]},set:phoneprov-removed"],
    }
    assert removed["dhcp"][1]["directory"] == "dhcp-optsdir" and removed["dhcp"][1]["new"] == []

    config = site / "pp.toml"  # every device's options change
    config.write_text(config.read_text().replace('ntp = ["10.231.0.1"]', 'ntp = ["10.231.0.9"]'))
    status, data = plan_json(site)
    changes = {c["mac"]: c for c in data["changes"]}
    assert sorted(changes) == sorted([FRONT, RECEPTION, WAREHOUSE])
    host, opts = changes[FRONT]["dhcp"]  # new options come with a new tag (DESIGN §3)
    assert (host["directory"], opts["directory"]) == ("dhcp-hostsdir", "dhcp-optsdir")
    assert host["old"] != host["new"]
    assert next(line for line in opts["old"] if ",42," in line).endswith(",42,10.231.0.1")
    assert next(line for line in opts["new"] if ",42," in line).endswith(",42,10.231.0.9")
    assert data["no_lease"] == [FRONT, RECEPTION, WAREHOUSE] and data["check_sync"] == []


def test_plan_writes_nothing(site: Path) -> None:
    run(site, "apply", "--resync")
    with State(site / "state.db") as state:
        state.record_lease(Lease(FRONT, "10.231.0.50"), time.time())
    write_inventory(site, device(NEW, "D200", "default", "204"), front="Lobby")
    before = everything(site)
    time.sleep(0.01)  # a write would show in any mtime
    assert plan(site)[0] == 1
    assert plan_json(site)[0] == 1
    assert run(site, "apply", "--plan").exit_code == 1
    assert everything(site) == before
    assert not (site / "state.db-wal").exists() and not (site / "state.db-shm").exists()


def test_a_fresh_site_is_not_written_either(site: Path) -> None:
    before = everything(site)
    assert plan(site)[0] == 1
    assert everything(site) == before  # no secret, no hostsdir, no state database


def test_problems_are_what_check_reports(site: Path) -> None:
    run(site, "apply")
    (site / "inventory.toml").chmod(0o644)
    status, data = plan_json(site)
    assert status == 0
    (problem,) = data["problems"]
    assert "readable by every user" in problem
    check = run(site, "check")
    assert problem in check.stdout
    broken = site / "templates" / "device.xml.j2"
    broken.write_text("<settings>{{ nope }}</settings>\n")
    result = run(site, "plan", "--json")
    assert result.exit_code == 2 and "device.xml.j2" in result.stderr and result.stdout == ""


def test_json_goes_with_plan_only(site: Path) -> None:
    result = run(site, "apply", "--json")
    assert result.exit_code == 2 and "--json goes with --plan" in result.stderr
    assert not (site / "hosts").exists()


def test_the_fields_record_is_private_and_holds_no_password(site: Path) -> None:
    write_inventory(site, pw="Zq-plain-secret")
    run(site, "apply")
    record = site / "hosts" / ".phoneprov-fields"
    assert record.stat().st_mode & 0o777 == 0o600
    text = record.read_text()
    assert "Zq-plain-secret" not in text and '"lines[0].display_name":"Front desk"' in text
    mtime = record.stat().st_mtime_ns
    time.sleep(0.01)
    run(site, "apply")  # nothing changed: not rewritten
    assert record.stat().st_mtime_ns == mtime
    write_inventory(site, pw="Zq-other-secret")
    run(site, "apply")  # no DHCP line changes, but the record does
    assert record.stat().st_mtime_ns != mtime
    assert plan(site)[0] == 0


def test_a_state_read_that_a_writer_spoiled_is_read_again(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a WAL the database is read as immutable: a writer (the hook) changing it
    meanwhile can spoil that read. It is read once more; failing twice is exit 2."""
    import sqlite3

    from phoneprov import plan as planning

    assert run(site, "apply", "--resync").exit_code == 0
    real = planning._read_state
    failures = iter([sqlite3.DatabaseError("database disk image is malformed")])

    def spoiled_once(*args: object) -> object:
        for error in failures:
            raise error
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(planning, "_read_state", spoiled_once)
    assert plan(site)[0] == 0

    def always(*_args: object) -> object:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(planning, "_read_state", always)
    result = run(site, "plan")
    assert result.exit_code == 2
    assert "cannot read the state database (database disk image is malformed); try again" in (
        result.stderr
    )
