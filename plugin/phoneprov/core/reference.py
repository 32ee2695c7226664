"""Reference files: an XML document with root `referencedSettings` listing further URLs.

Assumption (DESIGN §1.5): the URLs are `<url>` children, applied in document order.
Parsing is hardened: no entity resolution, no network, no DTD, a size limit.
Building a reference file and checking that served bytes are well-formed need only the
standard library (expat): the serving process never loads lxml for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.parsers import expat

from .errors import InputError

if TYPE_CHECKING:
    from lxml import etree

REFERENCE_ROOT = "referencedSettings"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_XML_BYTES = 1024 * 1024


def _parser() -> etree.XMLParser:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML safely: size-limited, no DTD (so no entity bombs), no network."""
    from lxml import etree

    _check_size(data)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        raise InputError(f"not well-formed XML: {e}") from None
    if root is None:
        raise InputError("empty XML document")
    if root.getroottree().docinfo.internalDTD is not None:
        raise InputError("XML with a DOCTYPE is refused (entities are not allowed)")
    return root


def check_well_formed(data: bytes) -> None:
    """InputError unless `data` is one well-formed XML document without a DOCTYPE, checked
    with expat (what `parse_xml` refuses, without building a tree or loading lxml).

    >>> check_well_formed(b"<a><b/></a>")
    >>> check_well_formed(b"<a><b></a>")
    Traceback (most recent call last):
    ...
    phoneprov.core.errors.InputError: not well-formed XML: mismatched tag, line 1, column 9
    """
    _check_size(data)
    parser = expat.ParserCreate()

    def refuse_doctype(*_: object) -> None:
        raise InputError("XML with a DOCTYPE is refused (entities are not allowed)")

    parser.StartDoctypeDeclHandler = refuse_doctype
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        where = f"line {e.lineno}, column {e.offset + 1}"
        raise InputError(f"not well-formed XML: {expat.ErrorString(e.code)}, {where}") from None


def _check_size(data: bytes) -> None:
    if len(data) > MAX_XML_BYTES:
        raise InputError(f"XML document is {len(data)} bytes; the limit is {MAX_XML_BYTES}")


def reference_urls(root: etree._Element) -> tuple[str, ...] | None:
    """The listed URLs when `root` is a reference file, else None (a plain settings file)."""
    from lxml import etree

    if etree.QName(root).localname != REFERENCE_ROOT:
        return None
    urls = []
    for child in root:
        if not isinstance(child.tag, str) or etree.QName(child).localname != "url":
            continue
        text = (child.text or "").strip()
        if not text:
            raise InputError(f"reference file line {child.sourceline}: empty <url>")
        urls.append(text)
    return tuple(urls)


def parse_reference(data: bytes) -> tuple[str, ...]:
    """The URLs of a reference file, in order; InputError when it is not one.

    >>> parse_reference(build_reference(["a.xml", "/b.xml"]))
    ('a.xml', '/b.xml')
    """
    urls = reference_urls(parse_xml(data))
    if urls is None:
        raise InputError(f"not a reference file (root element is not <{REFERENCE_ROOT}>)")
    return urls


def build_reference(urls: list[str] | tuple[str, ...]) -> bytes:
    """A reference file listing `urls` in order, in the vendor's format (the bytes lxml
    would write for it).

    >>> print(build_reference(["a.xml", "/b?x=1&y=2"]).decode(), end="")
    <?xml version='1.0' encoding='UTF-8'?>
    <referencedSettings xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <url>a.xml</url>
      <url>/b?x=1&amp;y=2</url>
    </referencedSettings>
    """
    for url in urls:
        if not url or any(c < " " for c in url):  # a control character is not XML text
            raise InputError(f"not a usable URL for a reference file: {url!r}")
    lines = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        f'<{REFERENCE_ROOT} xmlns:xsi="{XSI_NS}">',
        *(f"  <url>{_escape(url)}</url>" for url in urls),
    ]
    end = f"</{REFERENCE_ROOT}>\n" if urls else f"  </{REFERENCE_ROOT}>\n"
    return ("\n".join(lines) + "\n" + end).encode("utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def resolve_reference(base: str, ref: str) -> str:
    """Resolve a listed URL against the URL the reference file came from (the seed's rules).

    1. no leading '/': same directory as the reference file;
    2. a leading '/': same scheme, credentials, host and port;
    3. a complete URL: used as it is.
    The base's query and fragment are dropped.

    >>> base = "http://prov.server.com/prov/references.xml"
    >>> resolve_reference(base, "first_file.xml")
    'http://prov.server.com/prov/first_file.xml'
    >>> resolve_reference(base, "/second_file.xml")
    'http://prov.server.com/second_file.xml'
    >>> resolve_reference(base, "http://another.server.com/third_file.xml")
    'http://another.server.com/third_file.xml'
    """
    ref = ref.strip()
    if not ref:
        raise InputError("empty URL in reference file")
    target = urlsplit(ref)
    if target.scheme and target.netloc:
        return ref
    parts = urlsplit(base)
    if not (parts.scheme and parts.netloc):
        raise InputError(f"base URL is not absolute: {base!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    if ref.startswith("/"):
        return origin + ref
    directory = parts.path[: parts.path.rfind("/") + 1] or "/"
    return origin + directory + ref
