"""The hook's lean path into the state database: `_sqlite3` and the statements in `state.sql`.

`state.State` is the full adapter (dataclasses, schema set-up on every open). The hook runs
once per DHCP event, so it writes plain tuples in one short IMMEDIATE transaction, waits at
most `HOOK_BUSY_TIMEOUT_S` for the write lock, and sets the schema up (`sql.SCHEMA`, in
the same transaction) only when the database is new. Events it could not write wait in the
spool (`state.spool`); every transaction first replays them, in order.
`tests/unit/test_hook.py` checks that this path and `State` leave identical rows.
"""

from __future__ import annotations

import sys

from .sql import (
    ACTIVE_LEASES,
    HOOK_BUSY_TIMEOUT_S,
    LEASE_COLUMNS,
    RECORD_DISCOVERED,
    RECORD_LEASE,
    RELEASE_LEASE,
    REPLAY_DISCOVERED,
    REPLAY_LEASE,
    REPLAY_RELEASE,
    SCHEMA,
)

TYPE_CHECKING = False  # not from typing: importing typing alone costs ~5 ms per event
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from .spool import Spool

    Write = tuple[str, Sequence[object]]


def _load_sqlite3() -> ModuleType:
    """`_sqlite3`, the C half of the `sqlite3` package: its `connect`, `Connection` and
    exceptions are the very objects the package exports. The package only adds adapters for
    datetime values (never bound here) and costs ~2 ms per event (datetime, collections.abc).
    `_sqlite3` itself takes just `functools.lru_cache` (its statement cache), but functools
    imports collections: ~2.5 ms more. So it gets the same cache (`_lru_cache_wrapper` from
    C `_functools`, what functools.lru_cache wraps too) from a stand-in module that is gone
    again right after: whoever imports functools later gets the real one."""
    if "_sqlite3" in sys.modules or "functools" in sys.modules:
        import _sqlite3

        return _sqlite3
    from _functools import _lru_cache_wrapper  # type: ignore[import-not-found]

    def lru_cache(maxsize: int | None = 128, typed: bool = False) -> Callable[..., object]:
        return lambda function: _lru_cache_wrapper(function, maxsize, typed, None)

    stand_in = type(sys)("functools")
    stand_in.lru_cache = lru_cache  # type: ignore[attr-defined]
    sys.modules["functools"] = stand_in
    try:
        import _sqlite3
    except Exception:  # a _sqlite3 that wants more of functools: the real one then
        del sys.modules["functools"]
        import _sqlite3
    else:
        del sys.modules["functools"]
    return _sqlite3


if TYPE_CHECKING:
    import _sqlite3 as sqlite3
else:
    sqlite3 = _load_sqlite3()
Error = sqlite3.Error  # what `record` and the drainer catch: sqlite3.Error itself

# kind -> (statement, the same statement when replayed, number of parameters)
WRITES = {
    "lease": (RECORD_LEASE, REPLAY_LEASE, len(LEASE_COLUMNS) + 2),
    "release": (RELEASE_LEASE, REPLAY_RELEASE, 3),
    "discovered": (RECORD_DISCOVERED, REPLAY_DISCOVERED, 6),
}
SCALARS = (str, int, float, type(None))


class LeaseDb:
    """One connection; `commit` is one IMMEDIATE transaction (WAL, short busy timeout)."""

    def __init__(self, path: str, timeout: float = HOOK_BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.new = not _exists(path)
        self.db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self.skipped = 0  # spooled lines that could not be replayed (cut short, not ours)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> LeaseDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def lease_params(lease: dict[str, object], now: float) -> tuple[object, ...]:
        return (*(lease.get(c) for c in LEASE_COLUMNS), now, now)

    @staticmethod
    def release_params(mac: str, ip: str, now: float) -> tuple[object, ...]:
        return (now, mac, ip)

    @staticmethod
    def discovered_params(
        mac: str, ip: str, vendor_class: str | None, reason: str, now: float
    ) -> tuple[object, ...]:
        return (mac, ip, vendor_class, reason, now, now)

    def commit(self, writes: Sequence[Write], spool: Spool | None = None) -> int:
        """Replay what `spool` holds, then run `writes`, in one transaction; the spool is
        emptied after the commit. Returns the number of events replayed.

        Raises sqlite3.Error when the write lock did not come within the timeout or the
        database cannot be used: then nothing was written and the spool is as it was.
        """
        try:
            return self._commit(writes, spool)
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            self.new = True  # another process created the file a moment ago, not the tables
            return self._commit(writes, spool)

    def _commit(self, writes: Sequence[Write], spool: Spool | None) -> int:
        if self.new:
            self.db.execute("PRAGMA journal_mode=WAL")  # persistent; outside a transaction
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.new:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
            replayed = 0
            if spool is not None:
                with spool.claim() as events:
                    for event in events:
                        replayed += self._replay(event)
                    for kind, params in writes:
                        self.db.execute(WRITES[kind][0], tuple(params))
                    self.db.execute("COMMIT")
            else:
                for kind, params in writes:
                    self.db.execute(WRITES[kind][0], tuple(params))
                self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.new = False
        return replayed

    def _replay(self, event: object) -> int:
        """One spooled event (a list of [kind, params]); 0 and counted when it is not one."""
        if not isinstance(event, list) or not all(_is_write(w) for w in event):
            self.skipped += 1
            return 0
        for kind, params in event:
            self.db.execute(WRITES[kind][1], tuple(params))
        return 1

    def active_leases(self) -> list[tuple[int | None, str, str, str | None]]:
        try:
            return list(self.db.execute(ACTIVE_LEASES))
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # a new database: no leases yet
                return []
            raise


def _is_write(write: object) -> bool:
    if not isinstance(write, list) or len(write) != 2:
        return False
    kind, params = write
    return (
        isinstance(kind, str)
        and kind in WRITES
        and isinstance(params, list)
        and len(params) == WRITES[kind][2]
        and all(isinstance(p, SCALARS) for p in params)
    )


def _exists(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return len(handle.read(100)) == 100  # an SQLite header, not an empty file
    except OSError:
        return False
