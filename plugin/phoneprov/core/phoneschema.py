"""The phone's settings schema: which element and attribute paths exist, with types and sources.

Paths start at the section: `/identities/identity/username`, attributes as
`/keys/phoneXtensions/key/@keyNumber`; attributes of the `<configuration>` root are `/@name`.
The shipped schema (`data/dseries-schema.json`) holds what DSERIES.md documents, each node
tagged `V §x` (vendor-stated) or `I §x` (inferred). `learn_schema` records what a real
phone's backup shows (tagged `L <origin>`); `merge_schemas` combines them, documented first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .errors import ConfigError, InputError
from .reference import REFERENCE_ROOT, parse_xml

FORMAT = "phoneprov-dseries-schema/1"
SHIPPED_RESOURCE = "data/dseries-schema.json"  # inside the phoneprov package
ROOT = "configuration"
KINDS = ("section", "container", "item", "leaf")
TYPES = ("bool", "int", "string", "enum", "regex", "hash", "version")
KEY_ATTRIBUTES = ("keyNumber", "name")  # marker attributes a learned list keeps
BOOL_VALUES = frozenset({"true", "false"})
SOURCE_RANK = {"V": 0, "I": 1, "L": 2}  # a documented node wins over a learned one
_NODE_FIELDS = frozenset(
    {"kind", "type", "min", "max", "values", "pattern", "key", "minItems", "maxItems"}
    | {"source", "note"}
)
_SEGMENT = re.compile(r"^@?[A-Za-z_][\w.-]*$")


@dataclass(frozen=True)
class ValueType:
    """The type of a leaf's text or an attribute's value."""

    name: str  # one of TYPES
    minimum: int | None = None  # int
    maximum: int | None = None  # int
    values: tuple[str, ...] = ()  # enum
    pattern: str = ""  # regex

    def describe(self) -> str:
        """Short text for `schema show`.

        >>> ValueType("int", 1, 65535).describe()
        'int 1..65535'
        """
        if self.name == "int" and (self.minimum is not None or self.maximum is not None):
            low = "" if self.minimum is None else str(self.minimum)
            high = "" if self.maximum is None else str(self.maximum)
            return f"int {low}..{high}"
        if self.name == "enum":
            return "enum " + "|".join(self.values)
        if self.name == "regex":
            return f"regex {self.pattern}"
        return self.name


@dataclass(frozen=True)
class Node:
    """One element or attribute path of the schema."""

    path: str
    kind: str  # one of KINDS; attributes are leaves
    source: str  # "V §3.2", "I §2.1", "L <origin>"
    type: ValueType | None = None  # leaves; items holding text
    key: str = ""  # item: the marker attribute that matches it in a merge
    min_items: int | None = None  # item: per parent
    max_items: int | None = None  # item: per parent
    note: str = ""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def parent(self) -> str:
        return self.path.rsplit("/", 1)[0]

    @property
    def is_attribute(self) -> bool:
        return self.name.startswith("@")

    def describe(self) -> str:
        """What the node is, for `schema show`."""
        parts = [self.kind]
        if self.key:
            parts.append(f"key @{self.key}")
        if self.min_items is not None:
            parts.append(f"min {self.min_items}")
        if self.max_items is not None:
            parts.append(f"max {self.max_items}")
        if self.type is not None:
            parts.append(self.type.describe())
        return " ".join(parts)


@dataclass(frozen=True)
class PhoneSchema:
    """All nodes in tree order, plus the settings version each section had in a real backup."""

    nodes: tuple[Node, ...]
    versions: tuple[tuple[str, str], ...] = ()  # (section, version) seen in a backup
    about: str = ""
    _index: Mapping[str, Node] = field(init=False, repr=False, compare=False)
    _children: Mapping[str, tuple[Node, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[str, list[Node]] = {}
        for node in self.nodes:
            children.setdefault(node.parent, []).append(node)
        object.__setattr__(self, "_index", {n.path: n for n in self.nodes})
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    def get(self, path: str) -> Node | None:
        return self._index.get(path)

    def children(self, path: str) -> tuple[Node, ...]:
        """The element nodes directly below `path` ("" for the sections)."""
        return tuple(n for n in self._children.get(path, ()) if not n.is_attribute)

    def attributes(self, path: str) -> tuple[Node, ...]:
        """The attribute nodes of `path` ("" for the `<configuration>` root)."""
        return tuple(n for n in self._children.get(path, ()) if n.is_attribute)

    def version(self, section: str) -> str:
        """The version a real backup showed for `section`, or ""."""
        return dict(self.versions).get(section, "")


def _fail(message: str, origin: str) -> ConfigError:
    return ConfigError(f"bad phone schema: {message}", origin)


def _value_type(path: str, spec: Mapping[str, Any], origin: str) -> ValueType | None:
    name = spec.get("type")
    if name is None:
        return None
    if name not in TYPES:
        raise _fail(f"{path}: type {name!r} is not one of {', '.join(TYPES)}", origin)
    low, high = spec.get("min"), spec.get("max")
    for bound in (low, high):
        if bound is not None and (name != "int" or type(bound) is not int):
            raise _fail(f"{path}: min/max must be integers of an int type", origin)
    values = spec.get("values", [])
    if (name == "enum") != bool(values) or not all(isinstance(v, str) for v in values):
        raise _fail(f"{path}: an enum (and only an enum) has a list of string values", origin)
    pattern = spec.get("pattern", "")
    if (name == "regex") != bool(pattern) or not isinstance(pattern, str):
        raise _fail(f"{path}: a regex (and only a regex) has a pattern", origin)
    try:
        re.compile(pattern)
    except re.error as e:
        raise _fail(f"{path}: pattern does not compile: {e}", origin) from None
    return ValueType(name, low, high, tuple(values), pattern)


def _node(path: str, spec: Any, origin: str) -> Node:
    if not isinstance(spec, dict):
        raise _fail(f"{path}: an entry must be an object", origin)
    unknown = set(spec) - _NODE_FIELDS
    if unknown:
        raise _fail(f"{path}: unknown field(s) {', '.join(sorted(unknown))}", origin)
    segments = path.split("/")
    if path[:1] != "/" or not all(_SEGMENT.match(s) for s in segments[1:]):
        raise _fail(f"{path!r} is not a path like /section/element/@attribute", origin)
    if any(s.startswith("@") for s in segments[1:-1]):
        raise _fail(f"{path}: an attribute has no children", origin)
    kind, source = spec.get("kind"), spec.get("source")
    if kind not in KINDS:
        raise _fail(f"{path}: kind {kind!r} is not one of {', '.join(KINDS)}", origin)
    if not isinstance(source, str) or source[:1] not in SOURCE_RANK:
        raise _fail(f"{path}: source must start with V, I or L", origin)
    if (kind == "section") != (len(segments) == 2 and not segments[1].startswith("@")):
        raise _fail(f"{path}: sections (and only they) sit directly below the root", origin)
    vtype = _value_type(path, spec, origin)
    if (kind == "leaf") != (vtype is not None) and kind != "item":
        raise _fail(f"{path}: leaves (and only leaves and items) have a type", origin)
    if segments[-1].startswith("@") and kind != "leaf":
        raise _fail(f"{path}: an attribute must be a leaf", origin)
    key, low, high = spec.get("key", ""), spec.get("minItems"), spec.get("maxItems")
    if (key or low is not None or high is not None) and kind != "item":
        raise _fail(f"{path}: key, minItems and maxItems belong to items", origin)
    for bound in (low, high):
        if bound is not None and (type(bound) is not int or bound < 0):
            raise _fail(f"{path}: minItems/maxItems must be non-negative integers", origin)
    note = spec.get("note", "")
    if not isinstance(key, str) or not isinstance(note, str):
        raise _fail(f"{path}: key and note must be strings", origin)
    return Node(path, kind, source, vtype, key, low, high, note)


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        repeated = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise ValueError(f"repeated key(s) {', '.join(repeated)}")
    return out


def parse_schema(data: bytes | str, origin: str) -> PhoneSchema:
    """A schema from its JSON form; ConfigError naming `origin` when the data is bad."""
    try:
        doc = json.loads(data, object_pairs_hook=_unique_object)
    except (ValueError, UnicodeDecodeError) as e:
        raise _fail(f"not JSON: {e}", origin) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(f"not a schema file (format must be {FORMAT!r})", origin)
    if set(doc) - {"format", "about", "versions", "nodes"}:
        raise _fail("top-level fields are format, about, versions and nodes", origin)
    nodes, versions = doc.get("nodes"), doc.get("versions", {})
    about = doc.get("about", "")
    if not isinstance(nodes, dict) or not isinstance(versions, dict) or not isinstance(about, str):
        raise _fail("nodes and versions must be objects, about a string", origin)
    if not all(isinstance(v, str) for v in versions.values()):
        raise _fail("versions must map section names to strings", origin)
    schema = PhoneSchema(tuple(_node(p, s, origin) for p, s in nodes.items()), (), about)
    for node in schema.nodes:
        if node.parent and schema.get(node.parent) is None:
            raise _fail(f"{node.path}: its parent {node.parent} is not in the schema", origin)
        if node.key and schema.get(f"{node.path}/@{node.key}") is None:
            raise _fail(f"{node.path}: key attribute @{node.key} is not in the schema", origin)
    return PhoneSchema(schema.nodes, tuple(versions.items()), about)


def _node_json(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": node.kind}
    if node.type is not None:
        out["type"] = node.type.name
        for name, value in (("min", node.type.minimum), ("max", node.type.maximum)):
            if value is not None:
                out[name] = value
        if node.type.values:
            out["values"] = list(node.type.values)
        if node.type.pattern:
            out["pattern"] = node.type.pattern
    if node.key:
        out["key"] = node.key
    if node.min_items is not None:
        out["minItems"] = node.min_items
    if node.max_items is not None:
        out["maxItems"] = node.max_items
    out["source"] = node.source
    if node.note:
        out["note"] = node.note
    return out


def schema_to_json(schema: PhoneSchema) -> str:
    """The JSON form `parse_schema` reads back: one line per node, in tree order."""
    dump = json.dumps
    lines = [f'  "{k}": {dump(v, ensure_ascii=False)},' for k, v in (("format", FORMAT),)]
    lines.append(f'  "about": {dump(schema.about, ensure_ascii=False)},')
    lines.append(f'  "versions": {dump(dict(schema.versions), ensure_ascii=False)},')
    body = ",\n".join(
        f"    {dump(n.path)}: {dump(_node_json(n), ensure_ascii=False)}" for n in schema.nodes
    )
    return "{\n" + "\n".join(lines) + '\n  "nodes": {\n' + body + "\n  }\n}\n"


def schema_entries(schema: PhoneSchema) -> list[tuple[str, str, str]]:
    """(path, what, source) per node, for `schema show`; a section shows its learned version.

    >>> s = PhoneSchema((Node("/users", "section", "V §3.5"),), (("users", "1.34.0"),))
    >>> schema_entries(s)
    [('/users', 'section version 1.34.0', 'V §3.5')]
    """
    out = []
    for node in schema.nodes:
        what = node.describe()
        if node.kind == "section" and schema.version(node.name):
            what += f" version {schema.version(node.name)}"
        out.append((node.path, what, node.source))
    return out


@dataclass
class _Seen:
    """What a backup showed at one path (a scratch record while learning)."""

    children: bool = False
    repeated: bool = False
    values: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)


def _local(tag: object) -> str:
    return tag if isinstance(tag, str) and not tag.startswith("{") else ""


def _observe(element: etree._Element, path: str, seen: dict[str, _Seen]) -> None:
    here = seen.setdefault(path, _Seen())
    for raw, value in element.attrib.items():
        name = str(raw)
        if _local(name):
            here.attributes.add(name)
            seen.setdefault(f"{path}/@{name}", _Seen()).values.add(str(value))
    counts = Counter(_local(child.tag) for child in element if _local(child.tag))
    here.children = here.children or bool(counts)
    if not counts:
        here.values.add((element.text or "").strip())
    for child in element:
        name = _local(child.tag)
        if name:
            _observe(child, f"{path}/{name}", seen)
            seen[f"{path}/{name}"].repeated |= counts[name] > 1


def _learned_type(path: str, values: set[str]) -> ValueType:
    if path.endswith("/@version") and path.count("/") == 2:
        return ValueType("version")
    if path.endswith("/@patch") and path.count("/") == 2:
        return ValueType("bool")
    shown = values - {""}  # an empty element says nothing about the type
    return ValueType("bool" if shown and shown <= BOOL_VALUES else "string")


def learn_schema(backup_xml: bytes, origin: str) -> PhoneSchema:
    """Every element and attribute path of a real phone's backup, with its sections' versions.

    Leaves are typed "string" unless every value seen is true/false; an element repeated
    among its siblings, or carrying a keyNumber/name attribute, is a list item.

    >>> s = learn_schema(b'<configuration><users version="1.34.0"><user name="a">'
    ...                  b'<role>admin</role><changePassword>false</changePassword>'
    ...                  b'</user></users></configuration>', "b.xml")
    >>> [(p, what) for p, what, _ in schema_entries(s)][1:]  # doctest: +NORMALIZE_WHITESPACE
    [('/users/@version', 'leaf version'), ('/users/user', 'item key @name'),
     ('/users/user/@name', 'leaf string'), ('/users/user/role', 'leaf string'),
     ('/users/user/changePassword', 'leaf bool')]
    """
    try:
        root = parse_xml(backup_xml)
    except InputError as e:
        raise InputError(f"{origin}: {e}") from None
    name = _local(root.tag)
    if name == REFERENCE_ROOT:
        raise InputError(f"{origin}: a reference file is not a backup of the phone's settings")
    seen: dict[str, _Seen] = {}
    sections = list(root) if name == ROOT else [root]
    if name == ROOT:
        for raw, value in root.attrib.items():
            attr = str(raw)
            if _local(attr):
                seen.setdefault(f"/@{attr}", _Seen()).values.add(str(value))
    versions: dict[str, str] = {}
    for section in sections:
        if _local(section.tag):
            _observe(section, f"/{_local(section.tag)}", seen)
            if section.get("version"):
                versions[_local(section.tag)] = str(section.get("version"))
    source = f"L {origin}"
    nodes = []
    for path, what in seen.items():
        if path.rsplit("/", 1)[1].startswith("@"):
            nodes.append(Node(path, "leaf", source, _learned_type(path, what.values)))
            continue
        key = next((k for k in KEY_ATTRIBUTES if k in what.attributes), "")
        text = None if what.children else _learned_type(path, what.values)
        if path.count("/") == 1:
            nodes.append(Node(path, "section", source))
        elif what.repeated or key:
            nodes.append(Node(path, "item", source, text, key))
        else:
            nodes.append(Node(path, "container" if what.children else "leaf", source, text))
    return PhoneSchema(_tree_order(nodes), tuple(versions.items()), f"learned from {origin}")


def _tree_order(nodes: Iterable[Node]) -> tuple[Node, ...]:
    """Nodes sorted so each follows its parent, siblings in first-seen order."""
    listed = list(nodes)
    first: dict[str, int] = {}
    for node in listed:
        first.setdefault(node.path, len(first))

    def rank(node: Node) -> tuple[int, ...]:
        segments = node.path.split("/")[1:]
        prefixes = ("/" + "/".join(segments[: i + 1]) for i in range(len(segments)))
        return tuple(first.get(p, len(first)) for p in prefixes)

    return tuple(sorted(listed, key=rank))


def merge_schemas(*schemas: PhoneSchema) -> PhoneSchema:
    """One schema holding every path of `schemas`; per path the best-sourced node wins
    (V before I before learned, then the earlier schema). Later versions override."""
    best: dict[str, Node] = {}
    for schema in schemas:
        for node in schema.nodes:
            held = best.get(node.path)
            if held is None or SOURCE_RANK[node.source[0]] < SOURCE_RANK[held.source[0]]:
                best[node.path] = node  # a replaced entry keeps its first-seen place
    versions: dict[str, str] = {}
    for schema in schemas:
        versions.update(schema.versions)
    about = "; ".join(dict.fromkeys(s.about for s in schemas if s.about))
    return PhoneSchema(_tree_order(best.values()), tuple(versions.items()), about)
