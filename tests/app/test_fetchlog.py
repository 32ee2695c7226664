"""The fetch log's writer: batches on a timer (a request wakes no thread), drains at close,
and is woken early when the queue is full (requests wait, memory stays bounded)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from phoneprov.state.db import State
from phoneprov.web import fetchlog
from phoneprov.web.fetchlog import FetchLog, Row


def rows(n: int, start: float = 1e9) -> list[Row]:
    return [(start + i, "00095200000E", "10.0.0.7", f"/prov/D200/{i}", 200, 100) for i in range(n)]


def test_a_burst_is_one_transaction_and_close_writes_it_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    write = FetchLog._write

    def counted(self: FetchLog, state: State, batch: list[Row]) -> bool:
        batches.append(len(batch))
        return write(self, state, batch)

    monkeypatch.setattr(FetchLog, "_write", counted)
    monkeypatch.setattr(fetchlog, "FLUSH_S", 60.0)  # no tick during the burst (no clock here)
    log = FetchLog(tmp_path / "s.db")
    for row in rows(200):  # requests, each letting other threads run in between
        log.add(row)
        time.sleep(0.0002)
    assert fetchlog.WAKE_AT > 200 and batches == []  # no request woke the writer
    log.close()
    assert batches == [200]  # one transaction, written at close
    with State(tmp_path / "s.db") as state:
        assert len(state.fetches(limit=500)) == 200


def test_a_full_queue_wakes_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetchlog, "FLUSH_S", 60.0)  # it would sleep through this test
    monkeypatch.setattr(fetchlog, "MAX_QUEUED", 10)
    log = FetchLog(tmp_path / "s.db")
    started = time.monotonic()
    for row in rows(100):
        log.add(row)
    assert time.monotonic() - started < 5.0
    log.close()
    with State(tmp_path / "s.db") as state:
        assert len(state.fetches(limit=200)) == 100


def test_a_batch_worth_of_rows_wakes_the_writer_before_its_tick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetchlog, "FLUSH_S", 60.0)
    State(tmp_path / "s.db").close()  # the database exists, as serve's does: no schema race
    log = FetchLog(tmp_path / "s.db")
    for row in rows(fetchlog.WAKE_AT + 1):  # few rows wait in memory (each costs ~300 bytes)
        log.add(row)
    deadline = time.monotonic() + 5.0
    with State(tmp_path / "s.db") as state:
        while not state.fetches(limit=1) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert state.fetches(limit=1), "nothing written before the writer's tick"
    log.close()


def test_rows_are_written_as_they_came_in_few_statements_of_few_shapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    open_state = FetchLog._open

    def traced(self: FetchLog) -> State | None:
        state = open_state(self)
        assert state is not None
        state.db.set_trace_callback(statements.append)
        return state

    monkeypatch.setattr(FetchLog, "_open", traced)
    monkeypatch.setattr(fetchlog, "FLUSH_S", 60.0)
    log = FetchLog(tmp_path / "s.db")
    sent = rows(250, start=1e9 + 0.123456789)
    sent[7] = (1e9 + 7.5, None, "10.0.0.8", "/prov.py?mac=\\x00", 404, 10)  # a refusal
    for row in sent:
        log.add(row)
    log.close()
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 6  # 128 + 64 + 32 + 16 + 8 + 2 rows: not 250 statements
    with State(tmp_path / "s.db") as state:
        written = [tuple(vars(f).values()) for f in reversed(state.fetches(limit=500))]
    assert written == sent


def test_any_batch_size_takes_one_of_8_statements(tmp_path: Path) -> None:
    shapes: set[str] = set()
    with State(tmp_path / "s.db") as state:
        state.db.set_trace_callback(
            lambda sql: shapes.add(sql.split(" VALUES ")[0] + str(sql.count("(")))
        )
        for n in range(1, 300):
            state.log_fetches(rows(n))
        assert len(state.fetches(limit=50000)) == sum(range(1, 300))
    assert len({s for s in shapes if s.startswith("INSERT")}) == 8
