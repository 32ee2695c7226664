"""State adapter: SQLite database of leases, discovered phones, enrolled phones, fetches and
the digests of each device's files at the last `apply --resync`.

Written by the dnsmasq hook (one process per event), the HTTP server and the SIP services at
the same time: WAL journal, a busy timeout, and one short transaction per write, so no update
is lost. Time comes in as a parameter (`now`, seconds since the epoch).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sql import (
    BUSY_TIMEOUT_S,
    LEASE_COLUMNS,
    RECORD_DISCOVERED,
    RECORD_LEASE,
    RELEASE_LEASE,
    SCHEMA,
)

# A lease is live while active (no `del`), unexpired (`expires` 0 or NULL: no expiry) and the
# latest one recorded on its address: dnsmasq gave the address to nobody else since.
ROWS_PER_INSERT = 128  # 768 parameters: under SQLite's oldest limit (999)
_LIVE = "active=1 AND (expires IS NULL OR expires<=0 OR expires>?2)"
LIVE_LEASE_OF_MAC = f"""SELECT * FROM leases AS l WHERE mac=?1 AND {_LIVE} AND NOT EXISTS
    (SELECT 1 FROM leases AS o WHERE o.ip=l.ip AND o.mac!=l.mac AND o.last_seen>l.last_seen)"""
LIVE_LEASE_ON_IP = f"""SELECT * FROM
    (SELECT * FROM leases WHERE ip=?1 ORDER BY last_seen DESC, rowid DESC LIMIT 1) WHERE {_LIVE}"""


@dataclass(frozen=True)
class Lease:
    mac: str  # normalised, 12 upper-case hex digits
    ip: str
    hostname: str | None = None
    interface: str | None = None
    vendor_class: str | None = None
    requested_options: str | None = None
    tags: str | None = None
    expires: int | None = None
    first_seen: float = 0.0
    last_seen: float = 0.0
    active: bool = True


@dataclass(frozen=True)
class Discovered:
    mac: str
    ip: str | None
    vendor_class: str | None
    reason: str
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class Fetch:
    time: float
    mac: str | None
    ip: str
    path: str
    status: int
    bytes: int


class State:
    """One connection per instance; open one per process/thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    @classmethod
    def read_only(cls, path: str | Path) -> State:
        """Opened to read, writing nothing at all: no schema, no journal mode, no lock or
        `-wal`/`-shm` file created. While a writer has the database open its WAL exists and
        is read with it (`mode=ro`); without one the main file is all there is, read as
        `immutable` (`mode=ro` would create the WAL files)."""
        self = cls.__new__(cls)
        self.path = Path(path)
        mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
        self.db = sqlite3.connect(
            f"{self.path.absolute().as_uri()}?{mode}",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
        self.db.row_factory = sqlite3.Row
        return self

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, params: tuple[Any, ...] | dict[str, Any]) -> None:
        with self.db:  # BEGIN ... COMMIT, retried by the busy timeout
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(sql, params)

    # leases -------------------------------------------------------------------
    def record_lease(self, lease: Lease, now: float) -> None:
        """Insert or update a lease seen by dnsmasq (`add`/`old`); keeps first_seen."""
        values = (*(getattr(lease, c) for c in LEASE_COLUMNS), now, now)
        self._write(RECORD_LEASE, values)

    def release_lease(self, mac: str, ip: str, now: float) -> None:
        """dnsmasq said `del`: the lease is gone (kept as history, no longer active)."""
        self._write(RELEASE_LEASE, (now, mac, ip))

    def lease_for(self, mac: str, now: float | None = None) -> Lease | None:
        """The live lease of a MAC (normalised), or None: active, not expired at `now`
        (default: the clock), and no other MAC's lease seen later on its address."""
        row = self.db.execute(LIVE_LEASE_OF_MAC, (mac, _now(now))).fetchone()
        return _lease(row) if row else None

    def lease_by_ip(self, ip: str, now: float | None = None) -> Lease | None:
        """The live lease on an address, or None: the latest lease seen there, if it is
        active and not expired at `now` (an older one never revives)."""
        row = self.db.execute(LIVE_LEASE_ON_IP, (ip, _now(now))).fetchone()
        return _lease(row) if row else None

    def ip_last_seen(self, ip: str) -> float | None:
        """When the latest event about an address was recorded (any lease, live or not)."""
        row = self.db.execute("SELECT max(last_seen) FROM leases WHERE ip=?", (ip,)).fetchone()
        return None if row[0] is None else float(row[0])

    def leases(self, include_inactive: bool = False) -> list[Lease]:
        sql = "SELECT * FROM leases" + ("" if include_inactive else " WHERE active=1")
        return [_lease(r) for r in self.db.execute(sql + " ORDER BY mac")]

    # discovered and enrolled phones ---------------------------------------------
    def record_discovered(self, d: Discovered) -> None:
        self._write(
            RECORD_DISCOVERED, (d.mac, d.ip, d.vendor_class, d.reason, d.first_seen, d.last_seen)
        )

    def discovered(self) -> list[Discovered]:
        rows = self.db.execute("SELECT * FROM discovered ORDER BY last_seen DESC")
        return [Discovered(**dict(r)) for r in rows]

    def enrol(self, mac: str, model: str, profile: str, now: float) -> bool:
        """Add an auto-enrolled phone; False when it was enrolled already."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "INSERT OR IGNORE INTO enrolled VALUES (?, ?, ?, ?)", (mac, model, profile, now)
            )
            return cur.rowcount == 1

    def set_enrolled_lines(self, mac: str, lines_json: str) -> None:
        """The SIP lines of an enrolled phone (a JSON list of line tables, as the inventory
        writes them), set by the admin page's enrolment."""
        self._write(
            "INSERT INTO enrolled_lines VALUES (?, ?) ON CONFLICT(mac) DO UPDATE "
            "SET lines=excluded.lines",
            (mac, lines_json),
        )

    def enrolled_lines(self) -> dict[str, str]:
        """MAC -> the JSON list of its lines, for the enrolled phones that have lines."""
        rows = self.db.execute(
            "SELECT l.mac, l.lines FROM enrolled_lines AS l JOIN enrolled AS e ON e.mac=l.mac"
        )
        return {r[0]: r[1] for r in rows}

    def enrolled(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM enrolled ORDER BY enrolled_at")]

    def enrolled_model(self, mac: str) -> str | None:
        """The model of one enrolled phone (one indexed lookup), or None."""
        row = self.db.execute("SELECT type FROM enrolled WHERE mac=?", (mac,)).fetchone()
        return None if row is None else str(row[0])

    # fetch log -------------------------------------------------------------------
    def log_fetch(self, f: Fetch) -> None:
        self._write(
            "INSERT INTO fetches(time, mac, ip, path, status, bytes) VALUES (?,?,?,?,?,?)",
            (f.time, f.mac, f.ip, f.path, f.status, f.bytes),
        )

    def log_fetches(self, rows: list[tuple[float, str | None, str, str, int, int]]) -> None:
        """Many fetches in one transaction, each row in Fetch's field order (time, mac, ip,
        path, status, bytes): the HTTP server's background writer.

        Up to ROWS_PER_INSERT rows to a statement: executemany lets go of the GIL around every
        row's step and takes it back, one hand-off with a request thread per logged request
        (under wrk -c64 that was 10-15 us of the request thread's CPU per request). Statements
        have power-of-two sizes (the rest of a batch: 64 + 16 + ... rows), so the connection's
        statement cache holds 8 of them, not one per batch size (that grew it by ~4 MB)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            start = 0
            while start < len(rows):
                size = min(ROWS_PER_INSERT, 1 << ((len(rows) - start).bit_length() - 1))
                chunk = rows[start : start + size]
                self.db.execute(_insert_fetches(size), [field for row in chunk for field in row])
                start += size

    def prune(self, keep_days: int, keep_rows: int, now: float) -> int:
        """Retention for the two tables that grow with traffic: fetches and discovered phones
        older than `keep_days` go, and each keeps at most its `keep_rows` newest rows.
        Returns the number of rows deleted."""
        cutoff = now - keep_days * 86400.0
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            deleted = self.db.execute("DELETE FROM fetches WHERE time < ?", (cutoff,)).rowcount
            deleted += self.db.execute(
                "DELETE FROM fetches WHERE id <= "
                "(SELECT id FROM fetches ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (keep_rows,),
            ).rowcount
            deleted += self.db.execute(
                "DELETE FROM discovered WHERE last_seen < ?", (cutoff,)
            ).rowcount
            deleted += self.db.execute(
                "DELETE FROM discovered WHERE mac IN (SELECT mac FROM discovered "
                "ORDER BY last_seen DESC LIMIT -1 OFFSET ?)",
                (keep_rows,),
            ).rowcount
        return deleted

    def fetches(self, mac: str | None = None, limit: int = 100) -> list[Fetch]:
        where, params = ("WHERE mac=?", (mac,)) if mac else ("", ())
        rows = self.db.execute(
            f"SELECT time, mac, ip, path, status, bytes FROM fetches {where} "
            "ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [Fetch(**dict(r)) for r in rows]

    # what each device was given at the last `apply --resync` -----------------------
    def rendered(self) -> dict[str, str]:
        """MAC → digest of its files, as last recorded."""
        return {r["mac"]: r["digest"] for r in self.db.execute("SELECT mac, digest FROM rendered")}

    def rendered_at(self) -> dict[str, float]:
        """MAC → when its digest last changed (at an `apply --resync`)."""
        rows = self.db.execute("SELECT mac, at FROM rendered")
        return {r["mac"]: float(r["at"]) for r in rows}

    def rendered_files(self) -> dict[str, dict[str, str]] | None:
        """MAC → {part name: digest} as last recorded; None when this database (an older
        one, opened read-only) has no such table."""
        try:
            rows = self.db.execute("SELECT mac, files FROM rendered_files").fetchall()
        except sqlite3.OperationalError:
            return None
        return {r["mac"]: json.loads(r["files"]) for r in rows}

    def record_rendered(
        self,
        digests: dict[str, str],
        now: float,
        parts: dict[str, dict[str, str]] | None = None,
    ) -> None:
        """Make the table say `digests` (devices not in it are forgotten); `at` changes only
        with a device's digest. `parts`: each device's parts' digests, kept likewise (None:
        none are known, and none are kept)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM rendered_files")
            self.db.executemany(
                "INSERT INTO rendered_files VALUES (?, ?)",
                [(mac, json.dumps(p, separators=(",", ":"))) for mac, p in (parts or {}).items()],
            )
            known = [r[0] for r in self.db.execute("SELECT mac FROM rendered")]
            self.db.executemany(
                "DELETE FROM rendered WHERE mac=?", [(m,) for m in known if m not in digests]
            )
            self.db.executemany(
                """INSERT INTO rendered VALUES (?, ?, ?) ON CONFLICT(mac) DO UPDATE SET
                     digest=excluded.digest, at=excluded.at WHERE digest != excluded.digest""",
                [(mac, digest, now) for mac, digest in digests.items()],
            )


def open_state(path: Path) -> State:
    """The state database at `path`; a ConfigError naming it when it cannot be used."""
    from ..core.errors import ConfigError

    try:
        return State(path)
    except sqlite3.Error as e:
        raise ConfigError(f"cannot open the state database: {e}", str(path)) from None


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _lease(row: sqlite3.Row) -> Lease:
    values = dict(row)
    values["active"] = bool(values["active"])
    return Lease(**values)


@functools.cache
def _insert_fetches(rows: int) -> str:
    return "INSERT INTO fetches(time, mac, ip, path, status, bytes) VALUES " + ",".join(
        ["(?,?,?,?,?,?)"] * rows
    )
