"""`phoneprov settings apply`: files in order, as the phone merges them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.settings_schema import LEARNED_NAME, learn_backup

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
BACKUP = (
    '<configuration><update version="1.34.0"><check>true</check><url>https://mirror</url>'
    "<mirrorCert>x</mirrorCert></update></configuration>"
)
FIRST = (
    '<configuration><identities version="1.34.0" patch="true"><identity><username>201'
    "</username><authName>a</authName></identity></identities></configuration>"
)
SECOND = '<configuration><update version="1.34.0"><check>false</check></update></configuration>'
REFERENCE = (
    '<referencedSettings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<url>a.xml</url></referencedSettings>"
)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    for name, text in {"backup.xml": BACKUP, "a.xml": FIRST, "b.xml": SECOND}.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "ref.xml").write_text(REFERENCE)
    (tmp_path / "pp.toml").write_text("")  # only its place matters: the learned schema
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["settings", "apply", *args], env=env or {})
    return result.exit_code, result.stdout, result.stderr


def test_files_in_order_onto_a_base(files: Path) -> None:
    status, out, err = run(
        str(files / "a.xml"), str(files / "b.xml"), "--base", str(files / "backup.xml"),
        env={"PHONEPROV_CONFIG": str(files / "none.toml")},
    )  # fmt: skip
    assert status == 2 and "none.toml: no such config file" in err  # a named config must exist
    status, out, err = run(
        str(files / "a.xml"), str(files / "b.xml"), "--base", str(files / "backup.xml"),
        env={"PHONEPROV_CONFIG": str(files / "pp.toml")},  # exists, nothing learned beside it
    )  # fmt: skip
    assert status == 0, err
    assert out == DECLARATION + (
        "<configuration>\n"
        '  <update version="1.34.0">\n'
        "    <check>false</check>\n"
        "    <url>https://mirror</url>\n"
        "    <mirrorCert>x</mirrorCert>\n"  # the phone's own state is taken as it is
        "  </update>\n"
        '  <identities version="1.34.0">\n'
        "    <identity>\n"
        "      <username>201</username>\n"
        "    </identity>\n"
        "  </identities>\n"
        "</configuration>\n"
    )
    assert f"{files / 'a.xml'}: stripped /configuration/identities/identity/authName" in err
    assert "the phone would drop it silently" in err


def test_json(files: Path) -> None:
    status, out, _ = run("-c", str(files / "pp.toml"), str(files / "a.xml"), "--json")
    assert status == 0
    result = json.loads(out)
    assert result["stripped"] == ["/configuration/identities/identity/authName"]
    assert result["warnings"] == []
    assert "<username>201</username>" in result["configuration"]


def test_the_learned_schema_beside_the_config_keeps_what_it_knows(files: Path) -> None:
    status, out, _ = run("-c", str(files / "pp.toml"), str(files / "a.xml"), "--json")
    assert status == 0 and json.loads(out)["stripped"] != []
    learn_backup(files / "pp.toml", files / "a.xml")  # as `phoneprov schema learn` does
    assert (files / LEARNED_NAME).exists()
    status, out, _ = run("-c", str(files / "pp.toml"), str(files / "a.xml"), "--json")
    assert status == 0 and json.loads(out)["stripped"] == []


@pytest.mark.parametrize("where", ["file", "base"])
def test_a_reference_file_is_refused(files: Path, where: str) -> None:
    ref = str(files / "ref.xml")
    args = [ref] if where == "file" else [str(files / "a.xml"), "--base", ref]
    status, out, err = run(*args)
    assert status == 2 and out == ""
    assert err == (
        f"error: {ref}: a reference file cannot be applied: the phone's restore page "
        "refuses it too\n"
    )


def test_bad_files_exit_2(files: Path) -> None:
    (files / "bad.xml").write_text("<settings><a/></settings>")
    status, _, err = run(str(files / "bad.xml"))
    assert status == 2 and "is neither <configuration> nor a settings section" in err
    status, _, err = run(str(files / "missing.xml"))
    assert status == 2 and "missing.xml: No such file or directory" in err
