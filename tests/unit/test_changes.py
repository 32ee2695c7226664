"""core.changes: the digest of a device's files and which devices changed."""

from __future__ import annotations

import pytest

from phoneprov.core.changes import Changes, changed_devices, files_digest

A, B, C = "00095200000A", "00095200000B", "00095200000C"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ([("a.xml", b"x")], [("a.xml", b"y")]),  # a byte differs
        ([("a.xml", b"x")], [("b.xml", b"x")]),  # a name differs
        ([("a", b"bc")], [("ab", b"c")]),  # the boundary moves
        ([("a", b"1"), ("b", b"2")], [("b", b"2"), ("a", b"1")]),  # order: later files win
        ([("a", b"1")], [("a", b"1"), ("b", b"")]),  # one more (empty) file
    ],
)
def test_digest_tells_apart(one: list[tuple[str, bytes]], other: list[tuple[str, bytes]]) -> None:
    assert files_digest(one) != files_digest(other)


def test_digest_is_stable() -> None:
    files = [("", b"<referencedSettings/>"), ("common.xml", b"<settings/>")]
    assert files_digest(files) == files_digest(list(files))
    assert files_digest(iter(files)) == files_digest(files)


@pytest.mark.parametrize(
    ("previous", "current", "written", "expected"),
    [
        ({A: "1", B: "2"}, {A: "1", B: "2"}, [], ()),  # nothing changed
        ({A: "1", B: "2"}, {A: "1", B: "3"}, [], (B,)),  # B's files changed
        ({A: "1", B: "2"}, {A: "1", B: "2"}, [A], (A,)),  # only A's dnsmasq files rewritten
        ({A: "1"}, {A: "1", C: "9"}, [C], (C,)),  # a new device
        ({A: "1"}, {A: "1", C: "9"}, [], (C,)),  # new, no per-device dnsmasq files (vendor)
        ({A: "1", B: "2"}, {A: "1"}, [], ()),  # removed: never resynced
        ({A: "1", B: "2"}, {B: "5", A: "7"}, [], (B, A)),  # in the current order
    ],
)
def test_changed_devices(
    previous: dict[str, str],
    current: dict[str, str],
    written: list[str],
    expected: tuple[str, ...],
) -> None:
    assert changed_devices(previous, current, written) == Changes(expected, first_run=False)


def test_first_run_records_a_baseline_and_resyncs_nobody() -> None:
    assert changed_devices({}, {A: "1", B: "2"}, [A, B]) == Changes((), first_run=True)
