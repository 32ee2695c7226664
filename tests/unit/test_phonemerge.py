import contextlib
from importlib.resources import files

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from phone_documents import DOCUMENTS
from phoneprov.core.errors import InputError
from phoneprov.core.phoneschema import SHIPPED_RESOURCE, parse_schema
from phoneprov.core.phonexml import apply_settings, read_identities, validate_settings

SCHEMA = parse_schema(files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes(), "shipped")
DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
PLAIN = etree.XMLParser(remove_blank_text=True)
HASH = "$6$abcdefgh$0123456789abcdefABCDEF"
REFERENCE = b'<referencedSettings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><url>a.xml</url></referencedSettings>'


def conf(body: str, root_attrs: str = "") -> bytes:
    return f"{DECLARATION.decode()}<configuration{root_attrs}>{body}</configuration>".encode()


def sec(name: str, body: str, attrs: str = ' version="1.34.0"') -> str:
    return f"<{name}{attrs}>{body}</{name}>"


def identity(n: int) -> str:
    return (
        f"<identity><active>true</active><username>u{n}</username><password>p{n}</password>"
        f"<registrar>r{n}</registrar><registrarPort>5060</registrarPort></identity>"
    )


KEYS = sec(
    "keys",
    '<phoneXtensions><key keyNumber="1" label="one"><templateName>t1</templateName>'
    '<parameters><parameter name="n" value="1"/></parameters></key>'
    '<key keyNumber="2" label="two"><templateName>t2</templateName></key></phoneXtensions>',
)
TELEPHONY = sec(
    "telephony",
    "<callWaiting><active>false</active><tone>true</tone></callWaiting>"
    "<callForwarding><unconditional><active>false</active><target>100</target>"
    "<timeout>20</timeout></unconditional><busy><active>true</active><target>200</target></busy>"
    "<noResponse><target>300</target></noResponse></callForwarding>",
)
IDENTITIES = sec("identities", "".join(identity(n) for n in range(1, 7)))
BASE = conf(IDENTITIES + KEYS + TELEPHONY)
CALL_WAITING_ON = "<callWaiting><active>true</active></callWaiting>"


def text_at(configuration: bytes, xpath: str) -> list[str]:
    """Texts (or attribute values) at `xpath` in a result."""
    found = etree.fromstring(configuration, PLAIN).xpath(xpath)
    return [x if isinstance(x, str) else (x.text or "") for x in found]


def applied(*documents: bytes, base: bytes | None = BASE) -> bytes:
    return apply_settings(list(documents), SCHEMA, base).configuration


def test_wiki_example_patch_default_false():
    """patchDefault=false: <keys> replaced, <identities patch=true> merged, <telephony
    patch=false> replaced (DSERIES §2.1)."""
    doc = conf(
        sec("keys", '<phoneXtensions><key keyNumber="5" label="five"/></phoneXtensions>')
        + sec("identities", "<identity><username>new</username></identity>", ' patch="true"')
        + sec("telephony", CALL_WAITING_ON, ' version="1.34.0" patch="false"'),
        ' patchDefault="false"',
    )
    out = applied(doc)
    assert text_at(out, "/configuration/keys/phoneXtensions/key/@keyNumber") == ["5"]
    assert text_at(out, "//identity/username") == ["new", "u2", "u3", "u4", "u5", "u6"]
    assert text_at(out, "//identity[1]/password") == ["p1"]
    assert text_at(out, "/configuration/telephony//active") == ["true"]
    assert text_at(out, "//callWaiting/tone") == [] and text_at(out, "//callForwarding") == []


def test_patch_default_omitted_means_merge_and_section_patch_overrides_it():
    out = applied(
        conf(sec("keys", "<phoneXtensions/>", ' patch="false"') + sec("telephony", CALL_WAITING_ON))
    )
    assert text_at(out, "//key") == []
    assert text_at(out, "//callWaiting/tone") == ["true"]


def test_merge_is_xpath_wise_call_waiting_active_set_tone_kept():
    out = applied(conf(sec("telephony", CALL_WAITING_ON)))
    assert text_at(out, "//callWaiting/active") == ["true"]
    assert text_at(out, "//callWaiting/tone") == ["true"]
    assert text_at(out, "//unconditional/target") == ["100"]
    assert text_at(out, "//unconditional/timeout") == ["20"]
    assert text_at(out, "//busy/target") == ["200"]
    assert text_at(out, "//noResponse/target") == ["300"]


def test_keyed_key_is_replaced_whole_unlisted_keys_untouched_new_keys_added():
    doc = conf(
        sec(
            "keys",
            '<phoneXtensions><key keyNumber="1" info="i"/><key keyNumber="7"/></phoneXtensions>',
        )
    )
    out = applied(doc)
    assert text_at(out, "//key/@keyNumber") == ["1", "2", "7"]
    assert text_at(out, "//key[@keyNumber='1']/@info") == ["i"]
    assert text_at(out, "//key[@keyNumber='1']/@label") == []  # the whole element replaced
    assert text_at(out, "//key[@keyNumber='1']/templateName") == []
    assert text_at(out, "//key[@keyNumber='1']/parameters") == []
    assert text_at(out, "//key[@keyNumber='2']/templateName") == ["t2"]


def test_positional_identity_merge_two_empty_then_a_username():
    body = "<identity/><identity/><identity><username>third</username></identity>"
    out = applied(conf(sec("identities", body)))
    assert text_at(out, "//identity/username") == ["u1", "u2", "third", "u4", "u5", "u6"]
    assert text_at(out, "//identity[3]/password") == ["p3"]
    assert text_at(out, "//identity[3]/registrar") == ["r3"]


@pytest.mark.parametrize(
    ("section", "item", "new"),
    [
        (
            "users",
            '<user name="admin"><role>admin</role><changePassword>true</changePassword></user>',
            '<user name="admin"><role>user</role></user>',
        ),
        (
            "templates",
            '<template name="sd" prio="1"><keyConfiguration><lua><code>a</code></lua>'
            "</keyConfiguration></template>",
            '<template name="sd"><parameters/></template>',
        ),
        (
            "luaLibraries",
            '<luaLibrary name="x"><code>old</code></luaLibrary>',
            '<luaLibrary name="x"/>',
        ),
    ],
)
def test_name_keyed_items_are_replaced_whole(section, item, new):
    other = item.replace('name="', 'name="other-')
    out = applied(conf(sec(section, new)), base=conf(sec(section, item + other)))
    first, second = etree.fromstring(out, PLAIN)[0]
    assert etree.tostring(first) == new.encode()
    assert etree.tostring(second) == other.encode()


def test_patch_false_replaces_the_whole_section_and_keeps_the_old_version_if_none_given():
    doc = sec("identities", "<identity><username>x</username></identity>", ' patch="false"')
    out = applied(conf(doc))
    assert text_at(out, "//identity/username") == ["x"]
    assert text_at(out, "/configuration/identities/@version") == ["1.34.0"]
    assert text_at(out, "//@patch") == []


def test_sections_keep_first_seen_order_and_their_version():
    out = applied(
        conf(sec("update", "<check>true</check>")),
        conf(
            sec("users", '<user name="a"><role>user</role></user>', ' version="1.33.0"')
            + sec("identities", "", ' version="1.35.0"')
        ),
    )
    names = [e.tag for e in etree.fromstring(out, PLAIN)]
    assert names == ["identities", "keys", "telephony", "update", "users"]
    assert text_at(out, "/configuration/identities/@version") == ["1.35.0"]
    assert text_at(out, "/configuration/users/@version") == ["1.33.0"]


def test_empty_element_sets_an_empty_value():
    out = applied(conf(sec("identities", "<identity><password></password></identity>")))
    assert text_at(out, "//identity[1]/password") == [""]


def test_output_is_one_pretty_utf8_configuration():
    out = apply_settings([conf(sec("update", "<check>true</check>"))], SCHEMA)
    assert out.configuration == DECLARATION + (
        b"<configuration>\n"
        b'  <update version="1.34.0">\n'
        b"    <check>true</check>\n"
        b"  </update>\n"
        b"</configuration>\n"
    )
    assert out.stripped == () and out.warnings == ()


def test_unknown_nodes_are_stripped_and_listed():
    doc = conf(
        sec("identities", "<identity><username>a</username><authName>a</authName></identity>",
            ' version="1.34.0" colour="red"')
        + "<settings><sip><account/></sip></settings><!-- c --><?pi x?>",
        ' patchDefault="true" xsi:x="1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
    )  # fmt: skip
    out = apply_settings([doc], SCHEMA)
    assert out.stripped == (
        "/configuration/@xsi:x",
        "/configuration/identities/@colour",
        "/configuration/identities/identity/authName",
        "/configuration/settings",
    )
    for name in (b"authName", b"settings", b"colour", b"xsi"):
        assert name not in out.configuration


def test_warnings_section_without_version_bare_root_and_bad_patch_values():
    docs = [
        b'<keys><phoneXtensions><key keyNumber="1"/></phoneXtensions></keys>',
        conf(sec("update", "", ' version="1.34.0" patch="maybe"'), ' patchDefault="no"'),
        conf(sec("keys", '<phoneXtensions><key label="no number"/></phoneXtensions>')),
    ]
    out = apply_settings(docs, SCHEMA)
    assert out.warnings == (
        "document 1: bare <keys> root; the safe form is <configuration> (§1.1)",
        "document 1: <keys> without version: the phone guesses it from stored XSDs (§2.2)",
        "document 2: patchDefault='no' is not true/false",
        "document 2: <update patch='maybe'> is not true/false",
        "/configuration/keys/phoneXtensions/key: no keyNumber to match it by; not applied",
    )
    assert text_at(out.configuration, "//key/@keyNumber") == ["1"]


@pytest.mark.parametrize(("docs", "base"), [([REFERENCE], None), ([], REFERENCE)])
def test_a_reference_file_cannot_be_applied(docs, base):
    needle = "a reference file cannot be applied: the phone's restore page refuses it too"
    with pytest.raises(InputError, match=needle):
        apply_settings(docs, SCHEMA, base)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"<configuration>", "not well-formed"),
        (b"<phonebook/>", "neither <configuration> nor a settings section"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><configuration/>', "DOCTYPE"),
    ],
)
def test_bad_documents_are_input_errors(data, needle):
    with pytest.raises(InputError, match=needle):
        apply_settings([data], SCHEMA)


def test_applying_the_result_again_changes_nothing():
    once = applied(conf(sec("update", "<check>true</check>")))
    assert apply_settings([], SCHEMA, once).configuration == once


# --- properties, on documents generated from the shipped schema --------------------------


BASES = st.one_of(st.none(), st.just(BASE))


@settings(max_examples=100, deadline=None)
@given(DOCUMENTS, BASES)
def test_applying_a_document_twice_equals_applying_it_once(doc, base):
    once = apply_settings([doc], SCHEMA, base).configuration
    assert apply_settings([doc, doc], SCHEMA, base).configuration == once
    assert apply_settings([doc], SCHEMA, once).configuration == once


@settings(max_examples=100, deadline=None)
@given(DOCUMENTS, DOCUMENTS, BASES)
def test_sequential_application_is_associative(a, b, base):
    both = apply_settings([a, b], SCHEMA, base).configuration
    first = apply_settings([a], SCHEMA, base).configuration
    assert apply_settings([b], SCHEMA, first).configuration == both


XMLISH = st.lists(
    st.sampled_from(
        ["<configuration>", "</configuration>", "<keys>", "</keys>", "<identities>", "<identity/>",
         "</identities>", '<key keyNumber="1"/>', "<phoneXtensions>", "</phoneXtensions>",
         "<referencedSettings>", "&amp;", "&x;", "<!DOCTYPE a>", "x", "\x00", "\xff",
         '<?xml version="1.0"?>', '<?xml version="1.0" encoding="latin-1"?>']
    ),
    max_size=8,
).map(lambda parts: "".join(parts).encode())  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.binary(max_size=200), XMLISH))
def test_arbitrary_bytes_give_a_result_or_input_error(data):
    try:
        result = apply_settings([data], SCHEMA)
    except InputError:
        pass
    else:
        assert result.configuration.startswith(DECLARATION)
    assert isinstance(validate_settings(data, SCHEMA), list)
    with contextlib.suppress(InputError):
        read_identities(data)
