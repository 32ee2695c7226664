"""Settings documents for property tests, generated from the shipped phone schema (shared by
the merge and the merged-document tests; on pytest's pythonpath)."""

from __future__ import annotations

from html import escape
from importlib.resources import files

from hypothesis import strategies as st

from phoneprov.core.phoneschema import SHIPPED_RESOURCE, Node, parse_schema

SCHEMA = parse_schema(files("phoneprov").joinpath(SHIPPED_RESOURCE).read_bytes(), "shipped")
HASH = "$6$abcdefgh$0123456789abcdefABCDEF"
TEXT_ALPHABET = "ab <&\"'\n\r"


def conf(body: str, root_attrs: str = "") -> bytes:
    return f"<configuration{root_attrs}>{body}</configuration>".encode()


def value(node: Node) -> st.SearchStrategy[str]:
    """A value of the node's type (small ints: keyNumbers collide)."""
    vtype = node.type
    assert vtype is not None
    if vtype.name == "bool":
        return st.sampled_from(["true", "false"])
    if vtype.name == "int":
        low = vtype.minimum if vtype.minimum is not None else 0
        return st.integers(low, low + 3).map(str)
    if vtype.name == "enum":
        return st.sampled_from(vtype.values)
    if vtype.name == "regex":
        return st.sampled_from(["03:30", "0:05"])
    if vtype.name == "hash":
        return st.just(HASH)
    if vtype.name == "version":
        return st.sampled_from(["1.34.0", "1.26.11"])
    return st.text(alphabet=TEXT_ALPHABET, max_size=3)


def _children(node: Node) -> st.SearchStrategy[str]:
    if node.kind == "item":
        return st.lists(element(node), max_size=2).map("".join)
    return st.tuples(element(node), st.sampled_from([0, 0, 1, 1, 2])).map(lambda t: t[0] * t[1])


def element(node: Node) -> st.SearchStrategy[str]:
    """One element of `node`: any subset of its attributes and children, lists of 0..2 items
    (non-items sometimes twice), a value for a leaf, now and then an unknown child."""
    attributes = [
        st.one_of(st.just(""), value(a).map(lambda v, n=a.name[1:]: f' {n}="{escape(v)}"'))
        for a in SCHEMA.attributes(node.path)
        if not (node.kind == "section" and a.name == "@patch")
    ]
    if node.kind == "section":
        attributes.append(st.sampled_from(["", ' patch="true"', ' patch="false"']))
    parts = [_children(child) for child in SCHEMA.children(node.path)]
    if node.type is not None:
        parts.append(value(node).map(escape))
    parts.append(st.sampled_from(["", "", "", "<bogus>x</bogus>"]))  # stripped, never kept
    return st.tuples(st.tuples(*attributes), st.tuples(*parts)).map(
        lambda t: f"<{node.name}{''.join(t[0])}>{''.join(t[1])}</{node.name}>"
    )


SECTIONS = {n.name: element(n) for n in SCHEMA.children("") if n.kind == "section"}
DOCUMENTS = st.tuples(
    st.sampled_from(["", ' patchDefault="true"', ' patchDefault="false"']),
    st.lists(st.sampled_from(sorted(SECTIONS)).flatmap(lambda n: SECTIONS[n]), max_size=3),
).map(lambda t: conf("".join(t[1]), t[0]))
