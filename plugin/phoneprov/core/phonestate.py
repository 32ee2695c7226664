"""A phone's state in words, for the admin: from its chain, its fetch log and its lease.

Pure: the fetches come in as values (newest first, as the fetch log gives them), the time of
the last change of the phone's files as a number. States:

- `never fetched`: the fetch log has no request for this MAC;
- `refused`: its latest request was refused (any status but 200/304), with the reason;
- `no lease`: it fetched before, but holds no live DHCP lease now;
- `pending`: a file of its current chain was not fetched since its files last changed;
- `provisioned`: every file of its current chain (the entry too) was fetched since then.

The fetch log holds the status of a refused request, not the server's reason (the endpoint
answers every refusal alike and logs the reason to its own log only): `refusal_reason`
derives it from the status and what is known now, the phone's lease and the security mode.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError
from .layout import Layout, parse_request

PROVISIONED = "provisioned"
PENDING = "pending"
NEVER_FETCHED = "never fetched"
REFUSED = "refused"
NO_LEASE = "no lease"
STATES = (PROVISIONED, PENDING, NEVER_FETCHED, REFUSED, NO_LEASE)
SERVED = (200, 304)
ENTRY = ""  # the entry document (the reference file) among a chain's names
TOKEN_PREFIX = re.compile(r"^/t/[^/]*/")


@dataclass(frozen=True)
class FetchSeen:
    """One fetch-log row of the phone: when, the logged path, the HTTP status, who asked."""

    time: float
    path: str
    status: int
    ip: str = ""


@dataclass(frozen=True)
class PhoneState:
    state: str
    detail: str | None = None


def fetched_name(layout: Layout, path: str) -> str | None:
    """Which file of a chain a logged path asked for: ENTRY, a file name, or None when the path
    is no provisioning URL. Tokens in logged paths are cut short: only their place matters.

    >>> fetched_name(Layout(), "/prov.py?mac=00095200000E")
    ''
    >>> fetched_name(Layout(), "/t/abcd.../prov/D200/00095200000E/common.xml")
    'common.xml'
    """
    plain = TOKEN_PREFIX.sub("/", path, count=1)
    route, _, mac = plain.partition("?mac=")
    try:
        request = parse_request(layout, route, mac or None)
    except InputError:
        return None
    return ENTRY if request.name is None else request.name


def refusal_reason(
    status: int,
    path: str,
    ip: str,
    *,
    known: bool,
    mode: str,
    lease_ip: str | None,
) -> str:
    """Why a request was refused, in words: from its status and what is known now (`known`:
    the MAC is in the inventory; `lease_ip`: the phone's live lease, if any)."""
    if status == 404:
        return "asked for a file it does not have, or no provisioning URL"
    if status == 429:
        return f"too many refused requests from {ip} (rate limit)"
    if status == 500:
        return "a template failed to render (the server's log names it)"
    if status == 503:
        return "the server could not read the state database"
    if status != 403:
        return f"HTTP {status}"
    if not known:
        return "unknown MAC: not in the inventory"
    if path.startswith("/t/"):
        return "wrong token in the URL"
    if mode == "token":
        return "token required: the URL carries no token"
    if lease_ip is None:
        return f"{ip} holds no lease of this phone (it has no live lease)"
    if lease_ip != ip:
        return f"{ip} is not the phone's lease address ({lease_ip})"
    return f"{ip} held no live lease of this phone when it asked (recorded later, or expired)"


def phone_state(
    chain: Sequence[str],
    fetches: Sequence[FetchSeen],
    names: Sequence[str | None],
    *,
    changed_at: float | None,
    has_lease: bool,
    refusal: str | None = None,
) -> PhoneState:
    """The state of one phone. `chain`: the names of its files, ENTRY included; `fetches`:
    its fetch-log rows, newest first, with `names[i]` the file `fetches[i]` asked for (see
    `fetched_name`); `changed_at`: when its files last changed (None: not known);
    `refusal`: the reason of its latest request when that was refused."""
    if not fetches:
        return PhoneState(NEVER_FETCHED, None if has_lease else "no DHCP lease yet")
    latest = fetches[0]
    if latest.status not in SERVED:
        return PhoneState(REFUSED, refusal or f"HTTP {latest.status}")
    if not has_lease:
        return PhoneState(NO_LEASE, "fetched before; holds no live DHCP lease now")
    since = changed_at if changed_at is not None else float("-inf")
    fetched = {
        name
        for fetch, name in zip(fetches, names, strict=True)
        if fetch.status in SERVED and fetch.time >= since and name is not None
    }
    missing = [name or "the entry" for name in chain if name not in fetched]
    if not missing:
        return PhoneState(PROVISIONED)
    if changed_at is None:
        return PhoneState(PENDING, "not fetched yet: " + ", ".join(missing))
    return PhoneState(PENDING, "changed since it last fetched: " + ", ".join(missing))
