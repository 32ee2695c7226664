"""The phone's fetch chain: fetch the entry URL; a reference file leads to more fetches, in order;
then the settings files are applied in order with the phone's merge (`apply_settings`).

Pure: the fetching is passed in (`fetch(url) -> (status, body)`), as time is elsewhere, and so
is the phone's settings schema. Nested reference files are followed depth-first with a depth
limit and loop detection. A settings file the phone cannot apply (foreign root, bad XML)
fails the chain at that file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError
from .markers import DeviceInfo, replace_markers
from .phonemerge import apply_settings, attributes_of
from .phoneschema import ROOT, PhoneSchema
from .reference import parse_xml, reference_urls, resolve_reference

MAX_DEPTH = 4
MAX_FILES = 64

Fetch = Callable[[str], tuple[int, bytes]]


@dataclass(frozen=True)
class Step:
    url: str
    status: int
    size: int
    kind: str  # "reference" | "settings" | "failed"
    depth: int
    note: str = ""
    stripped: tuple[str, ...] = ()  # settings: xpaths in this file the phone drops


@dataclass(frozen=True)
class Outcome:
    steps: tuple[Step, ...]
    configuration: bytes = b""  # the settings after applying the files (empty on failure)
    warnings: tuple[str, ...] = ()  # from the merge; "document N" is the N-th settings file
    error: str = ""  # empty when every file was fetched and could be applied

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def files(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "settings")

    @property
    def stripped(self) -> tuple[str, ...]:
        """What the phone drops, over all files: `xpath` as in `Applied.stripped`."""
        return tuple(x for s in self.files for x in s.stripped)

    @property
    def settings(self) -> dict[str, str]:
        """The configuration's values as `xpath -> text` (see `flat_settings`)."""
        return flat_settings(self.configuration) if self.configuration else {}


class _Failed(Exception):
    pass


def flat_settings(configuration: bytes) -> dict[str, str]:
    """A configuration's values as `xpath -> text` (leaves and attributes, document order),
    xpaths below `<configuration>`; for reading, not for applying.

    >>> flat_settings(b'<configuration><identities version="1.34.0"><identity><username>'
    ...     b'201</username></identity><identity/></identities></configuration>')
    {'/identities/@version': '1.34.0', '/identities/identity[1]/username': '201', \
'/identities/identity[2]': ''}
    """
    root = parse_xml(configuration)
    tree = root.getroottree()
    out: dict[str, str] = {}
    for element in root.iterdescendants():
        if not isinstance(element.tag, str):
            continue
        path = str(tree.getpath(element)).removeprefix(f"/{ROOT}")
        for name, value in attributes_of(element):
            out[f"{path}/@{name}"] = value
        if not len(element):
            out[path] = (element.text or "").strip()
    return out


def provision(
    entry_url: str,
    fetch: Fetch,
    device: DeviceInfo,
    schema: PhoneSchema | None = None,
    *,
    base: bytes | None = None,
    max_depth: int = MAX_DEPTH,
    max_files: int = MAX_FILES,
) -> Outcome:
    """Run the chain from `entry_url` and apply what it gave onto `base` (the phone's
    settings so far, as `apply_settings` takes it); never raises for a peer's fault,
    reports it instead. Without `schema` the files are only fetched, not applied (the
    doctor's check of what the server hands out)."""
    steps: list[Step] = []
    documents: list[bytes] = []

    def visit(url: str, depth: int, ancestors: tuple[str, ...]) -> None:
        if url in ancestors:
            raise _Failed(f"reference loop: {url} lists itself (via {' -> '.join(ancestors)})")
        if depth > max_depth:
            raise _Failed(f"reference files nested deeper than {max_depth} at {url}")
        if len(steps) >= max_files:
            raise _Failed(f"more than {max_files} files; giving up at {url}")
        status, body = fetch(url)
        if status != 200:
            answer = f"HTTP {status}" if status else "no answer (connection failed)"
            steps.append(Step(url, status, len(body), "failed", depth, answer))
            raise _Failed(f"fetching {url} gave {answer}")
        try:
            listed = reference_urls(parse_xml(body))
            alone = apply_settings([body], schema) if listed is None and schema else None
        except InputError as e:
            steps.append(Step(url, status, len(body), "failed", depth, str(e)))
            raise _Failed(f"{url}: {e}") from None
        if listed is None:
            stripped = alone.stripped if alone else ()
            note = f"{len(stripped)} stripped" if stripped else ""
            steps.append(Step(url, status, len(body), "settings", depth, note, stripped))
            documents.append(body)
            return
        steps.append(Step(url, status, len(body), "reference", depth, f"{len(listed)} URLs"))
        for ref in listed:
            try:
                target = resolve_reference(url, replace_markers(ref, device))
            except InputError as e:
                raise _Failed(f"{url}: {e}") from None
            visit(target, depth + 1, (*ancestors, url))

    try:
        visit(replace_markers(entry_url, device), 0, ())
    except _Failed as e:
        return Outcome(tuple(steps), error=str(e))
    if schema is None:
        return Outcome(tuple(steps))
    applied = apply_settings(documents, schema, base)  # each file was applied alone above
    return Outcome(tuple(steps), applied.configuration, applied.warnings)
