"""Applying settings files in order, as the phone's restore does: later values override earlier.

A settings file is XML. Each leaf element becomes one setting keyed by its element path;
a repeated sibling is told apart by its `id`/`name`/`idx` attribute (or its position), so
`<account id="1"><user>201</user></account>` is `account[1]/user`. The root element is the
file's envelope and not part of the key.
"""

from __future__ import annotations

from collections import Counter

from lxml import etree

from .reference import parse_xml

KEY_ATTRIBUTES = ("id", "name", "idx")


def flatten_settings(data: bytes) -> dict[str, str]:
    """The settings of one file as `path -> value`, in document order.

    >>> flatten_settings(b"<s><a>1</a><b id='x'><c>2</c></b><d>3</d><d>4</d></s>")
    {'a': '1', 'b[x]/c': '2', 'd[1]': '3', 'd[2]': '4'}
    """
    root = parse_xml(data)
    out: dict[str, str] = {}
    _walk(root, "", out)
    return out


def merge_settings(files: list[dict[str, str]]) -> dict[str, str]:
    """Apply files in order: a later file's value for a key overrides an earlier one.

    >>> merge_settings([{"a": "1", "b": "2"}, {"b": "3"}])
    {'a': '1', 'b': '3'}
    """
    merged: dict[str, str] = {}
    for settings in files:
        merged.update(settings)
    return merged


def _walk(element: etree._Element, prefix: str, out: dict[str, str]) -> None:
    children = [c for c in element if isinstance(c.tag, str)]
    counts = Counter(etree.QName(c).localname for c in children)
    seen: Counter[str] = Counter()
    for child in children:
        name = etree.QName(child).localname
        seen[name] += 1
        key = next((child.get(a) for a in KEY_ATTRIBUTES if child.get(a) is not None), None)
        if key is not None:
            name = f"{name}[{key}]"
        elif counts[name] > 1:
            name = f"{name}[{seen[name]}]"
        path = f"{prefix}/{name}" if prefix else name
        if len([c for c in child if isinstance(c.tag, str)]):
            _walk(child, path, out)
        else:
            out[path] = (child.text or "").strip()
