"""RFC 3261 §17 timers for UDP, as pure state: time is always the `now` argument.

A non-INVITE client transaction (our NOTIFYs) retransmits after T1, doubling up to T2
(timer E); after a provisional response every T2; it gives up at timer F (64*T1 by default).
A server transaction (the phone's SUBSCRIBE) answers a retransmitted request with the same
response until timer J (64*T1), so a repeated SUBSCRIBE gets no second NOTIFY.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from .errors import ConfigError

T1 = 0.5  # RTT estimate, seconds
T2 = 4.0  # longest retransmit interval for non-INVITE requests
V = TypeVar("V")


@dataclass(frozen=True)
class Timers:
    t1: float = T1
    t2: float = T2
    timer_f: float | None = None  # None: 64 * t1

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise ConfigError(f"SIP timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.timer_f is not None and self.timer_f <= 0:
            raise ConfigError(f"SIP timer F must be positive, got {self.timer_f}")

    @property
    def f(self) -> float:
        return 64 * self.t1 if self.timer_f is None else self.timer_f


def timers_from(t1: float, timer_f: float | None = None) -> Timers:
    """Timers for a configured T1; T2 stays 4 s unless T1 is larger."""
    return Timers(t1, max(T2, t1), timer_f)


class TxState(enum.Enum):
    TRYING = "trying"  # sent, no answer yet
    PROCEEDING = "proceeding"  # got 1xx
    COMPLETED = "completed"  # got a final response
    TIMED_OUT = "timed out"  # timer F fired


@dataclass(frozen=True)
class ClientTransaction:
    timers: Timers
    started_at: float
    next_send_at: float
    interval: float
    state: TxState = TxState.TRYING
    sends: int = 1
    status: int | None = None  # the final status, once COMPLETED

    @property
    def done(self) -> bool:
        return self.state in (TxState.COMPLETED, TxState.TIMED_OUT)

    @property
    def deadline(self) -> float:
        return self.started_at + self.timers.f

    def wake_at(self) -> float | None:
        """When `on_timer` must be called next; None once done."""
        return None if self.done else min(self.next_send_at, self.deadline)


def start_transaction(timers: Timers, now: float) -> ClientTransaction:
    """A transaction whose request was sent (the first time) at `now`."""
    return ClientTransaction(timers, now, now + timers.t1, timers.t1)


def on_timer(tx: ClientTransaction, now: float) -> tuple[ClientTransaction, bool]:
    """Advance to `now`; the flag says: retransmit the request now."""
    if tx.done:
        return tx, False
    if now >= tx.deadline:
        return replace(tx, state=TxState.TIMED_OUT), False
    if now < tx.next_send_at:
        return tx, False
    t2 = tx.timers.t2
    interval = min(2 * tx.interval, t2) if tx.state is TxState.TRYING else t2
    # from when this send was due, not from a late wake-up: lateness must not add up over
    # the sends (a loaded box would lose the last one to timer F); after a stall longer
    # than an interval, from now (no burst of sends that all fell due)
    due = tx.next_send_at + interval
    next_send_at = due if due > now else now + interval
    return replace(tx, interval=interval, next_send_at=next_send_at, sends=tx.sends + 1), True


def on_response(tx: ClientTransaction, status: int, now: float) -> ClientTransaction:
    """A response arrived: 1xx slows retransmission to T2, 2xx-6xx completes."""
    if tx.done or not 100 <= status <= 699:
        return tx
    if status < 200:
        if tx.state is TxState.PROCEEDING:
            return tx
        t2 = tx.timers.t2
        return replace(tx, state=TxState.PROCEEDING, interval=t2, next_send_at=now + t2)
    return replace(tx, state=TxState.COMPLETED, status=status)


def send_times(timers: Timers) -> list[float]:
    """Offsets of every send of an unanswered request, from the first one (for docs, tests).

    >>> send_times(Timers(0.5))
    [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    """
    tx, times = start_transaction(timers, 0.0), [0.0]
    while (wake := tx.wake_at()) is not None:
        tx, resend = on_timer(tx, wake)
        if resend:
            times.append(wake)
    return times


class ServerMemory(Generic[V]):
    """Server side: a value per request, kept for timer J (64*T1), at most `limit` of them.

    Pure apart from its own memory; `now` comes in.
    """

    def __init__(self, timers: Timers, limit: int = 4096) -> None:
        self.keep_for = 64 * timers.t1
        self.limit = limit
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable, now: float) -> V | None:
        self._expire(now)
        entry = self._entries.get(key)
        return entry[1] if entry else None

    def put(self, key: Hashable, value: V, now: float) -> None:
        self._expire(now)
        if len(self._entries) >= self.limit:  # a flood must not grow memory without bound
            self._entries.pop(next(iter(self._entries)))
        self._entries.pop(key, None)  # re-insert at the end: entries stay in expiry order
        self._entries[key] = (now + self.keep_for, value)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, (until, _) = next(iter(self._entries.items()))
            if until > now:
                return
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class ResponseCache(ServerMemory[bytes]):
    """The response given to each request (keys: `sipdialog.transaction_key`), so a
    retransmitted request gets it again until timer J."""
