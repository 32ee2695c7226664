"""The hook's lean path into the state database: sqlite3 and the statements in `state_sql`.

`state.State` is the full adapter (dataclasses, schema set-up on every open). The hook runs
once per DHCP event, one at a time, so it writes with plain tuples and sets the schema up
only when the database is new (through `State` itself, so there is one schema).
`tests/unit/test_hook.py` checks that both paths leave identical rows.
"""

from __future__ import annotations

import sqlite3

from .sql import (
    ACTIVE_LEASES,
    BUSY_TIMEOUT_S,
    LEASE_COLUMNS,
    RECORD_DISCOVERED,
    RECORD_LEASE,
    RELEASE_LEASE,
)


class LeaseDb:
    """One connection; every write is one short IMMEDIATE transaction (WAL, busy timeout)."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not _exists(path):
            _create_schema(path)
        self.db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LeaseDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, sql: str, params: tuple[object, ...]) -> None:
        try:
            self._write(sql, params)
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            _create_schema(self.path)  # another process created the file a moment ago
            self._write(sql, params)

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(sql, params)

    def record_lease(self, lease: dict[str, object], now: float) -> None:
        self.write(RECORD_LEASE, (*(lease.get(c) for c in LEASE_COLUMNS), now, now))

    def release_lease(self, mac: str, ip: str, now: float) -> None:
        self.write(RELEASE_LEASE, (now, mac, ip))

    def record_discovered(
        self, mac: str, ip: str, vendor_class: str | None, reason: str, now: float
    ) -> None:
        self.write(RECORD_DISCOVERED, (mac, ip, vendor_class, reason, now, now))

    def active_leases(self) -> list[tuple[int | None, str, str, str | None]]:
        return list(self.db.execute(ACTIVE_LEASES))


def _create_schema(path: str) -> None:
    """The schema comes from State, the one place that defines it (rare: a new database)."""
    from .db import State

    State(path).close()


def _exists(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return len(handle.read(100)) == 100  # an SQLite header, not an empty file
    except OSError:
        return False
