"""What `phoneprov sync` keeps in `[sync] dir`, and the one way a revision becomes live.

    repo.git/        bare clone of the repository (fetched into)
    revs/<sha>/      each taken revision's whole tree (the last KEEP, for `sync --to`)
    live             symlink to revs/<sha>: the configuration in effect
    status.json      live revision, when and by whom, last refused one, pinned or not
    lock             flock: one sync at a time

A revision is exported, checked as `phoneprov check` checks a site, and only then `live` is
switched: a symlink made under a temporary name and renamed over `live` (rename is atomic, so
a reader sees the old or the new tree, never none), after the tree's filesystem is flushed
(so after a power cut `live` names a complete tree, the old or the new).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import SyncConfig
from ..core.errors import ConfigError, RevisionRefused, SyncError
from ..durable import flush_tree, fsync_dir, write_atomic
from . import git

KEEP = 5  # revisions kept for rollback, the live one included
STATUS = "status.json"
STATUS_MODE = 0o640  # root writes, the service user's group reads (doctor, the admin API)
REVS = "revs"


@dataclass(frozen=True)
class Live:
    sha: str
    committed: int  # commit time
    subject: str
    synced_at: float
    by: str  # "timer" or "manual (<user>)"
    applied: bool = False  # `apply` ran on it (a failed apply is retried by the next sync)


@dataclass(frozen=True)
class Refused:
    sha: str
    reason: str
    at: float


@dataclass(frozen=True)
class Status:
    live: Live | None = None
    refused: Refused | None = None
    pinned: bool = False  # set by `sync --to REV`: plain `sync` leaves the live revision
    history: tuple[str, ...] = field(default=())  # taken revisions, most recent first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Status:
        live, refused = data.get("live"), data.get("refused")
        return cls(
            live=Live(**live) if live else None,
            refused=Refused(**refused) if refused else None,
            pinned=bool(data.get("pinned")),
            history=tuple(data.get("history", ())),
        )


class Revisions:
    """`[sync] dir` of one appliance; use `locked()` around anything that changes it."""

    def __init__(self, sync: SyncConfig) -> None:
        self.sync = sync
        self.dir = sync.dir
        self.git_dir = sync.dir / "repo.git"
        self.revs = sync.dir / REVS

    # status ------------------------------------------------------------------------------

    def status(self) -> Status:
        path = self.dir / STATUS
        try:
            return Status.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return Status()
        except (ValueError, TypeError) as e:
            raise SyncError(
                f"{path}: unreadable sync status ({e}); delete it to start afresh"
            ) from None

    def write_status(self, status: Status) -> None:
        text = json.dumps(status.as_dict(), indent=2) + "\n"
        write_atomic(self.dir / STATUS, text.encode(), STATUS_MODE)

    @contextlib.contextmanager
    def locked(self) -> Iterator[Revisions]:
        """Held for a whole sync; a second sync meanwhile is refused as busy."""
        self.dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        with open(self.dir / "lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SyncError(f"busy: another `phoneprov sync` holds {lock.name}") from None
            yield self

    # getting a revision -------------------------------------------------------------------

    def fetch(self) -> None:
        git.init_bare(self.git_dir)
        git.fetch(self.git_dir, self.sync.repo, self.sync.branch)

    def resolve(self, rev: str | None) -> str:
        """The SHA of `rev`, or of the branch's head when None."""
        return git.resolve(self.git_dir, rev or f"refs/heads/{self.sync.branch}")

    def prepare(self, sha: str, check: Callable[[Path], str]) -> str:
        """Verify (when signers are configured), export and `check` revision `sha`; the check's
        summary. Raises RevisionRefused with the reason it cannot be taken, SyncError when
        this appliance could not look (git failed, the signers file is missing)."""
        if self.sync.allowed_signers is not None:
            git.verify_commit(self.git_dir, sha, self.sync.allowed_signers)
        tree = self.revs / sha
        if not tree.is_dir():
            shutil.rmtree(self.revs / f".new-{sha}", ignore_errors=True)
            git.export(self.git_dir, sha, self.revs / f".new-{sha}")
            os.replace(self.revs / f".new-{sha}", tree)
        _links_stay_inside(tree, sha)
        site = tree / self.sync.path
        if not site.is_dir():
            raise RevisionRefused(
                f"revision {sha[:12]} has no directory {self.sync.path!r} (sync.path)"
            )
        if not (site / "phoneprov.toml").is_file():
            raise RevisionRefused(f"{site}: no phoneprov.toml in the site directory")
        try:
            return check(site / "phoneprov.toml")
        except ConfigError as e:  # the revision's config, inventory or templates
            raise RevisionRefused(str(e)) from None

    def refuse(self, sha: str, reason: str, now: float) -> None:
        """Record why `sha` was refused; its tree goes (unless it is still kept for rollback)."""
        status = self.status()
        if sha not in status.history:
            shutil.rmtree(self.revs / sha, ignore_errors=True)
        self.write_status(replace(status, refused=Refused(sha, reason, now)))

    # taking it ---------------------------------------------------------------------------

    def switch(self, sha: str, now: float, by: str, pinned: bool) -> Status:
        """Make revision `sha` (prepared) live, record it and drop revisions beyond KEEP."""
        info = git.commit(self.git_dir, sha)
        flush_tree(self.revs / sha)  # a power cut never leaves `live` at partial files
        tmp = self.dir / ".live.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"{REVS}/{sha}", tmp)
        os.replace(tmp, self.dir / "live")
        fsync_dir(self.dir)
        status = self.status()
        history = (sha, *(h for h in status.history if h != sha))[:KEEP]
        status = replace(
            status,
            live=Live(sha, info.committed, info.subject, now, by),
            pinned=pinned,
            history=history,
        )
        self.write_status(status)
        self.prune(history)
        return status

    def mark_applied(self) -> None:
        status = self.status()
        if status.live is not None:
            self.write_status(replace(status, live=replace(status.live, applied=True)))

    def pin(self, pinned: bool) -> None:
        self.write_status(replace(self.status(), pinned=pinned))

    def prune(self, keep: tuple[str, ...]) -> None:
        if not self.revs.is_dir():
            return
        for tree in self.revs.iterdir():
            if tree.name not in keep:
                shutil.rmtree(tree, ignore_errors=True)


def _links_stay_inside(tree: Path, sha: str) -> None:
    """SyncError for a symlink in the revision that leads outside its tree: root would read
    what it names (`/etc/shadow` as an inventory) when checking and applying the revision."""
    root = Path(os.path.realpath(tree))
    for directory, dirs, files in os.walk(tree):
        for name in dirs + files:
            path = Path(directory, name)
            # realpath, not Path.resolve: a link loop raises RuntimeError there
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(root):
                where = path.relative_to(tree)
                raise RevisionRefused(
                    f"revision {sha[:12]}: {where} is a symlink to {os.readlink(path)}, "
                    "outside the repository"
                )
