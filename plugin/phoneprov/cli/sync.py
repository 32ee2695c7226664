"""`phoneprov sync`: take the site configuration from Git, check it, switch, apply, resync."""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import Failed, config_option, echo_json

if TYPE_CHECKING:
    from ..config import SyncConfig
    from ..sync.revisions import Revisions, Status

BY_ENV = "PHONEPROV_SYNC_BY"  # phoneprov-sync.service sets it to "timer"


def register(group: click.Group) -> None:
    group.add_command(sync)


@click.command()
@config_option
@click.option(
    "--to",
    "rev",
    metavar="REV",
    help="Switch to this commit of the branch (a rollback) and stay there: plain `sync` "
    "then changes nothing until `--to latest`, which follows the branch again.",
)
@click.option(
    "--status",
    "show_status",
    is_flag=True,
    help="Show the live revision (and the last refused one) and stop.",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Take nothing: fetch and check the revision sync would take (the branch head, or "
    "--to REV) and print what taking it would change, as `phoneprov plan` does (exit 0 = no "
    "change, 1 = changes, 2 = it would be refused or an error).",
)
@click.option("--json", "as_json", is_flag=True, help="--status or --plan as JSON for scripts.")
def sync(
    config_file: str | None, rev: str | None, show_status: bool, plan_only: bool, as_json: bool
) -> None:
    """Take the site configuration from [sync] repo: fetch the branch; if its head is new,
    check it in a directory of its own and only if it passes make it live, apply, and send
    check-sync to the changed phones.

    A revision that fails the check (or a required signature) is refused with the reason,
    the running configuration stays, and the next sync does not try it again. Exit 0 when
    up to date, pinned or switched, 1 when a phone did not accept its check-sync, 2 when
    refused or on any error. phoneprov-sync.timer runs it every 5 minutes.
    """
    from ..config import load_sync_settings
    from ..sync.revisions import Revisions

    settings = load_sync_settings(config_file)
    if not settings.enabled:
        raise Failed(f"sync is off: {settings.local} sets no [sync] repo")
    revs = Revisions(settings)
    if show_status or (as_json and not plan_only):
        _show(settings, revs.status(), as_json)
        return
    if plan_only:
        with revs.locked():
            _plan(settings, revs, rev, as_json)
    with revs.locked():
        _sync(config_file, settings, revs, rev)


def _sync(config_file: str | None, settings: SyncConfig, revs: Revisions, rev: str | None) -> None:
    from ..config import load_config, load_site_config
    from ..render.check import check_config
    from ..sip.changes import apply_with_changes
    from ..sync.take import take
    from .dnsmasq import echo_applied, prune_state, resync_changed

    now = time.time()
    by = os.environ.get(BY_ENV) or f"manual ({getpass.getuser()})"
    taken = take(revs, rev, now, by, lambda path: check_config(load_site_config(path, settings)))
    click.echo(taken.message)
    if not taken.apply:
        return
    config = load_config(config_file)
    applied = apply_with_changes(config, now)
    revs.mark_applied()
    echo_applied(config, applied.result)
    prune_state(config)
    resync_changed(config, applied)


def _plan(settings: SyncConfig, revs: Revisions, rev: str | None, as_json: bool) -> None:
    from ..config import load_site_config
    from ..core.errors import ConfigError, SyncError
    from ..plan import make_plan
    from ..sync.take import as_in_repo, preview
    from .plan import show_plan

    def loads(path: Path) -> str:  # the plan checks the rest as `check` does, once
        load_site_config(path, settings)
        return ""

    sha, site_config = preview(revs, rev, loads)
    try:
        result = make_plan(load_site_config(site_config, settings))
    except ConfigError as e:
        raise SyncError(f"{sha[:12]} would be refused: {as_in_repo(revs, sha, str(e))}") from None
    if not as_json:
        live = revs.status().live
        click.echo(f"plan for {sha[:12]} (live: {live.sha[:12] if live else 'none'})")
    show_plan(result, as_json)


def _show(settings: SyncConfig, status: Status, as_json: bool) -> None:
    from ..sync.report import status_dict, status_lines

    if as_json:
        echo_json(status_dict(settings, status))
        return
    where = f"{settings.repo} {settings.branch}" + (f" {settings.path}/" if settings.path else "")
    click.echo(f"repo: {where}" + (" (signed commits only)" if settings.allowed_signers else ""))
    for line in status_lines(status):
        click.echo(line)
