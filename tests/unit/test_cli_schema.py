"""`phoneprov schema learn|show`: the learned schema beside the config, listed with sources."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.settings_schema import learned_path

BACKUP = b"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <identities version="1.34.1">
    <identity><username>201</username><authName>201a</authName></identity>
  </identities>
  <time version="1.34.1"><ntpServer>pool.ntp.org</ntpServer></time>
</configuration>
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def site(tmp_path: Path) -> Path:
    config = tmp_path / "phoneprov.toml"
    config.write_text("")
    (tmp_path / "backup.xml").write_bytes(BACKUP)
    return config


def test_show_lists_the_shipped_schema_with_types_and_sources(tmp_path: Path) -> None:
    code, out, _ = run("schema", "show", "-c", str(site(tmp_path)))
    assert code == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:-1]}
    assert rows["/identities/identity/registerInterval"].split() == [
        *("leaf", "int", "5..60", "V", "§3.2")
    ]
    assert rows["/users/user"].endswith("I §2.1")
    assert out.splitlines()[-1].endswith(", 0 learned")


def test_learn_records_the_backup_beside_the_config(tmp_path: Path) -> None:
    config = site(tmp_path)
    code, out, _ = run("schema", "learn", str(tmp_path / "backup.xml"), "-c", str(config))
    assert code == 0, out
    assert out.startswith("learned 8 new path(s) from ")
    assert "4 of them not in the shipped schema" in out  # authName, /time, its version, ntpServer
    assert "section versions: identities 1.34.1, time 1.34.1" in out
    assert learned_path(config).is_file()
    code, out, _ = run("schema", "learn", str(tmp_path / "backup.xml"), "-c", str(config))
    assert code == 0 and out.startswith("learned 0 new path(s)")

    code, out, _ = run("schema", "show", "--json", "-c", str(config))
    shown = json.loads(out)
    assert shown["versions"] == {"identities": "1.34.1", "time": "1.34.1"}
    paths = {row["path"]: row for row in shown["paths"]}
    assert paths["/time/ntpServer"]["kind"] == "learned"
    assert paths["/time/ntpServer"]["source"] == f"L {tmp_path / 'backup.xml'}"
    assert paths["/identities/identity/username"]["kind"] == "verified"  # documented wins
    assert paths["/identities"]["type"] == "section version 1.34.1"


def test_learn_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    config = site(tmp_path)
    ref = tmp_path / "ref.xml"
    ref.write_text("<referencedSettings><url>a.xml</url></referencedSettings>")
    code, _, err = run("schema", "learn", str(ref), "-c", str(config))
    assert code == 2 and "a reference file is not a backup" in err
    ref.write_text("<configuration><broken></configuration>")
    code, _, err = run("schema", "learn", str(ref), "-c", str(config))
    assert code == 2 and str(ref) in err
    assert not learned_path(config).exists()


def test_learn_needs_the_site_config(tmp_path: Path) -> None:
    site(tmp_path)
    missing = tmp_path / "nope.toml"
    code, _, err = run("schema", "learn", str(tmp_path / "backup.xml"), "-c", str(missing))
    assert code == 2 and "no such config file" in err
