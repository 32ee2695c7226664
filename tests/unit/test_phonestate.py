"""core.phonestate: a phone's state in words from its chain, fetch log and lease."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneprov.core.layout import Layout
from phoneprov.core.phonestate import (
    ENTRY,
    NEVER_FETCHED,
    NO_LEASE,
    PENDING,
    PROVISIONED,
    REFUSED,
    STATES,
    FetchSeen,
    fetched_name,
    phone_state,
    refusal_reason,
)

MAC = "00095200000E"
CHAIN = (ENTRY, "common.xml", "device.xml")
ENTRY_PATH = f"/prov.py?mac={MAC}"


def fetch(time: float, name: str, status: int = 200) -> FetchSeen:
    path = ENTRY_PATH if name == ENTRY else f"/prov/D200/{MAC}/{name}"
    return FetchSeen(time, path, status, "10.0.0.5")


def state_of(
    fetches: list[FetchSeen], changed_at: float | None = None, has_lease: bool = True
) -> tuple[str, str | None]:
    names = [fetched_name(Layout(), f.path) for f in fetches]
    result = phone_state(
        CHAIN, fetches, names, changed_at=changed_at, has_lease=has_lease, refusal="why"
    )
    return result.state, result.detail


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (ENTRY_PATH, ENTRY),
        (f"/prov/D200/{MAC}.xml", ENTRY),
        (f"/prov/D200/{MAC}/common.xml", "common.xml"),
        (f"/t/abcd.../prov/D200/{MAC}/device.xml", "device.xml"),
        (f"/t/abcd.../prov.py?mac={MAC}", ENTRY),
        ("/favicon.ico", None),
        ("/prov.py", None),
    ],
)
def test_fetched_name(path: str, name: str | None) -> None:
    assert fetched_name(Layout(), path) == name


def test_never_fetched_says_whether_it_has_a_lease() -> None:
    assert state_of([], has_lease=True) == (NEVER_FETCHED, None)
    assert state_of([], has_lease=False) == (NEVER_FETCHED, "no DHCP lease yet")


def test_provisioned_when_every_file_of_the_chain_was_served() -> None:
    fetches = [fetch(3, "device.xml"), fetch(2, "common.xml", 304), fetch(1, ENTRY)]
    assert state_of(fetches) == (PROVISIONED, None)


def test_pending_names_the_files_not_fetched() -> None:
    fetches = [fetch(2, "common.xml"), fetch(1, ENTRY)]
    assert state_of(fetches) == (PENDING, "not fetched yet: device.xml")


def test_pending_after_a_change() -> None:
    fetches = [fetch(3, "device.xml"), fetch(2, "common.xml"), fetch(1, ENTRY)]
    assert state_of(fetches, changed_at=2.5) == (
        PENDING,
        "changed since it last fetched: the entry, common.xml",
    )
    later = [fetch(6, "device.xml"), fetch(5, "common.xml"), fetch(4, ENTRY), *fetches]
    assert state_of(later, changed_at=2.5) == (PROVISIONED, None)


def test_refused_when_the_latest_request_was_refused() -> None:
    fetches = [fetch(4, ENTRY, 403), fetch(3, "device.xml"), fetch(2, "common.xml"), fetch(1, "")]
    assert state_of(fetches) == (REFUSED, "why")


def test_no_lease_when_it_fetched_but_holds_none() -> None:
    fetches = [fetch(3, "device.xml"), fetch(2, "common.xml"), fetch(1, ENTRY)]
    assert state_of(fetches, has_lease=False)[0] == NO_LEASE


def test_a_failed_fetch_of_a_file_does_not_count() -> None:
    fetches = [fetch(5, ENTRY), fetch(3, "device.xml", 500), fetch(2, "common.xml"), fetch(1, "")]
    assert state_of(fetches) == (PENDING, "not fetched yet: device.xml")


@given(
    st.lists(
        st.tuples(
            st.floats(0, 100), st.sampled_from([*CHAIN, "x.xml"]), st.sampled_from([200, 304, 403])
        ),
        max_size=12,
    ),
    st.none() | st.floats(0, 100),
    st.booleans(),
)
def test_any_history_gives_one_of_the_states(
    rows: list[tuple[float, str, int]], changed_at: float | None, has_lease: bool
) -> None:
    fetches = sorted((fetch(t, n, s) for t, n, s in rows), key=lambda f: -f.time)
    state, _ = state_of(fetches, changed_at, has_lease)
    assert state in STATES
    served_since = {
        fetched_name(Layout(), f.path)
        for f in fetches
        if f.status != 403 and (changed_at is None or f.time >= changed_at)
    }
    if state == PROVISIONED:
        assert set(CHAIN) <= served_since and has_lease
    if fetches and fetches[0].status == 403:
        assert state == REFUSED


@pytest.mark.parametrize(
    ("status", "path", "known", "mode", "lease_ip", "words"),
    [
        (404, ENTRY_PATH, True, "lease", "10.0.0.5", "does not have"),
        (429, ENTRY_PATH, True, "lease", "10.0.0.5", "rate limit"),
        (403, ENTRY_PATH, False, "lease", None, "unknown MAC"),
        (403, "/t/abcd.../prov.py?mac=00095200000E", True, "token", None, "wrong token"),
        (403, ENTRY_PATH, True, "token", None, "token required"),
        (403, ENTRY_PATH, True, "lease", None, "no live lease"),
        (403, ENTRY_PATH, True, "lease", "10.0.0.9", "not the phone's lease address (10.0.0.9)"),
        (403, ENTRY_PATH, True, "lease", "10.0.0.5", "no live lease of this phone when it asked"),
        (500, ENTRY_PATH, True, "lease", "10.0.0.5", "template failed"),
        (503, ENTRY_PATH, True, "lease", "10.0.0.5", "state database"),
        (418, ENTRY_PATH, True, "lease", "10.0.0.5", "HTTP 418"),
    ],
)
def test_refusal_reason(
    status: int, path: str, known: bool, mode: str, lease_ip: str | None, words: str
) -> None:
    reason = refusal_reason(status, path, "10.0.0.5", known=known, mode=mode, lease_ip=lease_ip)
    assert words in reason
