"""A thin wrapper over the `git` command: the few calls `phoneprov sync` makes on its bare clone.

git runs without a terminal prompt, without the user's or the system's git config (so neither
can change what is fetched or verified), under a timeout; a failure raises SyncError with
git's own message.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import RevisionRefused, SyncError

TIMEOUT = 120.0  # seconds for one git command (a fetch over a slow link)
ENV = {
    "GIT_TERMINAL_PROMPT": "0",  # never ask for a password: fail
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    "LC_ALL": "C",
}
UMASK = 0o027  # an inventory holds SIP passwords: nothing for other users


@dataclass(frozen=True)
class Commit:
    sha: str
    committed: int  # commit time, epoch seconds
    subject: str


def git(git_dir: Path, *args: str, timeout: float = TIMEOUT) -> str:
    """Run `git --git-dir=git_dir args...`; its output, or SyncError with its stderr."""
    argv = ["git", f"--git-dir={git_dir}", *args]
    try:
        done = subprocess.run(
            argv,
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            umask=UMASK,
        )
    except subprocess.TimeoutExpired:
        raise SyncError(f"git {_name(args)} took longer than {timeout:g} s") from None
    except FileNotFoundError:
        raise SyncError("git is not installed (Debian: apt install git)") from None
    if done.returncode != 0:
        detail = done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}"
        raise SyncError(f"git {_name(args)}: {detail}")
    return done.stdout


def _name(args: tuple[str, ...]) -> str:
    """The git command among the arguments (`verify-commit` of `-c k=v verify-commit sha`)."""
    return next((a for a in args if not a.startswith("-") and "=" not in a), "")


def init_bare(git_dir: Path) -> None:
    """The bare clone sync fetches into, made the first time."""
    if not (git_dir / "HEAD").exists():
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        git(git_dir, "init", "--quiet", "--bare", str(git_dir))


def fetch(git_dir: Path, repo: str, branch: str) -> None:
    """The branch's commits, into `refs/heads/<branch>` of the bare clone (forced: a rewritten
    branch is followed; its revision is checked before it is used like any other)."""
    git(
        git_dir,
        "fetch",
        "--quiet",
        "--no-tags",
        "--",
        repo,
        f"+refs/heads/{branch}:refs/heads/{branch}",
    )


def resolve(git_dir: Path, rev: str) -> str:
    """The full SHA of a branch, tag or (abbreviated) commit the clone holds."""
    if rev.startswith("-"):
        raise SyncError(f"not a revision: {rev!r}")
    try:
        return git(
            git_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
        ).strip()
    except SyncError:
        raise SyncError(f"unknown revision {rev!r} (not in the fetched branch)") from None


def commit(git_dir: Path, sha: str) -> Commit:
    out = git(git_dir, "log", "-1", "--format=%ct%x00%s", sha, "--")
    when, _, subject = out.rstrip("\n").partition("\0")
    return Commit(sha, int(when), subject)


def verify_commit(git_dir: Path, sha: str, allowed_signers: Path) -> None:
    """SyncError unless the commit carries an SSH signature by a key in `allowed_signers`."""
    if not allowed_signers.is_file():
        raise SyncError(f"{allowed_signers}: sync.allowed_signers: no such file")
    try:
        git(
            git_dir,
            "-c",
            "gpg.format=ssh",
            "-c",
            f"gpg.ssh.allowedSignersFile={allowed_signers}",
            "verify-commit",
            sha,
        )
    except SyncError as e:
        reason = str(e).removeprefix("git verify-commit: ")
        raise RevisionRefused(
            f"commit {sha[:12]} is not signed by an allowed key: {reason}"
        ) from None


def export(git_dir: Path, sha: str, dest: Path) -> None:
    """The commit's whole tree into `dest` (new), files timed now: `serve` tells a changed file
    by its time and size, and two revisions' files may share both."""
    dest.parent.mkdir(mode=0o750, exist_ok=True)
    dest.mkdir(mode=0o750)
    argv = ["git", f"--git-dir={git_dir}", "archive", "--format=tar", sha]
    env = {**os.environ, **ENV}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as archive:
        assert archive.stdout is not None
        try:
            tar = subprocess.run(
                ["tar", "-x", "-m", "--no-same-owner", "--no-same-permissions", "-C", str(dest)],
                stdin=archive.stdout,
                capture_output=True,
                timeout=TIMEOUT,
                check=False,
                umask=UMASK,
            )
            archive.stdout.close()
            errors = archive.stderr.read().decode(errors="replace") if archive.stderr else ""
            status = archive.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            archive.kill()
            raise SyncError(f"exporting {sha[:12]} took longer than {TIMEOUT:g} s") from None
    if status != 0 or tar.returncode != 0:
        detail = errors.strip() or tar.stderr.decode(errors="replace").strip()
        raise SyncError(f"cannot export {sha[:12]}: {detail}")
