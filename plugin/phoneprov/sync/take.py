"""One `phoneprov sync`: which revision should be live, and taking it if it passes the check.

Applying the live revision (dnsmasq's files, check-sync to the changed phones) is the
caller's part, under the same lock, when `Taken.apply` says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import RevisionRefused, SyncError
from .revisions import Live, Revisions

LATEST = "latest"  # `sync --to latest`: follow the branch again


@dataclass(frozen=True)
class Taken:
    message: str  # one line (the check's summary follows a switch)
    apply: bool  # the live revision still needs `apply`


def take(
    revs: Revisions, to: str | None, now: float, by: str, check: Callable[[Path], str]
) -> Taken:
    """Fetch, pick the revision (`to`, else the branch head), and switch to it if it passes
    `check`. A refused revision raises SyncError with the reason (recorded when the revision
    itself is at fault, not when this appliance could not look); nothing is switched."""
    status = revs.status()
    live = status.live
    if to is None and status.pinned and live is not None:
        return Taken(
            f"pinned at {live.sha[:12]} by `sync --to`; `phoneprov sync --to {LATEST}` follows "
            f"{revs.sync.branch} again",
            not live.applied,
        )
    revs.fetch()
    sha = revs.resolve(None if to in (None, LATEST) else to)
    pin = to not in (None, LATEST)
    if live is not None and live.sha == sha:
        if status.pinned != pin:
            revs.pin(pin)
        pinned = " (pinned)" if pin else ""
        return Taken(f"up to date: {sha[:12]} is live{pinned}", not live.applied)
    refused = status.refused
    if to is None and refused is not None and refused.sha == sha:
        message = (
            f"nothing new: {sha[:12]} was refused ({_first_line(refused.reason)}); "
            f"{_live_text(live)} stays live"
        )
        if live is None:  # nothing is served: an error until a revision passes
            raise SyncError(message)
        return Taken(message, not live.applied)
    try:
        summary = _prepared(revs, sha, check)
    except RevisionRefused as e:  # recorded: the next sync does not try it again
        revs.refuse(sha, str(e), now)
        raise SyncError(f"refused {sha[:12]}: {e}\n{_live_text(live)} stays live") from None
    except SyncError as e:  # this appliance could not look: the next sync tries again
        raise SyncError(f"cannot take {sha[:12]}: {e}\n{_live_text(live)} stays live") from None
    previous = f" (was {live.sha[:12]})" if live else ""
    revs.switch(sha, now, by, pin)
    return Taken(f"switched to {sha[:12]}{previous}\n{summary}", True)


def preview(revs: Revisions, to: str | None, check: Callable[[Path], str]) -> tuple[str, Path]:
    """The revision `sync` (or `sync --to`) would take now, fetched and checked but not taken
    (`sync --plan`): its SHA and site config. Pinned, a plain `sync` keeps the live one. A
    revision sync would refuse raises SyncError with the reason; nothing is recorded.
    `check` may be light (`sync --plan` checks while it plans)."""
    live = revs.status().live
    if to is None and revs.status().pinned and live is not None:
        sha = live.sha
    else:
        revs.fetch()
        sha = revs.resolve(None if to in (None, LATEST) else to)
        try:
            _prepared(revs, sha, check)
        except RevisionRefused as e:
            raise SyncError(f"{sha[:12]} would be refused: {e}") from None
        except SyncError as e:
            raise SyncError(f"cannot check {sha[:12]}: {e}") from None
    return sha, revs.revs / sha / revs.sync.path / "phoneprov.toml"


def as_in_repo(revs: Revisions, sha: str, text: str) -> str:
    """`text` naming files as the repository does (`site-b/inventory.toml:3`)."""
    return text.replace(f"{revs.revs / sha}/", "")


def _prepared(revs: Revisions, sha: str, check: Callable[[Path], str]) -> str:
    """`revs.prepare`: its summary, its errors (same class) naming files as in the repository."""
    try:
        return as_in_repo(revs, sha, revs.prepare(sha, check))
    except SyncError as e:
        raise type(e)(as_in_repo(revs, sha, str(e))) from None


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _live_text(live: Live | None) -> str:
    return live.sha[:12] if live else "no revision"
