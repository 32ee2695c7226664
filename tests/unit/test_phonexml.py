from importlib.resources import files

import pytest

from phoneprov.core.errors import InputError
from phoneprov.core.phoneschema import SHIPPED_RESOURCE, PhoneSchema, parse_schema
from phoneprov.core.phonexml import (
    Identity,
    Problem,
    looks_like_hash,
    read_identities,
    validate_settings,
)

SCHEMA = parse_schema(files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes(), "shipped")
SILENT = "the phone would drop it silently"
HASH = "$6$abcdefgh$0123456789abcdefABCDEF"
ID = "/configuration/identities/identity"


def conf(body: str, root_attrs: str = "") -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?><configuration{root_attrs}>{body}</configuration>'.encode()  # noqa: E501


def sec(name: str, body: str, attrs: str = ' version="1.34.0"') -> str:
    return f"<{name}{attrs}>{body}</{name}>"


def ids(*fields: str, attrs: str = ' version="1.34.0"') -> str:
    return sec("identities", "".join(f"<identity>{f}</identity>" for f in fields), attrs)


def identity(n: int) -> str:
    return (
        f"<active>true</active><username>u{n}</username><password>p{n}</password>"
        f"<registrar>r{n}</registrar><registrarPort>5060</registrarPort>"
    )


BASE = conf(ids(*(identity(n) for n in range(1, 7))))


def problems(body: str, root_attrs: str = "") -> list[tuple[str, str, str]]:
    found = validate_settings(conf(body, root_attrs), SCHEMA)
    return [(p.xpath, p.level, p.message) for p in found]


def test_a_valid_document_has_no_problems():
    assert validate_settings(BASE, SCHEMA) == []
    users = sec("users", f'<user name="admin"><password>{HASH}</password><role>admin</role></user>')
    assert problems(users, ' patchDefault="true"') == []


@pytest.mark.parametrize(
    ("body", "xpath", "level", "message"),
    [
        (sec("keys", "<settings/>"), "/configuration/keys/settings", "error",
         f"unknown element <settings>: {SILENT}"),
        (sec("keys", "", ' version="1.34.0" colour="red"'), "/configuration/keys/@colour", "error",
         f"unknown attribute colour: {SILENT}"),
        ("<phonebook/>", "/configuration/phonebook", "error",
         f"unknown section <phonebook>: {SILENT}"),
        ("<keys/>", "/configuration/keys", "warning",
         "<keys> without version: the phone guesses it from stored XSDs (§2.2)"),
        ('<keys version="1.34"/>', "/configuration/keys/@version", "error",
         "@version: '1.34' is not a settings version X.Y.Z"),
        ('<keys version="1.34.0" patch="yes"/>', "/configuration/keys/@patch", "error",
         "@patch: 'yes' is not true or false"),
        (ids("<registrarPort>0</registrarPort>"), f"{ID}/registrarPort", "error",
         "registrarPort: 0 is out of range 1..65535"),
        (ids("<registerInterval>x</registerInterval>"), f"{ID}/registerInterval", "error",
         "registerInterval: 'x' is not an integer"),
        (ids("<registerInterval>61</registerInterval>"), f"{ID}/registerInterval", "error",
         "registerInterval: 61 is out of range 5..60"),
        (ids("<dtmfMethod>rfc2833</dtmfMethod>"), f"{ID}/dtmfMethod", "error",
         "dtmfMethod: 'rfc2833' is not one of rtpPayload|inband|sipInfo"),
        (ids("<active>1</active>"), f"{ID}/active", "error", "active: '1' is not true or false"),
        (ids("<active>true</active><active>false</active>"), f"{ID}/active[2]", "error",
         "<active> is given more than once here; the schema allows one"),
        (sec("provisioning", "<execution><time></time></execution>"),
         "/configuration/provisioning/execution/time", "error",
         "time: '' does not match ^(2[0-3]|[0-1]?[0-9]):[0-5][0-9]$"),
        (sec("users", f'<user name="a:b"><password>{HASH}</password></user>'),
         "/configuration/users/user/@name", "error", "@name: 'a:b' does not match ^[^:]*$"),
        (sec("users", "<user><role>user</role></user>"), "/configuration/users/user", "error",
         "<user> without name: the merge cannot match it"),
        (sec("telephony", "<callForwarding><busy><timeout>soon</timeout></busy></callForwarding>"),
         "/configuration/telephony/callForwarding/busy/timeout", "warning",
         "timeout: 'soon' is not an integer (type not documented, see the schema source)"),
        (sec("keys", '<phoneXtensions><key keyNumber="0"/></phoneXtensions>'),
         "/configuration/keys/phoneXtensions/key/@keyNumber", "error",
         "@keyNumber: 0 is out of range 1.."),
        (sec("keys", "<phoneXtensions><key/></phoneXtensions>"),
         "/configuration/keys/phoneXtensions/key", "error",
         "<key> without keyNumber: the merge cannot match it"),
        (ids(identity(1), attrs=' version="1.34.0" patch="false"'), "/configuration/identities",
         "error", 'patch="false" replaces the whole section, so <identities> needs at least 6 '
         "<identity>, not 1"),
        (sec("provisioning", "<sip><allowlist/></sip>"),
         "/configuration/provisioning/sip/allowlist", "error",
         'patch="false" replaces the whole section, so <allowlist> needs at least 1 '
         "<allowlistEntry>, not 0"),
    ],
)  # fmt: skip
def test_validation_messages(body, xpath, level, message):
    root_attrs = ' patchDefault="false"' if "allowlist" in body else ""
    assert problems(body, root_attrs) == [(xpath, level, message)]


def test_patched_sections_need_no_minimum_count():
    assert problems(ids(identity(1))) == []
    assert problems(sec("provisioning", "<sip><allowlist/></sip>")) == []


def test_plain_text_admin_password_is_an_error_and_not_echoed():
    body = sec("users", '<user name="admin"><password>s3cret</password></user>')
    (problem,) = validate_settings(conf(body), SCHEMA)
    assert problem.level == "error" and problem.xpath == "/configuration/users/user/password"
    assert "plain-text admin password" in problem.message and "s3cret" not in str(problem)


@pytest.mark.parametrize(
    ("value", "is_hash"),
    [
        ("", False),
        ("admin", False),
        ("0123456789abcdef", False),
        ("pass word with spaces 123", False),
        ("Passw0rd!Passw0rd!Passw0rd!", False),
        ("5f4dcc3b5aa765d61d8327deb882cf99", True),
        (HASH, True),
        ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", True),
        ("XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg=", True),
        ("q0r8lHoPqMcbxp6ZuCJZSg", True),
    ],
)
def test_looks_like_hash(value, is_hash):
    assert looks_like_hash(value) is is_hash


def test_too_many_items_and_duplicate_key_numbers():
    keys = "".join(f'<key keyNumber="{n}"/>' for n in range(1, 42)) + '<key keyNumber="3"/>'
    key = "/configuration/keys/phoneXtensions/key"
    assert problems(sec("keys", f"<phoneXtensions>{keys}</phoneXtensions>")) == [
        (f"{key}[41]", "error", "too many <key>: the phone holds at most 40"),
        (f"{key}[42]", "error", 'duplicate keyNumber="3" in one list (also on line 1)'),
    ]
    seven = ids(*(identity(n) for n in range(7)))
    assert problems(seven) == [
        (f"{ID}[7]", "error", "too many <identity>: the phone holds at most 6")
    ]


def test_problem_lines_and_text():
    doc = b'<?xml version="1.0"?>\n<configuration>\n  <keys version="1.34.0">\n    <bogus/>\n'
    (problem,) = validate_settings(doc + b"  </keys>\n</configuration>", SCHEMA)
    assert problem == Problem("/configuration/keys/bogus", 4, f"unknown element <bogus>: {SILENT}")
    assert str(problem) == f"line 4: {problem.xpath}: error: {problem.message}"


@pytest.mark.parametrize(
    ("data", "level", "needle"),
    [
        (b'<keys version="1.34.0"/>', "warning",
         "bare <keys> root; the safe form is <configuration>"),
        (b"<phonebook/>", "error", "neither <configuration> nor a settings section"),
        (b"<referencedSettings><url>a</url></referencedSettings>", "error",
         "a reference file cannot be applied"),
        (b"<configuration", "error", "not well-formed XML"),
        (b'<configuration patchDefault="on"/>', "error",
         "@patchDefault: 'on' is not true or false"),
    ],
)  # fmt: skip
def test_validation_of_the_document_root(data, level, needle):
    (problem,) = validate_settings(data, SCHEMA)
    assert problem.level == level and needle in problem.message


def test_a_version_other_than_the_backup_shows_is_a_warning():
    schema = PhoneSchema(SCHEMA.nodes, (("keys", "1.26.11"),))
    found = validate_settings(conf('<keys version="1.34.0"/>'), schema)
    assert [(p.xpath, p.level) for p in found] == [("/configuration/keys/@version", "warning")]
    assert "1.26.11" in found[0].message


def test_read_identities():
    found = read_identities(BASE)
    assert [i.index for i in found] == [1, 2, 3, 4, 5, 6]
    assert found[0] == Identity(1, "u1", "p1", "", "r1", 5060, "", None, True, None)
    assert "p1" not in repr(found[0])
    assert read_identities(conf("<keys/>")) == ()
    bare = b"<identities><identity><sendRegister>false</sendRegister></identity></identities>"
    assert read_identities(bare) == (Identity(1, send_register=False),)


@pytest.mark.parametrize(
    "field",
    [
        "<registrarPort>x</registrarPort>",
        "<active>yes</active>",
        "<registerInterval>1.5</registerInterval>",
    ],
)
def test_read_identities_refuses_malformed_values(field):
    with pytest.raises(InputError, match="identity 1"):
        read_identities(conf(ids(field)))


def test_read_identities_refuses_a_reference_file():
    with pytest.raises(InputError, match="reference file"):
        read_identities(b"<referencedSettings><url>a</url></referencedSettings>")
