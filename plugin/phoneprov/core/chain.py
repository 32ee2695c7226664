"""The phone's fetch chain: fetch the entry URL; a reference file leads to more fetches, in order.

Pure: the fetching is passed in (`fetch(url) -> (status, body)`), as time is elsewhere.
Nested reference files are followed depth-first with a depth limit and loop detection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import InputError
from .markers import DeviceInfo, replace_markers
from .phonesettings import flatten_settings, merge_settings
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


@dataclass(frozen=True)
class Outcome:
    steps: tuple[Step, ...]
    settings: dict[str, str] = field(default_factory=dict)
    error: str = ""  # empty when provisioning succeeded

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def files(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.kind == "settings")


class _Failed(Exception):
    pass


def provision(
    entry_url: str,
    fetch: Fetch,
    device: DeviceInfo,
    max_depth: int = MAX_DEPTH,
    max_files: int = MAX_FILES,
) -> Outcome:
    """Run the chain from `entry_url`; never raises for a peer's fault, reports it instead."""
    steps: list[Step] = []
    applied: list[dict[str, str]] = []

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
            root = parse_xml(body)
            listed = reference_urls(root)
        except InputError as e:
            steps.append(Step(url, status, len(body), "failed", depth, str(e)))
            raise _Failed(f"{url}: {e}") from None
        if listed is None:
            steps.append(Step(url, status, len(body), "settings", depth))
            applied.append(flatten_settings(body))
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
        return Outcome(tuple(steps), merge_settings(applied), str(e))
    return Outcome(tuple(steps), merge_settings(applied))
