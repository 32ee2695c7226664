"""The phone's settings XML: validation against the schema, the merge, the SIP identities.

`validate_settings` reports what the phone would drop or refuse in a settings document;
`apply_settings` (from `phonemerge`) merges documents as the phone does; `read_identities`
gives the SIP accounts of a configuration as values.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree

from .errors import InputError
from .passwords import looks_like_hash
from .phonemerge import (
    REFERENCE_REFUSED,
    SECTION_ATTRIBUTES,
    SILENT_DROP,
    Applied,
    apply_settings,
    attributes_of,
    is_section,
    line_of,
    local_name,
    parse_bool,
    sections_of,
    settings_root,
    xpath_of,
)
from .phoneschema import ROOT, Node, PhoneSchema, ValueType
from .reference import REFERENCE_ROOT, parse_xml

__all__ = [
    "Applied",
    "Identity",
    "Problem",
    "apply_settings",
    "check_value",
    "looks_like_hash",
    "read_identities",
    "validate_settings",
]

LEVELS = ("error", "warning")
_INT = re.compile(r"^[+-]?[0-9]+$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


@dataclass(frozen=True)
class Problem:
    """One finding in a settings document; `line` is the element's source line (0: unknown)."""

    xpath: str
    line: int
    message: str
    level: str = "error"  # one of LEVELS

    def __str__(self) -> str:
        return f"line {self.line}: {self.xpath}: {self.level}: {self.message}"


@dataclass(frozen=True)
class Identity:
    """One SIP account of a configuration; `index` is its position 1..6 (§3.2)."""

    index: int
    username: str = ""
    password: str = field(default="", repr=False)
    displayname: str = ""
    registrar: str = ""
    registrar_port: int | None = None
    domain: str = ""
    register_interval: int | None = None  # minutes
    active: bool | None = None
    send_register: bool | None = None


def check_value(vtype: ValueType, value: str, what: str) -> str:
    """Why `value` does not fit `vtype` ("" when it does); `what` names the element.

    >>> check_value(ValueType("int", 5, 60), "61", "registerInterval")
    'registerInterval: 61 is out of range 5..60'
    """
    text = value.strip()
    if vtype.name == "bool" and parse_bool(text) is None:
        return f"{what}: {value!r} is not true or false"
    if vtype.name == "int":
        if not _INT.match(text):
            return f"{what}: {value!r} is not an integer"
        number = int(text)
        low, high = vtype.minimum, vtype.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            return f"{what}: {number} is out of range {vtype.describe()[4:]}"
    if vtype.name == "enum" and text not in vtype.values:
        return f"{what}: {value!r} is not one of {'|'.join(vtype.values)}"
    if vtype.name == "regex" and not re.search(vtype.pattern, value):
        return f"{what}: {value!r} does not match {vtype.pattern}"
    if vtype.name == "version" and not _VERSION.match(text):
        return f"{what}: {value!r} is not a settings version X.Y.Z"
    if vtype.name == "hash" and not looks_like_hash(value):
        return (
            f"{what}: plain-text admin password; the phone takes only a hash here "
            "(generate one at https://<phone-ip>/#/generateHash, §3.5)"
        )
    return ""


class _Check:
    """One validation run: the problems found so far."""

    def __init__(self, schema: PhoneSchema) -> None:
        self.schema = schema
        self.problems: list[Problem] = []

    def add(
        self, element: etree._Element, message: str, level: str = "error", attr: str = ""
    ) -> None:
        self.problems.append(Problem(xpath_of(element, attr), line_of(element), message, level))

    def value(self, element: etree._Element, node: Node, value: str, attr: str = "") -> None:
        if node.type is None:
            return
        message = check_value(node.type, value, node.name)
        if message:
            level = "error" if node.source.startswith("V") else "warning"
            note = "" if level == "error" else " (type not documented, see the schema source)"
            self.add(element, message + note, level, attr)

    def attributes(self, element: etree._Element, path: str) -> None:
        for name, value in attributes_of(element):
            node = self.schema.get(f"{path}/@{name}") if local_name(name) else None
            if node is None and path.count("/") == 1 and name in SECTION_ATTRIBUTES:
                continue  # version/patch of a section the schema only lists
            if node is None:
                self.add(element, f"unknown attribute {name}: {SILENT_DROP}", attr=name)
            else:
                self.value(element, node, value, name)

    def element(self, element: etree._Element, path: str, replaced: bool) -> None:
        self.attributes(element, path)
        node = self.schema.get(path)
        if node is not None and node.type is not None and not len(element):
            self.value(element, node, element.text or "")
        children = [c for c in element if isinstance(c.tag, str)]
        counts = Counter(local_name(c.tag) for c in children)
        seen: Counter[str] = Counter()
        keys: dict[tuple[str, str], int] = {}
        for child in children:
            name = local_name(child.tag)
            child_node = self.schema.get(f"{path}/{name}") if name else None
            if child_node is None:
                self.add(child, f"unknown element <{child.tag}>: {SILENT_DROP}")
                continue
            seen[name] += 1
            self.count(child, child_node, seen[name], keys)
            self.element(child, child_node.path, replaced)
        for child_node in self.schema.children(path):
            low = child_node.min_items
            if replaced and low is not None and counts[child_node.name] < low:
                self.add(
                    element,
                    f'patch="false" replaces the whole section, so <{element.tag}> needs at '
                    f"least {low} <{child_node.name}>, not {counts[child_node.name]}",
                )

    def count(
        self, child: etree._Element, node: Node, n: int, keys: dict[tuple[str, str], int]
    ) -> None:
        if node.kind != "item":
            if n == 2:
                self.add(
                    child, f"<{node.name}> is given more than once here; the schema allows one"
                )
            return
        if node.max_items is not None and n == node.max_items + 1:
            self.add(child, f"too many <{node.name}>: the phone holds at most {node.max_items}")
        if not node.key:
            return
        value = child.get(node.key)
        if value is None:
            self.add(child, f"<{node.name}> without {node.key}: the merge cannot match it")
        elif (node.name, value) in keys:
            line = keys[(node.name, value)]
            self.add(child, f'duplicate {node.key}="{value}" in one list (also on line {line})')
        else:
            keys[(node.name, value)] = line_of(child)

    def section(self, section: etree._Element, patch_default: bool) -> None:
        name = local_name(section.tag)
        if not is_section(self.schema, name):
            self.add(section, f"unknown section <{section.tag}>: {SILENT_DROP}")
            return
        version, learned = section.get("version"), self.schema.version(name)
        if version is None:
            self.add(
                section,
                f"<{name}> without version: the phone guesses it from stored XSDs (§2.2)",
                "warning",
            )
        elif learned and version.strip() != learned:
            self.add(
                section,
                f"version {version} differs from the phone's backup ({learned}); use that (§6)",
                "warning",
                "version",
            )
        patch = parse_bool(section.get("patch"))
        self.element(section, f"/{name}", not (patch_default if patch is None else patch))


def validate_settings(doc: bytes, schema: PhoneSchema) -> list[Problem]:
    """Problems of one settings document, in document order; never raises for bad input
    (malformed XML and reference files are reported as problems)."""
    try:
        root = parse_xml(doc)
    except InputError as e:
        return [Problem("/", 0, str(e))]
    run = _Check(schema)
    name = local_name(root.tag)
    if name == REFERENCE_ROOT:
        run.add(root, REFERENCE_REFUSED + "; validate the files it lists")
        return run.problems
    if name != ROOT and not is_section(schema, name):
        run.add(root, f"root element <{root.tag}> is neither <{ROOT}> nor a settings section")
        return run.problems
    patch_default = True
    if name == ROOT:
        run.attributes(root, "")
        patch_default = parse_bool(root.get("patchDefault")) is not False
    else:
        run.add(root, f"bare <{name}> root; the safe form is <{ROOT}> (§1.1)", "warning")
    for section in sections_of(root, schema):
        run.section(section, patch_default)
    return run.problems


def _int(element: etree._Element, name: str, index: int) -> int | None:
    text = _text(element, name)
    if not text:
        return None
    if not _INT.match(text.strip()):
        raise InputError(f"identity {index}: {name} {text!r} is not an integer")
    return int(text)


def _bool(element: etree._Element, name: str, index: int) -> bool | None:
    text = _text(element, name)
    if not text:
        return None
    parsed = parse_bool(text)
    if parsed is None:
        raise InputError(f"identity {index}: {name} {text!r} is not true or false")
    return parsed


def _text(element: etree._Element, name: str) -> str:
    child = element.find(name)
    return "" if child is None else child.text or ""


def read_identities(configuration: bytes) -> tuple[Identity, ...]:
    """The `<identity>` entries of a configuration in order (index 1..n), missing fields empty.

    >>> ids = read_identities(b"<configuration><identities><identity/><identity>"
    ...     b"<username>201</username><registrarPort>5060</registrarPort></identity>"
    ...     b"</identities></configuration>")
    >>> len(ids), ids[1].index, ids[1].username, ids[1].registrar_port, ids[1].active
    (2, 2, '201', 5060, None)
    """
    root = settings_root(configuration)
    sections = [root] if local_name(root.tag) == "identities" else list(root)
    section = next((s for s in sections if local_name(s.tag) == "identities"), None)
    if section is None:
        return ()
    out = []
    for index, element in enumerate(section.findall("identity"), 1):
        out.append(
            Identity(
                index,
                username=_text(element, "username"),
                password=_text(element, "password"),
                displayname=_text(element, "displayname"),
                registrar=_text(element, "registrar"),
                domain=_text(element, "domain"),
                registrar_port=_int(element, "registrarPort", index),
                register_interval=_int(element, "registerInterval", index),
                active=_bool(element, "active", index),
                send_register=_bool(element, "sendRegister", index),
            )
        )
    return tuple(out)
