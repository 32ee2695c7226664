"""The sync status in words and data: for `sync --status`, `doctor` and the admin API."""

from __future__ import annotations

import time
from typing import Any

from ..config import Config, SyncConfig
from ..core.findings import SyncFacts
from .revisions import Live, Revisions, Status


def sync_status(settings: SyncConfig) -> dict[str, Any]:
    """`sync --status --json` and the admin API's /api/v1/sync; `enabled` false: sync off."""
    if not settings.enabled:
        return {"enabled": False}
    return status_dict(settings, Revisions(settings).status())


def status_dict(settings: SyncConfig, status: Status) -> dict[str, Any]:
    """Where from, the live revision, the last refused one, pinned."""
    data = {
        "enabled": True,
        "repo": settings.repo,
        "branch": settings.branch,
        "path": settings.path,
        "signed": settings.allowed_signers is not None,
        **status.as_dict(),
    }
    del data["history"]
    return data


def status_lines(status: Status) -> list[str]:
    """`live: <sha> <subject> ...`, then the last refused revision, if any."""
    live, refused = status.live, status.refused
    lines = []
    if live is None:
        lines.append("live: none (no revision synced yet: run `phoneprov sync`)")
    else:
        pinned = ", pinned by `sync --to`" if status.pinned else ""
        unapplied = "" if live.applied else ", NOT applied yet (the next sync retries)"
        lines.append(f"live: {live_text(live)}{pinned}{unapplied}")
    if refused is not None:
        reason = refused.reason.replace("\n", "\n  ")
        lines.append(f"refused {refused.sha[:12]} at {when(refused.at)}: {reason}")
    return lines


def live_text(live: Live) -> str:
    return (
        f"{live.sha[:12]} {live.subject!r} (committed {when(live.committed)}); "
        f"synced {when(live.synced_at)} by {live.by}"
    )


def sync_facts(config: Config) -> SyncFacts | None:
    """What `doctor` judges; None when sync is off."""
    if not config.sync.enabled:
        return None
    status = Revisions(config.sync).status()
    live, refused = status.live, status.refused
    newer = refused is not None and (live is None or refused.at > live.synced_at)
    return SyncFacts(
        live=live_text(live) if live else "",
        applied=live.applied if live else False,
        pinned=status.pinned,
        refused=f"{refused.sha[:12]}: {refused.reason.splitlines()[0]}"
        if newer and refused
        else "",
    )


def when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
