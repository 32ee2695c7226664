import contextlib
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from phoneprov.core.errors import InputError
from phoneprov.core.reference import (
    MAX_XML_BYTES,
    XSI_NS,
    build_reference,
    check_well_formed,
    parse_reference,
    parse_xml,
    reference_urls,
    resolve_reference,
)

SEED_BASE = "http://prov.server.com/prov/references.xml"


@pytest.mark.parametrize(
    ("ref", "url"),
    [  # the seed's three rules
        ("first_file.xml", "http://prov.server.com/prov/first_file.xml"),
        ("/second_file.xml", "http://prov.server.com/second_file.xml"),
        ("http://another.server.com/third_file.xml", "http://another.server.com/third_file.xml"),
        ("sub/x.xml?a=1", "http://prov.server.com/prov/sub/x.xml?a=1"),
        ("https://h:8443/x", "https://h:8443/x"),
    ],
)
def test_seed_rules(ref, url):
    assert resolve_reference(SEED_BASE, ref) == url


@pytest.mark.parametrize(
    ("base", "ref", "url"),
    [  # scheme, port and credentials of the base are kept, its query dropped
        ("https://u:p@h:8443/a/b.xml?mac=1#f", "c.xml", "https://u:p@h:8443/a/c.xml"),
        ("https://u:p@h:8443/a/b.xml?mac=1", "/c.xml", "https://u:p@h:8443/c.xml"),
        (
            "http://h:8080/prov.py?mac=00095200000E",
            "prov/D200/x.xml",
            "http://h:8080/prov/D200/x.xml",
        ),
        ("http://h", "x.xml", "http://h/x.xml"),
        ("http://h/dir/", "x.xml", "http://h/dir/x.xml"),
    ],
)
def test_base_parts(base, ref, url):
    assert resolve_reference(base, ref) == url


def test_resolve_needs_an_absolute_base_and_a_ref():
    with pytest.raises(InputError):
        resolve_reference("prov/x.xml", "y.xml")
    with pytest.raises(InputError):
        resolve_reference(SEED_BASE, "  ")


def test_build_and_parse_in_order():
    urls = ["first_file.xml", "/second_file.xml", "http://another.server.com/third_file.xml"]
    data = build_reference(urls)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<referencedSettings")
    assert b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in data
    assert parse_reference(data) == tuple(urls)


def test_parse_vendor_style_document():
    doc = b"""<?xml version="1.0" encoding="UTF-8" ?>
<referencedSettings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <!-- comment -->
  <url>a.xml</url>
  <url> /b.xml </url>
</referencedSettings>"""
    assert parse_reference(doc) == ("a.xml", "/b.xml")


def test_a_settings_file_is_not_a_reference_file():
    root = parse_xml(b"<settings><x>1</x></settings>")
    assert reference_urls(root) is None
    with pytest.raises(InputError, match="not a reference file"):
        parse_reference(b"<settings/>")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<referencedSettings><url>&lol9;</url></referencedSettings>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<referencedSettings><url>&xxe;</url></referencedSettings>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, XXE], ids=["billion-laughs", "xxe"])
def test_entity_attacks_fail_fast_and_harmlessly(doc):
    start = time.process_time()
    with pytest.raises(InputError, match=r"DOCTYPE|entity"):
        parse_reference(doc)
    assert time.process_time() - start < 1.0


def test_size_limit_and_garbage():
    with pytest.raises(InputError, match="limit"):
        parse_reference(b"<a>" + b" " * MAX_XML_BYTES + b"</a>")
    for bad in (b"", b"<a>", b"\xff\xfe", b"<referencedSettings><url/></referencedSettings>"):
        with pytest.raises(InputError):
            parse_reference(bad)


def test_build_refuses_unusable_urls():
    for bad in ("", "a\nb", "a\x00b", "a\x1fb"):
        with pytest.raises(InputError):
            build_reference([bad])


url_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@given(st.lists(url_text, max_size=8))
def test_round_trip(urls):
    assert parse_reference(build_reference(urls)) == tuple(urls)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_urls_or_our_error(data):
    with contextlib.suppress(InputError):
        assert isinstance(parse_reference(data), tuple)


def lxml_reference(urls: list[str]) -> bytes:
    """What build_reference wrote when it used lxml: the bytes it must still write."""
    root = etree.Element("referencedSettings", nsmap={"xsi": XSI_NS})
    root.text = "\n  "
    for i, url in enumerate(urls):
        child = etree.SubElement(root, "url")
        child.text = url
        child.tail = "\n" if i == len(urls) - 1 else "\n  "
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True)) + b"\n"


printable = st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), min_size=1)


@given(st.lists(printable, max_size=6))
def test_reference_bytes_are_what_lxml_writes(urls):
    assert build_reference(urls) == lxml_reference(urls)


@pytest.mark.parametrize(
    "doc",
    [
        b"<a/>",
        b"<?xml version='1.0' encoding='UTF-8'?>\n<a x='1'><b>t&amp;</b><!-- c --></a>\n",
        "<a>\u00e9</a>".encode(),
        b"",
        b"<a>",
        b"<a><b></a>",
        b"<a/><b/>",
        b"<a>&e;</a>",
        b"<a x='1' x='2'/>",
        b"\xff\xfe",
        b"<a>\x00</a>",
        b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
        b"<!DOCTYPE a><a/>",
        BILLION_LAUGHS,
        XXE,
    ],
)
def test_well_formed_as_parse_xml_says(doc):
    """The serving path's expat check refuses exactly what the lxml parser refuses."""
    try:
        parse_xml(doc)
    except InputError:
        with pytest.raises(InputError):
            check_well_formed(doc)
    else:
        check_well_formed(doc)


def test_well_formed_names_doctype_and_size():
    with pytest.raises(InputError, match="DOCTYPE"):
        check_well_formed(XXE)
    with pytest.raises(InputError, match="limit"):
        check_well_formed(b"<a>" + b" " * MAX_XML_BYTES + b"</a>")
