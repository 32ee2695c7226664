"""Flood bounds: token buckets per key and rate-limited log lines (time comes in)."""

from __future__ import annotations

import logging

import pytest

from phoneprov.sip.bounds import LogLimiter, RateLimiter
from phoneprov.sip.pnp import shown_url


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = RateLimiter(per_minute=6, burst=3)
    assert [limiter.allow("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", 0.0)  # another key: its own bucket
    assert not limiter.allow("a", 9.9)
    assert limiter.allow("a", 10.0)  # one token per 10 s
    assert [limiter.allow("a", 1000.0) for _ in range(4)] == [True, True, True, False]


def test_rate_limiter_remembers_a_bounded_number_of_keys() -> None:
    limiter = RateLimiter(per_minute=1, max_keys=3)
    for key in range(10):
        assert limiter.allow(key, 0.0)
    assert len(limiter._buckets) == 3
    assert not limiter.allow(9, 0.0)  # recent keys are kept


def test_log_limiter_bounds_lines_per_message_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    logs = LogLimiter(
        logging.getLogger("phoneprov.test"), per_minute=2, burst=2, clock=lambda: now[0]
    )
    caplog.set_level(logging.INFO, "phoneprov.test")
    for n in range(100):
        logs.warning("flood %d", n)
        logs.info("other %d", n)
    now[0] = 30.0
    logs.warning("flood %d", 100)
    logs.debug("not enabled: costs no token")
    assert [r.getMessage() for r in caplog.records] == [
        "flood 0", "other 0", "flood 1", "other 1",
        "flood 100 (98 more like this not logged)",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://h:8080/t/abcdef0123456789/prov.py?mac=X", "http://h:8080/t/abcd.../prov.py?mac=X"),
        ("http://h/t/abc/D200/X.xml", "http://h/t/abc.../D200/X.xml"),
        ("http://h/prov.py?mac=X", "http://h/prov.py?mac=X"),
    ],
)
def test_urls_in_logs_show_4_characters_of_a_token(url: str, shown: str) -> None:
    assert shown_url(url) == shown
