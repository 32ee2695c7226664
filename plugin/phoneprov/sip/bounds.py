"""Bounds against floods on the LAN: rate limits per key, and a logger whose lines are
rate-limited per message, so a flood of forged SUBSCRIBEs costs neither decisions nor
database writes nor log lines without limit.

Pure apart from their own memory: time is the `now` argument (the log limiter reads a clock
given to it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

MAX_KEYS = 4096  # keys a limiter remembers; the least recently used is forgotten first
LOG_BURST = 10  # lines of one message template at once ...
LOG_PER_MINUTE = 10  # ... and then a minute


class RateLimiter:
    """A token bucket per key: `burst` at once (default `per_minute`), refilled at
    `per_minute`. A forgotten key starts full again, so `max_keys` bounds memory only."""

    def __init__(
        self, per_minute: float, burst: float | None = None, max_keys: int = MAX_KEYS
    ) -> None:
        self.per_second = per_minute / 60.0
        self.burst = float(per_minute if burst is None else burst)
        self.max_keys = max_keys
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token for `key` at `now`; False when there is none."""
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - at) * self.per_second)
        allowed = tokens >= 1.0
        if len(self._buckets) >= self.max_keys:
            self._buckets.pop(next(iter(self._buckets)))
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)  # most recent last
        return allowed


class LogLimiter:
    """Logs through `logger`, each message template at most `burst` lines at once and then
    `per_minute`; the next line let through says how many like it were left out."""

    def __init__(
        self,
        logger: logging.Logger,
        per_minute: float = LOG_PER_MINUTE,
        burst: float = LOG_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.clock = logger, clock
        self.limiter = RateLimiter(per_minute, burst)
        self.left_out: dict[str, int] = {}

    def log(self, level: int, msg: str, *args: Any) -> None:
        if not self.logger.isEnabledFor(level):
            return
        if not self.limiter.allow(msg, self.clock()):
            self.left_out[msg] = self.left_out.get(msg, 0) + 1
            return
        left_out = self.left_out.pop(msg, 0)
        if left_out:
            self.logger.log(level, msg + " (%d more like this not logged)", *args, left_out)
        else:
            self.logger.log(level, msg, *args)

    def debug(self, msg: str, *args: Any) -> None:
        self.log(logging.DEBUG, msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self.log(logging.INFO, msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self.log(logging.WARNING, msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self.log(logging.ERROR, msg, *args)
