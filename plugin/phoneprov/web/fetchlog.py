"""The fetch log: every request is queued here and written to the state database in batches
by one background thread, so a request does not wait for SQLite — unless the writer falls
`MAX_QUEUED` rows behind: then it waits, rather than grow memory or drop rows. The writer
wakes every `FLUSH_S` or once `WAKE_AT` rows are queued, not for each row: one transaction
per wake-up instead of one per handful of rows (it was ~500 small transactions a second
under load, each taking the GIL back from the request threads), and about `WAKE_AT` rows
at most wait in memory between wake-ups (~300 bytes each). `State.log_fetches` puts up to 128
rows in an INSERT statement, so SQLite lets go of the GIL once per statement, not per row. While the
database cannot be opened or written, the writer drops what it takes (so no request ever
waits on a broken database) and says so once (`StateHealth`), opening it afresh for each
batch until it works again. `close()` drains the queue (on clean shutdown); the thread
starts in the process that logs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .health import StateHealth

if TYPE_CHECKING:
    from ..config import Retention
    from ..state.db import State


log = logging.getLogger("phoneprov.web")

BATCH = 500  # rows per transaction at most
WAKE_AT = 256  # queued rows that wake the writer before its next tick (rows cost ~300 bytes)
MAX_QUEUED = 4096  # a full queue makes requests wait for the writer: memory stays bounded
FLUSH_S = 0.05  # the writer wakes this often, or at WAKE_AT rows, or at close
BACKOFF_S = 0.002
PRUNE_EVERY_S = 3600.0


# one fetch, in `state.Fetch` field order: (time, mac, ip, path, status, bytes); a tuple is
# a third of a dataclass instance's size when the queue briefly backs up under load
Row = tuple[float, str | None, str, str, int, int]


class FetchLog:
    def __init__(
        self,
        state_path: Path,
        retention: Retention | None = None,
        health: StateHealth | None = None,
    ) -> None:
        self.state_path = state_path
        self.health = health or StateHealth(state_path)
        self.retention = retention  # pruned at the first write, then every PRUNE_EVERY_S
        self._pruned_at = -PRUNE_EVERY_S
        self._queue: queue.SimpleQueue[Row] = queue.SimpleQueue()
        self._wake = threading.Event()  # set: write now (the queue is full, or closing)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def add(self, row: Row) -> None:
        if self._pid != os.getpid():
            self._start()
        queued = self._queue.qsize()
        if queued >= WAKE_AT and not self._wake.is_set():
            self._wake.set()  # a batch is ready: write it now, not at the next tick
        while queued > MAX_QUEUED:  # the writer is behind: wait for it
            self._wake.set()
            time.sleep(BACKOFF_S)
            queued = self._queue.qsize()
        self._queue.put(row)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queue.SimpleQueue()  # a forked copy's belongs to the parent
            self._wake, self._stopping = threading.Event(), False
            self._thread = threading.Thread(target=self._run, name="fetch-log", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def close(self, timeout: float = 10.0) -> None:
        """Write everything queued so far, then stop the writer."""
        if self._thread is None or self._pid != os.getpid():
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        log.info("fetch log written to %s; stopping", self.state_path)
        self._thread = None
        self._pid = 0

    def _run(self) -> None:
        import signal

        # stop signals are the server's business: let its own threads take them
        signal.pthread_sigmask(
            signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}
        )
        state: State | None = None
        try:
            stopping = False
            while not stopping:
                self._wake.wait(FLUSH_S)
                self._wake.clear()
                stopping = self._stopping
                due = self._queue.qsize()  # rows queued meanwhile wait for the next wake-up
                while due > 0 and (batch := self._take(min(due, BATCH))):
                    due -= len(batch)
                    state = state or self._open()
                    if state is not None and not self._write(state, batch):
                        state.close()
                        state = None  # opened afresh for the next batch
        finally:
            if state is not None:
                state.close()

    def _take(self, count: int) -> list[Row]:
        """Up to `count` queued rows."""
        batch: list[Row] = []
        get = self._queue.get_nowait
        try:
            while len(batch) < count:
                batch.append(get())
        except queue.Empty:
            pass
        return batch

    def _open(self) -> State | None:
        import sqlite3

        from ..state.db import State

        try:
            state = State(self.state_path)
            state.db.execute("PRAGMA cache_size=-256")  # appends only: a small cache will do
        except sqlite3.Error as e:
            self.health.failed("fetch log entries are dropped", e)
            return None
        return state

    def _write(self, state: State, batch: list[Row]) -> bool:
        import sqlite3

        try:
            state.log_fetches(batch)
        except sqlite3.Error as e:
            self.health.failed(f"{len(batch)} fetch log entries dropped", e)
            return False
        self.health.ok()
        now = time.time()
        if self.retention is not None and now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            try:
                deleted = state.prune(self.retention.days, self.retention.rows, now)
            except sqlite3.Error as e:
                log.error("fetch log: retention not applied to %s: %s", self.state_path, e)
            else:
                log.info("retention: %d old fetch/discovered rows deleted", deleted)
        return True
