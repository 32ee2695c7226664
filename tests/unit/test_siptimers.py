"""Retransmission timers, driven by a fake clock (the `now` argument)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.errors import ConfigError
from phoneprov.core.siptimers import (
    ResponseCache,
    Timers,
    TxState,
    on_response,
    on_timer,
    send_times,
    start_transaction,
    timers_from,
)


def test_t1_doubles_up_to_t2_and_gives_up_at_timer_f() -> None:
    assert send_times(Timers(0.05)) == pytest.approx(
        [0, 0.05, 0.15, 0.35, 0.75, 1.55, 3.15]  # F = 64*T1 = 3.2 s
    )
    assert send_times(Timers(1.0, 2.0, 9.0)) == [0, 1, 3, 5, 7]


def test_timeout_is_reported_at_timer_f() -> None:
    tx = start_transaction(Timers(0.5, 4.0, 3.0), 100.0)
    tx, resend = on_timer(tx, 102.999)
    assert not tx.done and resend
    tx, resend = on_timer(tx, 103.0)
    assert tx.state is TxState.TIMED_OUT and not resend and tx.wake_at() is None


def test_nothing_happens_before_the_timer() -> None:
    tx = start_transaction(Timers(), 0.0)
    assert on_timer(tx, 0.49) == (tx, False)
    assert tx.wake_at() == 0.5


def test_final_response_completes() -> None:
    tx = on_response(start_transaction(Timers(), 0.0), 200, 0.1)
    assert (tx.state, tx.status, tx.done, tx.wake_at()) == (TxState.COMPLETED, 200, True, None)
    assert on_response(tx, 486, 0.2) == tx  # a later response changes nothing
    assert on_timer(tx, 99.0) == (tx, False)


def test_refusal_is_a_final_status() -> None:
    assert on_response(start_transaction(Timers(), 0.0), 481, 0.1).status == 481


def test_provisional_response_slows_retransmission_to_t2() -> None:
    tx = on_response(start_transaction(Timers(0.5, 4.0), 0.0), 100, 0.2)
    assert tx.state is TxState.PROCEEDING and tx.wake_at() == pytest.approx(4.2)
    tx, resend = on_timer(tx, 4.2)
    assert resend and tx.next_send_at == pytest.approx(8.2)
    assert on_response(tx, 180, 5.0) == tx
    assert on_response(tx, 999, 5.0) == tx


@pytest.mark.parametrize(("t1", "t2", "f"), [(0, 4, None), (-1, 4, None), (5, 4, None), (1, 4, 0)])
def test_bad_timers_are_a_config_error(t1: float, t2: float, f: float | None) -> None:
    with pytest.raises(ConfigError):
        Timers(t1, t2, f)


def test_timers_from_config() -> None:
    assert timers_from(0.05, 3.2) == Timers(0.05, 4.0, 3.2)
    assert timers_from(8.0).t2 == 8.0
    assert timers_from(0.5).f == 32.0


@given(
    st.floats(0.001, 2.0),
    st.floats(0.01, 40.0),
    st.lists(st.floats(0, 50), max_size=30),
)
def test_polling_at_any_times_never_sends_after_timer_f(
    t1: float, timer_f: float, polls: list[float]
) -> None:
    timers = timers_from(t1, timer_f)
    tx = start_transaction(timers, 0.0)
    for now in sorted(polls):
        tx, resend = on_timer(tx, now)
        assert not (resend and now >= timer_f)
        assert tx.interval <= timers.t2
    assert tx.done == (bool(polls) and max(polls) >= timer_f)


def test_response_cache_absorbs_retransmissions_until_timer_j() -> None:
    cache = ResponseCache(Timers(0.5))  # J = 32 s
    cache.put("k", b"200", 10.0)
    assert cache.get("k", 41.9) == b"200"
    assert cache.get("k", 42.0) is None
    assert len(cache) == 0


def test_response_cache_is_bounded() -> None:
    cache = ResponseCache(Timers(), limit=3)
    for n in range(5):
        cache.put(n, b"x", 0.0)
    assert len(cache) == 3 and cache.get(0, 0.0) is None and cache.get(4, 0.0) == b"x"


def sends_when_woken_late(timers: Timers, late: float) -> list[float]:
    """When an unanswered request is sent if every wake-up comes `late` seconds late."""
    tx, times = start_transaction(timers, 0.0), [0.0]
    while (wake := tx.wake_at()) is not None:
        now = min(wake + late, tx.deadline) if wake < tx.deadline else wake
        tx, resend = on_timer(tx, now)
        if resend:
            times.append(now)
    return times


def test_late_wake_ups_do_not_add_up_and_lose_a_send() -> None:
    timers = Timers(0.05)  # timer F = 64 T1 = 3.2 s, the last send due at 63 T1
    on_time = send_times(timers)
    late = sends_when_woken_late(timers, 0.02)  # a loaded box: every wake-up 20 ms late
    assert len(late) == len(on_time) == 7
    assert [round(b - a, 6) for a, b in zip(on_time, late, strict=True)] == [0.0] + [0.02] * 6


def test_after_a_stall_the_sends_that_fell_due_are_not_all_made() -> None:
    tx = start_transaction(Timers(0.05), 0.0)  # due at 0.05, then 0.15, 0.35
    tx, resend = on_timer(tx, 0.5)  # stalled past two more of them
    assert resend and tx.next_send_at == 0.5 + 0.1  # one send now, the next an interval on
    tx, resend = on_timer(tx, 0.51)
    assert not resend
