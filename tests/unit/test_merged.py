"""`merged_document`: one settings document equal in effect to a device's whole chain."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from phone_documents import DOCUMENTS
from phoneprov.cli import cli
from phoneprov.config import load_config
from phoneprov.core.phonemerge import apply_settings, merged_document, replaced_sections
from phoneprov.core.phoneschema import SHIPPED_RESOURCE, parse_schema
from phoneprov.render import Catalog

SCHEMA = parse_schema(files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes(), "shipped")
EXAMPLE = Path(__file__).resolve().parents[2] / "conf" / "phoneprov.toml"
HASH = "$6$abcdefgh$0123456789abcdefABCDEF"


def conf(body: str, root_attrs: str = "") -> bytes:
    return f"<configuration{root_attrs}>{body}</configuration>".encode()


def identity(user: str, extra: str = "") -> str:
    return f"<identity><username>{user}</username>{extra}</identity>"


BASE = conf(
    '<identities version="1.34.0">'
    + "".join(identity(f"u{n}", f"<password>p{n}</password>") for n in range(1, 7))
    + '</identities><telephony version="1.34.0"><callWaiting><active>false</active>'
    "<tone>true</tone></callWaiting></telephony>"
)


def applied(documents: list[bytes], base: bytes | None = BASE) -> bytes:
    return apply_settings(documents, SCHEMA, base).configuration


def test_a_replaced_section_stays_replaced_on_a_phone_with_settings() -> None:
    chain = [
        conf('<telephony version="1.34.0"><callWaiting><active>true</active></callWaiting>'
             "</telephony>", ' patchDefault="false"'),
        conf('<telephony patch="true"><callWaiting><tone>false</tone></callWaiting></telephony>'),
    ]  # fmt: skip
    merged = merged_document(chain, SCHEMA)
    assert b'<telephony version="1.34.0" patch="false">' in merged
    assert applied([merged]) == applied(chain)
    assert b"<tone>false</tone>" in applied([merged]) and b"<active>true" in applied([merged])


def test_merged_sections_keep_what_the_chain_never_names() -> None:
    chain = [
        conf('<identities version="1.34.0">' + identity("201") + "</identities>"),
        conf('<identities version="1.34.0"><identity/>' + identity("202") + "</identities>"),
    ]
    merged = merged_document(chain, SCHEMA)
    assert b'<identities version="1.34.0" patch="true">' in merged
    out = applied([merged])
    assert out == applied(chain)
    assert b"<password>p1</password>" in out and b"<username>202</username>" in out


def test_replaced_sections_follow_patch_default() -> None:
    docs = [
        conf('<keys patch="false"/><update/>'),
        conf('<telephony/><users patch="true"/>', ' patchDefault="false"'),
        b'<identities patch="false"/>',  # a bare section root
    ]
    assert replaced_sections(docs, SCHEMA) == {"keys", "telephony", "identities"}


def test_the_merged_document_has_no_unknown_elements() -> None:
    merged = merged_document([conf('<update version="1.34.0"><bogus/></update>')], SCHEMA)
    assert b"bogus" not in merged
    assert apply_settings([merged], SCHEMA).stripped == ()


# --- every device of the example inventory ---------------------------------------------


def example_chains() -> list[tuple[str, list[bytes]]]:
    catalog = Catalog(load_config(EXAMPLE), server="http://192.0.2.1:8080")
    chains = []
    for device in catalog.inventory.devices.values():
        bodies = []
        for name in catalog.names(device):
            rendered = catalog.file(device, name)
            assert rendered is not None
            bodies.append(rendered.body)
        chains.append((device.mac, bodies))
    return chains


def test_render_merged_prints_it(tmp_path: Path) -> None:
    mac, chain = example_chains()[0]
    args = ["render", "-c", str(EXAMPLE), mac, "--server-url", "http://192.0.2.1:8080"]
    result = CliRunner().invoke(cli, [*args, "--merged"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == merged_document(chain, SCHEMA)
    assert b"referencedSettings" not in result.stdout_bytes
    result = CliRunner().invoke(cli, [*args, "--merged", "--list"])
    assert result.exit_code == 2 and "give one of --file, --list, --merged" in result.stderr


def test_merged_equals_the_chain_for_every_example_device() -> None:
    chains = example_chains()
    assert chains
    for mac, chain in chains:
        merged = merged_document(chain, SCHEMA)
        for base in (None, BASE):
            assert applied([merged], base) == applied(chain, base), mac


# --- properties, on documents generated from the shipped schema --------------------------


# a phone's settings: none, a fixed one, one built by applying documents, or a raw document
# taken as it is (the phone's own state is not stripped)
BASES = st.one_of(
    st.none(),
    st.just(BASE),
    st.lists(DOCUMENTS, min_size=1, max_size=2).map(lambda docs: applied(docs, None)),
    DOCUMENTS,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(DOCUMENTS, max_size=4), BASES)
def test_applying_merged_equals_applying_the_chain(chain: list[bytes], base: bytes | None) -> None:
    merged = merged_document(chain, SCHEMA)
    assert applied([merged], base) == applied(chain, base)


@settings(max_examples=100, deadline=None)
@given(DOCUMENTS, BASES)
def test_applying_a_document_twice_equals_applying_it_once(doc: bytes, base: bytes | None) -> None:
    once = applied([doc], base)
    assert applied([doc, doc], base) == once
    assert applied([doc], once) == once


@settings(max_examples=50, deadline=None)
@given(st.lists(DOCUMENTS, max_size=3))
def test_the_merged_document_is_its_own_merge(chain: list[bytes]) -> None:
    merged = merged_document(chain, SCHEMA)
    assert merged_document([merged], SCHEMA) == merged


@pytest.mark.parametrize("base", [None, BASE])
def test_an_empty_chain_changes_nothing(base: bytes | None) -> None:
    assert applied([merged_document([], SCHEMA)], base) == applied([], base)
