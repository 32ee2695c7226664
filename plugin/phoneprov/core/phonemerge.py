"""Applying settings documents one after another, the way the phone merges them (DSERIES §2.1).

Per section: `patch="true"` merges, `patch="false"` replaces the whole section, no `patch`
takes the root's `patchDefault` (itself true when omitted). Merging is XPath-wise: a given leaf
or attribute overwrites the same path, everything else stays. List items with a marker
attribute (`keyNumber`, `name`) replace their counterpart whole; unkeyed items (identities)
merge by position. Elements and attributes the schema does not know are stripped, as the
phone strips them silently (§2.2); `Applied.stripped` lists them.
"""

from __future__ import annotations

from collections import Counter
from copy import deepcopy
from dataclasses import dataclass

from lxml import etree

from .errors import InputError
from .phoneschema import ROOT, PhoneSchema
from .reference import REFERENCE_ROOT, parse_xml

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
INDENT = "  "
PATCH_DEFAULT = True  # §1.1: a root without patchDefault means true
SECTION_ATTRIBUTES = ("version", "patch")
SILENT_DROP = "the phone would drop it silently"
REFERENCE_REFUSED = "a reference file cannot be applied: the phone's restore page refuses it too"


@dataclass(frozen=True)
class Applied:
    """The settings after applying documents: one `<configuration>` (utf-8, pretty-printed,
    without patch attributes: it is a state, not a patch), plus what was left out and why."""

    configuration: bytes
    stripped: tuple[str, ...] = ()  # xpaths (in their document) of what the phone would drop
    warnings: tuple[str, ...] = ()


def local_name(tag: object) -> str:
    """An element's or attribute's name; "" for namespaced names, comments and PIs.

    >>> local_name("identity"), local_name("{urn:x}identity"), local_name(None)
    ('identity', '', '')
    """
    return tag if isinstance(tag, str) and not tag.startswith("{") else ""


def parse_bool(value: str | None) -> bool | None:
    """The phone's boolean text: True, False, or None when it is neither.

    >>> parse_bool(" true "), parse_bool("false"), parse_bool("1")
    (True, False, None)
    """
    text = (value or "").strip()
    return True if text == "true" else False if text == "false" else None


def is_section(schema: PhoneSchema, name: str) -> bool:
    node = schema.get(f"/{name}") if name else None
    return node is not None and node.kind == "section"


def settings_root(data: bytes) -> etree._Element:
    """A parsed settings document; InputError for bad XML or a reference file."""
    root = parse_xml(data)
    if local_name(root.tag) == REFERENCE_ROOT:
        raise InputError(REFERENCE_REFUSED)
    return root


def sections_of(root: etree._Element, schema: PhoneSchema) -> list[etree._Element]:
    """The section elements of a document: `<configuration>`'s children or a bare section root."""
    name = local_name(root.tag)
    if name == ROOT:
        return [child for child in root if isinstance(child.tag, str)]
    if is_section(schema, name):
        return [root]
    raise InputError(f"root element <{root.tag}> is neither <{ROOT}> nor a settings section")


def attributes_of(element: etree._Element) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in element.attrib.items()]


def line_of(element: etree._Element) -> int:
    line = getattr(element, "sourceline", None)
    return line if isinstance(line, int) else 0


def xpath_of(element: etree._Element, attribute: str = "") -> str:
    """The element's (or its attribute's) xpath in its document, namespaces as prefixes."""
    path = str(element.getroottree().getpath(element))
    if attribute.startswith("{"):
        uri, name = attribute[1:].split("}", 1)
        prefix = next((p for p, u in element.nsmap.items() if p and u == uri), "")
        attribute = f"{prefix}:{name}" if prefix else name
    return f"{path}/@{attribute}" if attribute else path


class _Merge:
    """One run of apply_settings: the state being built and what it reports."""

    def __init__(self, schema: PhoneSchema) -> None:
        self.schema = schema
        self.state = etree.Element(ROOT)
        self.stripped: list[str] = []
        self.warnings: list[str] = []

    def strip(self, element: etree._Element, path: str) -> None:
        """Remove in place what the schema does not know below `element`, recording it."""
        for name, _value in attributes_of(element):
            known = local_name(name) and (
                self.schema.get(f"{path}/@{name}") is not None
                or (path.count("/") == 1 and name in SECTION_ATTRIBUTES)
            )
            if not known:
                self.stripped.append(xpath_of(element, name))
                del element.attrib[name]
        node = self.schema.get(path)
        if node is not None and node.type is None:
            element.text = None  # a container holds elements, not text
        for child in list(element):
            name = local_name(child.tag)
            child_path = f"{path}/{name}"
            if name and self.schema.get(child_path) is not None:
                self.strip(child, child_path)
                continue
            if isinstance(child.tag, str):
                self.stripped.append(xpath_of(child))
            element.remove(child)  # unknown element, comment or PI

    def merge(self, target: etree._Element, source: etree._Element, path: str) -> None:
        """Merge `source` into `target` XPath-wise (both hold only known nodes)."""
        for name, value in attributes_of(source):
            if not (path.count("/") == 1 and name == "patch"):
                target.set(name, value)
        node = self.schema.get(path)
        if node is not None and node.type is not None:
            target.text = source.text
        positions: Counter[str] = Counter()
        for child in source:
            name = str(child.tag)
            child_path = f"{path}/{name}"
            child_node = self.schema.get(child_path)
            siblings = [c for c in target if c.tag == name]
            match: etree._Element | None
            if child_node is not None and child_node.kind == "item" and child_node.key:
                marker = child.get(child_node.key)
                if marker is None:
                    self.warnings.append(
                        f"{xpath_of(child)}: no {child_node.key} to match it by; not applied"
                    )
                    continue
                new = _copy(child)
                match = next((c for c in siblings if c.get(child_node.key) == marker), None)
                if match is not None:
                    target.replace(match, new)
                else:
                    _append(target, new, siblings)
                continue
            if child_node is not None and child_node.kind == "item":
                index = positions[name]
                positions[name] += 1
                match = siblings[index] if index < len(siblings) else None
            else:
                match = siblings[0] if siblings else None
            if match is None:
                match = etree.Element(name)
                _append(target, match, siblings)
            self.merge(match, child, child_path)

    def apply(self, data: bytes, number: int) -> None:
        root = settings_root(data)
        sections = sections_of(root, self.schema)
        label = f"document {number}"
        patch_default = PATCH_DEFAULT
        if local_name(root.tag) == ROOT:
            self.strip_root(root)
            given = root.get("patchDefault")
            patch_default = _bool_or(given, PATCH_DEFAULT)
            if given is not None and parse_bool(given) is None:
                self.warnings.append(f"{label}: patchDefault={given!r} is not true/false")
        else:
            self.warnings.append(
                f"{label}: bare <{root.tag}> root; the safe form is <{ROOT}> (§1.1)"
            )
        for section in sections:
            name = local_name(section.tag)
            if not is_section(self.schema, name):
                self.stripped.append(xpath_of(section))
                continue
            self.strip(section, f"/{name}")
            self.apply_section(section, name, patch_default, label)

    def strip_root(self, root: etree._Element) -> None:
        for name, _value in attributes_of(root):
            known = name == "patchDefault" or self.schema.get(f"/@{local_name(name)}")
            if not (local_name(name) and known):
                self.stripped.append(xpath_of(root, name))
                del root.attrib[name]

    def apply_section(
        self, section: etree._Element, name: str, patch_default: bool, label: str
    ) -> None:
        given = section.get("patch")
        if given is not None and parse_bool(given) is None:
            self.warnings.append(f"{label}: <{name} patch={given!r}> is not true/false")
        patch = _bool_or(given, patch_default)
        if section.get("version") is None:
            self.warnings.append(
                f"{label}: <{name}> without version: the phone guesses it from stored XSDs (§2.2)"
            )
        target = next((c for c in self.state if c.tag == name), None)
        if patch:
            if target is None:
                target = etree.SubElement(self.state, name)
            self.merge(target, section, f"/{name}")
            return
        new = _copy(section)
        _drop_patch(new)
        if target is None:
            self.state.append(new)
            return
        if new.get("version") is None and target.get("version") is not None:
            new.set("version", str(target.get("version")))
        self.state.replace(target, new)

    def result(self) -> Applied:
        etree.indent(self.state, space=INDENT)
        body = etree.tostring(self.state, encoding="utf-8")
        return Applied(DECLARATION + body + b"\n", tuple(self.stripped), tuple(self.warnings))


def _bool_or(value: str | None, default: bool) -> bool:
    parsed = parse_bool(value)
    return default if parsed is None else parsed


def _copy(element: etree._Element) -> etree._Element:
    """A detached deep copy without whitespace text (the result is re-indented)."""
    new = deepcopy(element)
    for node in new.iter():
        node.tail = None
        if len(node):
            node.text = None
    return new


def _drop_patch(section: etree._Element) -> None:
    if "patch" in section.attrib:
        del section.attrib["patch"]


def _append(target: etree._Element, new: etree._Element, siblings: list[etree._Element]) -> None:
    """Add `new` after its last same-named sibling, else at the end."""
    if siblings:
        siblings[-1].addnext(new)
    else:
        target.append(new)


def apply_settings(
    documents: list[bytes], schema: PhoneSchema, base: bytes | None = None
) -> Applied:
    """The settings after the phone applies `documents` in order onto `base` (the phone's
    current settings, taken as they are), as one `<configuration>`; sections keep their
    first-seen order. InputError for malformed XML, a reference file or a foreign root.

    >>> from .phoneschema import Node, ValueType
    >>> schema = PhoneSchema((Node("/update", "section", "V"), Node("/update/@version", "leaf",
    ...     "V", ValueType("version")), Node("/update/check", "leaf", "V", ValueType("bool"))))
    >>> out = apply_settings([b'<update version="1.34.0"><check>true</check><x/></update>'],
    ...                      schema)
    >>> print(out.configuration.decode(), out.stripped, sep="")
    <?xml version="1.0" encoding="utf-8"?>
    <configuration>
      <update version="1.34.0">
        <check>true</check>
      </update>
    </configuration>
    ('/update/x',)
    """
    run = _Merge(schema)
    if base is not None:
        root = settings_root(base)
        for section in sections_of(root, schema):
            new = _copy(section)
            if local_name(new.tag) in (c.tag for c in run.state):
                continue  # a repeated section in the phone's own state: the first counts
            _drop_patch(new)
            run.state.append(new)
    for number, data in enumerate(documents, 1):
        run.apply(data, number)
    return run.result()


def replaced_sections(documents: list[bytes], schema: PhoneSchema) -> frozenset[str]:
    """The sections some document replaces: `patch="false"`, or no `patch` under a root with
    `patchDefault="false"` (the rule `apply_settings` follows). InputError as there."""
    out: set[str] = set()
    for data in documents:
        root = settings_root(data)
        default = PATCH_DEFAULT
        if local_name(root.tag) == ROOT:
            default = _bool_or(root.get("patchDefault"), PATCH_DEFAULT)
        for section in sections_of(root, schema):
            name = local_name(section.tag)
            if is_section(schema, name) and not _bool_or(section.get("patch"), default):
                out.add(name)
    return frozenset(out)


def merged_document(documents: list[bytes], schema: PhoneSchema) -> bytes:
    """One settings document equal in effect to applying `documents` in order, on any base.

    It holds what the documents give (merged, stripped as the phone strips). A section some
    document replaced comes out `patch="false"` (applying the chain replaces it too, on any
    base); every other section `patch="true"` (the chain only merges into it), so leaves
    the chain never names keep their value on the phone.

    >>> from .phoneschema import Node, ValueType
    >>> schema = PhoneSchema((Node("/update", "section", "V"), Node("/update/check", "leaf",
    ...     "V", ValueType("bool")), Node("/telephony", "section", "V")))
    >>> docs = [b'<configuration><update><check>true</check></update></configuration>',
    ...         b'<configuration patchDefault="false"><telephony/></configuration>']
    >>> print(merged_document(docs, schema).decode())
    <?xml version="1.0" encoding="utf-8"?>
    <configuration>
      <update patch="true">
        <check>true</check>
      </update>
      <telephony patch="false"/>
    </configuration>
    <BLANKLINE>
    """
    run = _Merge(schema)
    for number, data in enumerate(documents, 1):
        run.apply(data, number)
    replaced = replaced_sections(documents, schema)
    for section in run.state:
        section.set("patch", "false" if section.tag in replaced else "true")
    return run.result().configuration
