import json
from importlib.resources import files

import pytest

from phoneprov.core.errors import ConfigError, InputError
from phoneprov.core.phoneschema import (
    FORMAT,
    SHIPPED_RESOURCE,
    Node,
    PhoneSchema,
    ValueType,
    learn_schema,
    merge_schemas,
    parse_schema,
    schema_entries,
    schema_to_json,
)
from phoneprov.core.phonexml import validate_settings

SHIPPED_BYTES = files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes()
SHIPPED = parse_schema(SHIPPED_BYTES, SHIPPED_RESOURCE)
IDENTITY_FIELDS = [  # §3.2's table, in order
    "active",
    "username",
    "password",
    "displayname",
    "registrar",
    "registrarPort",
    "dtmfMethod",
    "domain",
    "sendRegister",
    "registerInterval",
]
DOCUMENTED_NAMES = {  # every element and attribute name DSERIES.md shows (§1.1, §2.1, §3.x)
    *IDENTITY_FIELDS,
    *("patchDefault", "version", "patch", "identities", "identity", "provisioning", "dhcp"),
    *("redirect", "pbx", "url", "sip", "allowlist", "allowlistEntry", "execution", "time"),
    *("mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays", "sundays"),
    *("useRandomDelay", "minimalRandomDelay", "maximalRandomDelay", "keys", "phoneXtensions"),
    *("extensionModule1", "key", "keyNumber", "label", "info", "icon", "templateName"),
    *("parameters", "parameter", "name", "value", "keyConfiguration", "lua", "code"),
    *("templates", "template", "prio", "description", "params", "param", "type", "min", "max"),
    *("luaLibraries", "luaLibrary", "users", "user", "displayName", "role", "image"),
    *("changePassword", "update", "check", "autoInstall", "telephony", "callWaiting", "tone"),
    *("callForwarding", "unconditional", "busy", "noResponse", "target", "timeout"),
    *("userInterface", "display", "brightness"),
}
BACKUP = b"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <identities version="1.34.0">
    <identity><active>true</active><username>201</username><password>pw</password>
      <registrar>10.0.0.1</registrar><registrarPort>5060</registrarPort>
      <authName>201</authName><outboundProxy/></identity>
    <identity><active>false</active><username/><password/><registrar/>
      <registrarPort>5060</registrarPort><authName/><outboundProxy/></identity>
  </identities>
  <keys version="1.34.0">
    <phoneXtensions>
      <key keyNumber="1" label="x"><templateName>t</templateName></key>
    </phoneXtensions>
  </keys>
  <users version="1.33.2">
    <user name="admin"><password>$6$abcdefgh$0123456789abcdefABCDEF</password><role>admin</role>
      <changePassword>false</changePassword></user>
  </users>
  <network version="1.2.0"><vlan><enabled>false</enabled><id>0</id></vlan></network>
</configuration>
"""


def test_shipped_schema_is_canonical_json():
    assert SHIPPED_BYTES.decode() == schema_to_json(SHIPPED)
    assert parse_schema(schema_to_json(SHIPPED), "again") == SHIPPED


def test_shipped_schema_holds_only_documented_names():
    names = {seg.lstrip("@") for n in SHIPPED.nodes for seg in n.path.split("/")[1:]}
    assert names <= DOCUMENTED_NAMES


def test_shipped_sources_are_tagged_with_a_section():
    for node in SHIPPED.nodes:
        assert node.source.split()[0] in ("V", "I"), node.path
        assert node.source.split()[1].startswith("§"), node.path


@pytest.mark.parametrize(
    ("path", "what", "source"),
    [
        ("/@patchDefault", "leaf bool", "V §1.1"),
        ("/identities", "section", "V §3.2"),
        ("/identities/@version", "leaf version", "V §2.2"),
        ("/identities/@patch", "leaf bool", "V §2.1"),
        ("/identities/identity", "item min 6 max 6", "V §3.2"),
        ("/identities/identity/registrarPort", "leaf int 1..65535", "V §3.2"),
        ("/identities/identity/dtmfMethod", "leaf enum rtpPayload|inband|sipInfo", "V §3.2"),
        ("/identities/identity/registerInterval", "leaf int 5..60", "V §3.2"),
        ("/provisioning/sip/allowlist/allowlistEntry", "item min 1 string", "V §3.1"),
        (
            "/provisioning/execution/time",
            "leaf regex ^(2[0-3]|[0-1]?[0-9]):[0-5][0-9]$",
            "V §3.1",
        ),
        ("/update/execution/time", "leaf regex ^((2[0-3]|[0-1]?[0-9]):[0-5][0-9])?$", "I §3.6"),
        ("/keys/phoneXtensions/key", "item key @keyNumber max 40", "V §3.3"),
        ("/keys/extensionModule1/key", "item key @keyNumber max 60", "V §3.3"),
        ("/keys/phoneXtensions/key/@keyNumber", "leaf int 1..", "V §3.3"),
        ("/keys/extensionModule1/key/keyConfiguration/lua/code", "leaf string", "V §3.3"),
        ("/templates/template", "item key @name", "I §2.1"),
        ("/luaLibraries/luaLibrary", "item key @name", "I §2.1"),
        ("/users/user", "item key @name", "I §2.1"),
        ("/users/user/@name", "leaf regex ^[^:]*$", "V §3.5"),
        ("/users/user/password", "leaf hash", "V §3.5"),
        ("/users/user/role", "leaf enum user|admin", "V §3.5"),
        ("/telephony/callForwarding/noResponse/timeout", "leaf int", "I §2.1"),
    ],
)
def test_shipped_entries(path, what, source):
    assert (path, what, source) in schema_entries(SHIPPED)


def test_shipped_identity_fields_are_the_table():
    assert [n.name for n in SHIPPED.children("/identities/identity")] == IDENTITY_FIELDS


def test_shipped_execution_weekdays_and_every_section_has_version_and_patch():
    days = [n.name for n in SHIPPED.children("/update/execution")][:7]
    assert days == [f"{d}days" for d in ("mon", "tues", "wednes", "thurs", "fri", "satur", "sun")]
    sections = [n.name for n in SHIPPED.children("") if n.kind == "section"]
    assert sections == [
        *("identities", "provisioning", "keys", "templates", "luaLibraries", "users"),
        *("update", "telephony", "userInterface"),
    ]
    for name in sections:
        assert [a.name for a in SHIPPED.attributes(f"/{name}")] == ["@version", "@patch"]


def _spec(**nodes: dict) -> str:
    return json.dumps({"format": FORMAT, "nodes": nodes})


SECTION = {"kind": "section", "source": "V §1"}


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ("{", "not JSON"),
        (b"\xff", "not JSON"),
        ("[]", "not a schema file"),
        ('{"nodes": {"/s": {}, "/s": {}}}', "not JSON: repeated key(s) /s"),
        (json.dumps({"format": "other", "nodes": {}}), "not a schema file"),
        (json.dumps({"format": FORMAT, "nodes": {}, "extra": 1}), "top-level fields"),
        (json.dumps({"format": FORMAT, "nodes": []}), "must be objects"),
        (_spec(s=SECTION), "is not a path"),
        (_spec(**{"/s": {"kind": "thing", "source": "V"}}), "kind 'thing'"),
        (_spec(**{"/s": {"kind": "section", "source": "X"}}), "source must start"),
        (_spec(**{"/s": SECTION, "/s/a": {"kind": "section", "source": "V"}}), "sections"),
        (_spec(**{"/s": SECTION, "/s/a": {"kind": "leaf", "source": "V"}}), "have a type"),
        (
            _spec(**{"/s": SECTION, "/s/a": {"kind": "leaf", "type": "float", "source": "V"}}),
            "float",
        ),
        (
            _spec(
                **{
                    "/s": SECTION,
                    "/s/a": {"kind": "leaf", "type": "string", "min": 1, "source": "V"},
                }
            ),
            "min/max",
        ),
        (_spec(**{"/s": SECTION, "/s/a": {"kind": "leaf", "type": "enum", "source": "V"}}), "enum"),
        (
            _spec(
                **{
                    "/s": SECTION,
                    "/s/a": {"kind": "leaf", "type": "regex", "pattern": "(", "source": "V"},
                }
            ),
            "compile",
        ),
        (_spec(**{"/s": SECTION, "/s/@a": {"kind": "container", "source": "V"}}), "attribute must"),
        (
            _spec(**{"/s": SECTION, "/s/a": {"kind": "container", "key": "n", "source": "V"}}),
            "belong to items",
        ),
        (
            _spec(**{"/s": SECTION, "/s/a": {"kind": "item", "key": "n", "source": "V"}}),
            "key attribute",
        ),
        (
            _spec(**{"/s": SECTION, "/s/a": {"kind": "item", "maxItems": -1, "source": "V"}}),
            "non-negative",
        ),
        (_spec(**{"/s/a": {"kind": "container", "source": "V"}}), "parent /s"),
        (_spec(**{"/s": {**SECTION, "colour": "red"}}), "unknown field(s) colour"),
    ],
)
def test_parse_schema_refuses_bad_data_naming_the_origin(data, needle):
    with pytest.raises(ConfigError) as info:
        parse_schema(data, "site-schema.json")
    assert info.value.where == "site-schema.json"
    assert needle in str(info.value)


def test_learn_records_paths_types_lists_and_versions():
    learned = learn_schema(BACKUP, "backup.xml")
    entries = {path: (what, source) for path, what, source in schema_entries(learned)}
    assert entries["/identities"] == ("section version 1.34.0", "L backup.xml")
    assert entries["/identities/identity"][0] == "item"  # repeated siblings
    assert entries["/identities/identity/active"][0] == "leaf bool"
    assert entries["/identities/identity/registrarPort"][0] == "leaf string"
    assert entries["/identities/identity/authName"][0] == "leaf string"
    assert entries["/keys/phoneXtensions/key"][0] == "item key @keyNumber"  # seen once
    assert entries["/keys/phoneXtensions/key/@label"][0] == "leaf string"
    assert entries["/users/user"][0] == "item key @name"
    assert entries["/network/vlan/enabled"][0] == "leaf bool"
    assert entries["/network/@version"][0] == "leaf version"
    assert learned.version("users") == "1.33.2"
    assert learned.about == "learned from backup.xml"


def test_learn_keeps_tree_order():
    paths = [n.path for n in learn_schema(BACKUP, "b").nodes]
    for path in paths:
        parent = path.rsplit("/", 1)[0]
        assert not parent or paths.index(parent) < paths.index(path)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"<configuration>", "backup.xml: not well-formed XML"),
        (b"<referencedSettings><url>a</url></referencedSettings>", "reference file"),
    ],
)
def test_learn_refuses_what_is_not_a_backup(data, needle):
    with pytest.raises(InputError, match=needle):
        learn_schema(data, "backup.xml")


def test_learned_schema_round_trips_through_json():
    learned = learn_schema(BACKUP, "backup.xml")
    assert parse_schema(schema_to_json(learned), "site") == learned
    site = merge_schemas(SHIPPED, learned)
    assert parse_schema(schema_to_json(site), "site") == site


def test_merge_documented_type_wins_and_learned_paths_join_their_parent():
    site = merge_schemas(SHIPPED, learn_schema(BACKUP, "backup.xml"))
    port = site.get("/identities/identity/registrarPort")
    assert port is not None and port.source == "V §3.2" and port.type == ValueType("int", 1, 65535)
    auth = site.get("/identities/identity/authName")
    assert auth is not None and auth.source == "L backup.xml"
    paths = [n.path for n in site.nodes]
    assert paths.index("/identities/identity/registerInterval") < paths.index(
        "/identities/identity/authName"
    )
    assert paths.index("/identities/identity/authName") < paths.index("/provisioning")
    assert site.version("identities") == "1.34.0"
    assert site.get("/network/vlan/id") is not None


def test_merge_prefers_the_better_source_then_the_earlier_schema():
    learned = PhoneSchema((Node("/s", "section", "L b"),), (("s", "1.0.0"),))
    inferred = PhoneSchema((Node("/s", "section", "I §1", note="i"),))
    stated = PhoneSchema((Node("/s", "section", "V §1", note="v"),))
    other = PhoneSchema((Node("/s", "section", "V §2"),), (("s", "2.0.0"),))
    merged = merge_schemas(learned, inferred, stated, other)
    assert merged.nodes == (Node("/s", "section", "V §1", note="v"),)
    assert merged.version("s") == "2.0.0"  # later versions override


def test_learn_then_validate_passes():
    learned = learn_schema(BACKUP, "backup.xml")
    assert validate_settings(BACKUP, learned) == []
    site = merge_schemas(SHIPPED, learned)
    assert [p for p in validate_settings(BACKUP, site) if p.level == "error"] == []
