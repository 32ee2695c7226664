"""Which devices changed since the last `apply --resync`: digests in, MACs out.

A device's digest covers everything the phone gets from us: its dnsmasq lines (the options
it is handed) and every file it downloads (the reference file and each layered file), in
order. The adapter renders and records; this module only hashes and compares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DIGEST_SIZE = 16


def files_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """One hex digest over named byte strings, in order; unambiguous (lengths are hashed).

    >>> files_digest([("a", b"bc")]) == files_digest([("ab", b"c")])
    False
    >>> len(files_digest([]))
    32
    """
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for name, body in files:
        encoded = name.encode("utf-8")
        for part in (encoded, body):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    return h.hexdigest()


@dataclass(frozen=True)
class Changes:
    macs: tuple[str, ...]  # to resync, in the order of `current`
    first_run: bool  # nothing was recorded before: a baseline, nobody is resynced


def changed_devices(
    previous: Mapping[str, str], current: Mapping[str, str], written: Iterable[str] = ()
) -> Changes:
    """Devices of `current` whose digest differs from `previous` (new ones too) or whose
    dnsmasq files were just `written`. Devices gone from `current` are never included.

    >>> changed_devices({"A": "1", "B": "2"}, {"A": "1", "B": "3", "C": "4"}, ["A"]).macs
    ('A', 'B', 'C')
    >>> changed_devices({}, {"A": "1"}, ["A"])
    Changes(macs=(), first_run=True)
    """
    if not previous:
        return Changes((), first_run=True)
    also = set(written)
    macs = tuple(
        mac for mac, digest in current.items() if mac in also or previous.get(mac) != digest
    )
    return Changes(macs, first_run=False)
