"""render: sandboxed, strict, escaped, checked, cached and invalidated."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phoneprov.config import Config, load_config
from phoneprov.core.errors import ConfigErrors
from phoneprov.core.phonexml import validate_settings
from phoneprov.core.reference import parse_reference, parse_xml
from phoneprov.render import Catalog, Renderer, TemplateProblem
from phoneprov.render.check import check_templates
from phoneprov.settings_schema import shipped_schema

ROOT = Path(__file__).resolve().parents[2]
MAC = "00095200000E"
INVENTORY = """
[profiles.p]
templates = ["office.xml"]
vars = { call_waiting = true }
[[devices]]
mac = "00:09:52:00:00:0e"
type = "D200"
profile = "p"
vars = { call_waiting = false }
lines = [{ username = "201", password = "s3cret", registrar = "pbx" }]
"""


def site(root: Path) -> Config:
    shutil.copytree(ROOT / "conf" / "templates", root / "templates")
    (root / "inventory.toml").write_text(INVENTORY)
    (root / "pp.toml").write_text(
        '[server]\nurl = "http://10.0.0.1:8080"\n[security]\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return load_config(root / "pp.toml")


def template(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_values_are_xml_escaped(tmp_path: Path) -> None:
    template(tmp_path, "common.xml.j2", "<s><v>{{ v }}</v><a x='{{ v }}'/></s>")
    body = Renderer(tmp_path).render("D200", "common.xml", {"v": "a<b>&'\"</s>"})
    assert parse_xml(body).findtext("v") == "a<b>&'\"</s>"


def test_missing_variable_names_template_and_line(tmp_path: Path) -> None:
    template(tmp_path, "device.xml.j2", "<s>\n<a>{{ here }}</a>\n<b>{{ nope }}</b>\n</s>\n")
    with pytest.raises(TemplateProblem) as e:
        Renderer(tmp_path).render("D200", "device.xml", {"here": 1})
    assert e.value.where == f"{tmp_path}/device.xml.j2:3"
    assert "nope" in e.value.message


def test_syntax_error_names_line(tmp_path: Path) -> None:
    template(tmp_path, "device.xml.j2", "<s>\n{% if %}\n</s>\n")
    with pytest.raises(TemplateProblem) as e:
        Renderer(tmp_path).render("D200", "device.xml", {})
    assert e.value.where.endswith("device.xml.j2:2")


def test_bad_xml_is_never_returned(tmp_path: Path) -> None:
    template(tmp_path, "device.xml.j2", "<s><a>{{ v }}</s>")
    with pytest.raises(TemplateProblem, match="bad XML"):
        Renderer(tmp_path).render("D200", "device.xml", {"v": 1})


def test_doctype_entities_are_refused(tmp_path: Path) -> None:
    template(tmp_path, "device.xml.j2", '<!DOCTYPE s [<!ENTITY e "x">]><s>&e;</s>')
    with pytest.raises(TemplateProblem):
        Renderer(tmp_path).render("D200", "device.xml", {})


def test_sandbox_blocks_python_internals(tmp_path: Path) -> None:
    template(tmp_path, "device.xml.j2", "<s>{{ ''.__class__.__mro__[1].__subclasses__() }}</s>")
    with pytest.raises(TemplateProblem):
        Renderer(tmp_path).render("D200", "device.xml", {})


def test_model_template_falls_back_to_default(tmp_path: Path) -> None:
    template(tmp_path, "models/default.xml.j2", "<s><m>{{ type }}</m></s>")
    assert Renderer(tmp_path).render("D600", "model.xml", {"type": "D600"}) == b"<s><m>D600</m></s>"


def test_missing_template_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(TemplateProblem, match=r"no template for office\.xml"):
        Renderer(tmp_path).render("D200", "office.xml", {})


def test_shipped_templates_render_for_the_shipped_models(tmp_path: Path) -> None:
    catalog = Catalog(site(tmp_path))
    device = catalog.inventory.device(MAC)
    assert device is not None
    for model in ("D100", "D200", "D400", "D600"):
        vars_ = {"type": model, "settings_version": "1.34.0", "display_brightness": 5}
        model_xml = catalog.renderer.render(model, "model.xml", vars_)
        assert validate_settings(model_xml, shipped_schema()) == []
    device_xml = catalog.file(device, "device.xml")
    assert device_xml is not None and b"<password>s3cret</password>" in device_xml.body
    office = catalog.file(device, "office.xml")
    assert office is not None and b"<active>false</active>" in office.body  # device var wins


def test_settings_version_comes_from_the_config_per_model(tmp_path: Path) -> None:
    config = site(tmp_path)
    config.path.write_text(
        config.path.read_text() + '[phone]\nsettings_versions = { D200 = "1.26.11" }\n'
    )
    catalog = Catalog(load_config(config.path))
    device = catalog.inventory.device(MAC)
    assert device is not None
    common = catalog.file(device, "common.xml")
    assert common is not None and b'<provisioning version="1.26.11" patch="true">' in common.body


def test_entry_lists_the_files(tmp_path: Path) -> None:
    catalog = Catalog(site(tmp_path))
    device = catalog.inventory.device(MAC)
    assert device is not None
    assert parse_reference(catalog.entry(device, "path").body) == tuple(
        f"{MAC}/{n}" for n in ("common.xml", "model.xml", "office.xml", "device.xml")
    )
    assert catalog.file(device, "reception.xml") is None


def test_cache_hits_until_something_changes(tmp_path: Path) -> None:
    now = [0.0]
    config = site(tmp_path)
    catalog = Catalog(config, clock=lambda: now[0])
    device = catalog.inventory.device(MAC)
    assert device is not None
    first = catalog.file(device, "office.xml")
    assert catalog.cached(MAC, "office.xml") is first
    template(config.templates, "profiles/office.xml.j2", "<s><new/></s>\n")
    assert not catalog.refresh()  # checked at most every second
    now[0] = 1.5
    assert catalog.refresh()
    assert catalog.cached(MAC, "office.xml") is None
    second = catalog.file(device, "office.xml")
    assert second is not None and second.body == b"<s><new/></s>\n"
    assert first is not None and second.etag != first.etag
    now[0] = 3.0
    assert not catalog.refresh()


def test_broken_inventory_keeps_the_previous_one(tmp_path: Path) -> None:
    config = site(tmp_path)
    catalog = Catalog(config, check_every=0)
    config.inventory_path.write_text("[[devices]]\nmac = 'nonsense'\n")
    catalog.refresh()
    assert catalog.device(MAC) is not None


def test_cache_is_bounded(tmp_path: Path) -> None:
    catalog = Catalog(site(tmp_path), max_cache_bytes=600)
    device = catalog.inventory.device(MAC)
    assert device is not None
    for name in catalog.names(device):
        catalog.file(device, name)
    assert catalog._gen.cached_bytes <= 600


def test_check_templates_names_every_problem(tmp_path: Path) -> None:
    config = site(tmp_path)
    assert check_templates(config) == 4
    template(config.templates, "device.xml.j2", "<s>{{ nope }}</s>")
    (config.templates / "profiles" / "office.xml.j2").unlink()
    with pytest.raises(ConfigErrors) as e:
        check_templates(config)
    text = str(e.value)
    assert "device.xml.j2:1" in text and "no template for office.xml" in text


def test_inventory_change_is_seen_at_once(tmp_path: Path) -> None:
    config = site(tmp_path)
    catalog = Catalog(config, clock=lambda: 0.0)  # the periodic check never comes due
    config.inventory_path.write_text(INVENTORY.replace('"201"', '"2010"'))
    device = catalog.device(MAC)
    assert device is not None and device.settings.lines[0].username == "2010"


def test_unknown_mac_looks_for_newly_enrolled_phones(tmp_path: Path) -> None:
    from phoneprov.core.inventory import Record

    enrolled: list[Record] = []
    catalog = Catalog(site(tmp_path), extra=lambda: enrolled, clock=lambda: 0.0)
    assert catalog.device("00095200ABCD") is None
    enrolled.append(Record({"mac": "00095200ABCD", "type": "D200", "profile": "p"}))
    assert catalog.device("00095200ABCD") is not None


BAD_DEVICE = """<?xml version="1.0" encoding="utf-8"?>
<configuration patchDefault="true">
  <identities version="{{ settings_version }}" patch="true">
    <identity><registerInterval>30</registerInterval></identity>
    <identity><registerInterval>{{ 30 * 3 }}</registerInterval></identity>
    <identity>
      <usrname>{{ mac }}</usrname>
    </identity>
  </identities>
  <telephony version="{{ settings_version }}"><callWaiting><active>maybe</active></callWaiting>
  </telephony>
</configuration>
"""


def test_check_validates_against_the_phone_schema_naming_template_lines(tmp_path: Path) -> None:
    config = site(tmp_path)
    template(config.templates, "device.xml.j2", BAD_DEVICE)
    with pytest.raises(ConfigErrors) as e:
        check_templates(config)
    got = [(err.where.rsplit("/", 1)[1], err.message) for err in e.value.errors]
    assert [where for where, _ in got] == ["device.xml.j2:5", "device.xml.j2:7"]
    assert got[0][1].startswith("/configuration/identities/identity[2]/registerInterval: ")
    assert "90 is out of range 5..60" in got[0][1]
    assert got[1][1].startswith("/configuration/identities/identity[3]/usrname: unknown element")
    assert "the phone would drop it silently" in got[1][1] and "device 00095200000E" in got[1][1]


def test_check_reports_warnings_without_failing(tmp_path: Path) -> None:
    config = site(tmp_path)
    without_identities = (
        BAD_DEVICE.split("  <identities")[0] + BAD_DEVICE.split("</identities>\n")[1]
    )
    template(config.templates, "device.xml.j2", without_identities)
    warnings: list[str] = []
    assert check_templates(config, warnings=warnings) == 4
    assert len(warnings) == 1 and "device.xml.j2:3: warning: " in warnings[0]
    assert "/configuration/telephony/callWaiting/active: active: 'maybe' is not" in warnings[0]


def test_serving_logs_a_file_the_phone_would_not_take_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = site(tmp_path)
    template(
        config.templates, "device.xml.j2", "<configuration><sip><account/></sip></configuration>"
    )
    catalog = Catalog(config, max_cache_bytes=0)  # every request renders again
    device = catalog.inventory.device(MAC)
    assert device is not None
    first, again = catalog.file(device, "device.xml"), catalog.file(device, "device.xml")
    assert first is not None and again is not None and first.body == again.body  # still served
    logged = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(logged) == 1
    assert "device.xml for 00095200000E" in logged[0].getMessage()
    assert "/configuration/sip: unknown section <sip>" in logged[0].getMessage()


def test_a_learned_schema_makes_an_element_valid(tmp_path: Path) -> None:
    from phoneprov.settings_schema import learn_backup

    config = site(tmp_path)
    document = '<configuration><time version="1.34.0"><ntp>pool</ntp></time></configuration>'
    template(config.templates, "models/default.xml.j2", document)
    with pytest.raises(ConfigErrors, match=r"default.xml.j2:1: /configuration/time: unknown"):
        check_templates(config)
    backup = tmp_path / "backup.xml"
    backup.write_text('<configuration><time version="1.34.0"><ntp>x</ntp></time></configuration>')
    learn_backup(config.path, backup)
    assert check_templates(config) == 4
