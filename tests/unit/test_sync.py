"""`phoneprov sync` against a real local Git repository (no network, no dnsmasq): what goes
live, what is refused and why, pinning, rollback, signatures, the lock, the status."""

from __future__ import annotations

import grp
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneprov.cli import cli
from phoneprov.config import load_config, load_sync_settings
from phoneprov.core.errors import ConfigError, SyncError
from phoneprov.sync.revisions import KEEP, Revisions
from site_repo import MAC, SiteRepo, appliance, inventory, one_site, site_config


@pytest.fixture
def repo(tmp_path: Path) -> SiteRepo:
    return one_site(tmp_path)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "-c", str(config)])


def sync(config: Path, *args: str) -> Result:
    return run(config, "sync", *args)


def live_sha(config: Path) -> str | None:
    status = Revisions(load_sync_settings(config)).status()
    return status.live.sha if status.live else None


def test_first_sync_switches_applies_and_the_config_follows_live(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    result = run(config, "check")
    assert result.exit_code == 2
    assert f"{config}: no revision synced yet: run `phoneprov sync`" in result.output

    head = repo.git("rev-parse", "HEAD")
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"switched to {head[:12]}",
        "ok: site-a/phoneprov.toml: 1 devices, 1 profiles, dhcp mode 66+67, security lease, "
        "4 files rendered, valid against the phone schema",
    ]
    assert "resync: first run, recorded 1 devices; nothing sent" in result.output
    assert (tmp_path / "a" / "hosts").is_dir()  # apply wrote the site's dnsmasq files

    loaded = load_config(config, follow_live=True)
    assert loaded.path == tmp_path / "sync" / "live" / "site-a" / "phoneprov.toml"
    assert loaded.inventory_path == loaded.path.parent / "inventory.toml"  # through `live`
    assert loaded.sync.repo == str(repo.bare) and loaded.sync.path == "site-a"
    assert loaded.source == config  # what serve's and admin's workers load again
    assert loaded.admin.users_file == tmp_path / "admin-users"  # the appliance's, not Git's
    assert run(config, "check").exit_code == 0
    for path in (tmp_path / "sync" / "revs").rglob("*"):  # SIP passwords: no other user
        assert path.stat().st_mode & 0o007 == 0, path

    result = sync(config)
    assert (result.exit_code, result.output) == (0, f"up to date: {head[:12]} is live\n")


def test_a_new_commit_goes_live_and_changed_phones_are_selected(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    sync(config)
    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    new = repo.commit("lobby")
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"switched to {new[:12]} (was ")
    assert result.output.endswith(f"{MAC} - no lease (not sent)\n")  # selected, no lease here
    inv = (tmp_path / "sync" / "live" / "site-a" / "inventory.toml").read_text()
    assert "Lobby" in inv


def test_a_broken_revision_is_refused_once_and_the_live_one_stays(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    sync(config)
    good = live_sha(config)
    assert good is not None
    repo.write("site-a/inventory.toml", inventory("not-a-mac", "Broken"))
    bad = repo.commit("broken inventory")

    result = sync(config)
    assert result.exit_code == 2
    assert f"error: refused {bad[:12]}: site-a/inventory.toml:3: not a MAC address" in result.output
    assert result.output.endswith(f"{good[:12]} stays live\n")
    assert live_sha(config) == good
    assert (tmp_path / "sync" / "live").resolve().name == good
    assert not (tmp_path / "sync" / "revs" / bad).exists()

    result = sync(config)  # the timer's next run: one line, not the whole check again
    assert result.exit_code == 0
    assert result.output.startswith(f"nothing new: {bad[:12]} was refused (site-a/inventory")

    status = sync(config, "--status")
    assert f"refused {bad[:12]} at " in status.output
    assert "site-a/inventory.toml:3: not a MAC address" in status.output
    data = json.loads(sync(config, "--status", "--json").output)
    assert data["live"]["sha"] == good and data["refused"]["sha"] == bad
    assert set(data) == {
        "enabled", "repo", "branch", "path", "signed", "live", "refused", "pinned"
    }  # fmt: skip
    assert set(data["live"]) == {"sha", "committed", "subject", "synced_at", "by", "applied"}
    assert set(data["refused"]) == {"sha", "reason", "at"}


def test_a_missing_site_directory_is_refused(tmp_path: Path, repo: SiteRepo) -> None:
    result = sync(appliance(tmp_path, repo, path="site-z"))
    assert result.exit_code == 2
    assert "has no directory 'site-z' (sync.path)" in result.output
    assert "no revision stays live" in result.output


def test_to_rev_rolls_back_and_pins_until_latest(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    sync(config)
    first = live_sha(config)
    assert first is not None
    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    second = repo.commit("lobby")
    sync(config)

    result = sync(config, "--to", first[:8])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"switched to {first[:12]} (was {second[:12]})")
    assert live_sha(config) == first
    assert "Front desk" in (tmp_path / "sync/live/site-a/inventory.toml").read_text()

    result = sync(config)  # the timer: stays where --to put it
    assert result.output.startswith(f"pinned at {first[:12]} by `sync --to`")
    assert live_sha(config) == first
    assert "pinned by `sync --to`" in sync(config, "--status").output

    result = sync(config, "--to", "latest")
    assert result.output.startswith(f"switched to {second[:12]}")
    assert "pinned" not in sync(config, "--status").output

    result = sync(config, "--to", "0123456789abcdef")
    assert result.exit_code == 2
    assert "unknown revision '0123456789abcdef'" in result.output


def test_only_the_last_revisions_are_kept(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    shas = []
    for n in range(KEEP + 2):
        repo.write("site-a/inventory.toml", inventory(MAC, f"Phone {n}"))
        shas.append(repo.commit(f"name {n}"))
        assert sync(config).exit_code == 0
    kept = sorted(p.name for p in (tmp_path / "sync" / "revs").iterdir())
    assert kept == sorted(shas[-KEEP:])


def test_a_second_sync_at_the_same_time_is_busy(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    with Revisions(load_sync_settings(config)).locked():
        result = sync(config)
    assert result.exit_code == 2
    assert "busy: another `phoneprov sync` holds" in result.output


def test_signed_commits_only_when_signers_are_listed(tmp_path: Path, repo: SiteRepo) -> None:
    signers = repo.make_signing_key(tmp_path)
    config = appliance(tmp_path, repo, f'allowed_signers = "{signers}"\n')
    unsigned = repo.git("rev-parse", "HEAD")
    result = sync(config)
    assert result.exit_code == 2
    assert f"refused {unsigned[:12]}: commit {unsigned[:12]} is not signed by an allowed key" in (
        result.output
    )
    assert live_sha(config) is None

    repo.write("site-a/inventory.toml", inventory(MAC, "Signed"))
    signed = repo.commit("signed")
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert live_sha(config) == signed
    status = sync(config, "--status").output
    assert status.startswith(f"repo: {repo.bare} main site-a/ (signed commits only)\nlive: ")

    other = SiteRepo(tmp_path / "other")  # a key the allowed signers do not list
    other.make_signing_key(tmp_path / "other", "stranger")
    repo.signing_key = other.signing_key
    repo.write("site-a/inventory.toml", inventory(MAC, "Stranger"))
    strange = repo.commit("signed by a stranger")
    result = sync(config)
    assert result.exit_code == 2
    assert f"commit {strange[:12]} is not signed by an allowed key" in result.output
    assert live_sha(config) == signed


def test_sync_off_and_a_missing_repository_are_errors(tmp_path: Path, repo: SiteRepo) -> None:
    off = tmp_path / "off.toml"
    off.write_text('[server]\ninterface = "eth0"\n')
    result = sync(off)
    assert (result.exit_code, result.output) == (
        2,
        f"error: sync is off: {off} sets no [sync] repo\n",
    )
    missing = tmp_path / "missing.toml"
    missing.write_text(f'[sync]\nrepo = "{tmp_path / "nowhere.git"}"\ndir = "sync2"\n')
    result = sync(missing)
    assert result.exit_code == 2
    assert result.output.startswith("error: git fetch: ")


def test_the_appliance_file_holds_only_sync(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo, '[server]\nurl = "auto"\n')
    with pytest.raises(ConfigError) as e:
        load_sync_settings(config)
    assert str(e.value) == (
        f"{config}:5: [server] does not belong here when [sync] repo is set: move it into the "
        "site's phoneprov.toml in the repository"
    )


def test_the_site_config_from_git_must_not_hold_sync(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    repo.write("site-a/phoneprov.toml", site_config(tmp_path / "a", extra='[sync]\nrepo = "x"\n'))
    bad = repo.commit("sync inside the site")
    result = sync(config)
    assert result.exit_code == 2
    assert (
        f"refused {bad[:12]}: site-a/phoneprov.toml:15: [sync] belongs in the appliance's own"
        in (result.output)
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("branch", "-x", "sync.branch must be a branch name like main; got '-x'"),
        ("branch", "a..b", "sync.branch must be a branch name like main; got 'a..b'"),
        ("path", "../etc", "sync.path must be a directory inside the repository like site-a"),
        ("path", "/abs", "sync.path must be a directory inside the repository like site-a"),
    ],
)
def test_sync_values_are_checked(tmp_path: Path, key: str, value: str, message: str) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(f'[sync]\nrepo = "r.git"\n{key} = "{value}"\n')
    with pytest.raises(ConfigError) as e:
        load_sync_settings(config)
    assert str(e.value).startswith(f"{config}:3: {message}")


def test_a_missing_signers_file_refuses(tmp_path: Path, repo: SiteRepo) -> None:
    """The appliance's fault, not the commit's: not recorded as refused, so once the file
    is there the same commit is taken (signed by a listed key)."""
    config = appliance(tmp_path, repo, 'allowed_signers = "nope"\n')
    result = sync(config)
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot take ")
    assert f"{tmp_path / 'nope'}: sync.allowed_signers: no such file" in result.output
    assert Revisions(load_sync_settings(config)).status().refused is None
    signers = repo.make_signing_key(tmp_path)
    (tmp_path / "nope").write_text(signers.read_text())
    repo.write("site-a/inventory.toml", inventory(MAC, "Signed"))
    signed = repo.commit("signed")
    assert sync(config).exit_code == 0 and live_sha(config) == signed


def test_a_refused_first_revision_stays_an_error_while_nothing_is_live(
    tmp_path: Path, repo: SiteRepo
) -> None:
    repo.write("site-a/inventory.toml", inventory("00:09:52:zz", "Broken"))
    broken = repo.commit("broken from the start")
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 2
    result = sync(config)  # the timer's next run: said once more, and still an error
    assert result.exit_code == 2
    assert f"error: nothing new: {broken[:12]} was refused (" in result.output
    assert result.output.rstrip().endswith("no revision stays live")


def test_a_link_loop_in_the_repository_does_not_crash_sync(tmp_path: Path, repo: SiteRepo) -> None:
    (repo.work / "site-a" / "x").symlink_to("y")
    (repo.work / "site-a" / "y").symlink_to("x")
    looped = repo.commit("a link loop nothing reads")
    config = appliance(tmp_path, repo)
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert live_sha(config) == looped


def test_unreadable_status_says_what_to_do(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    (tmp_path / "sync").mkdir()
    (tmp_path / "sync" / "status.json").write_text("{")
    with pytest.raises(SyncError, match=r"unreadable sync status .*delete it to start afresh"):
        Revisions(load_sync_settings(config)).status()


def test_a_failed_apply_is_retried_by_the_next_sync(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    (tmp_path / "a").rmdir()  # the state database cannot be made: apply fails after the switch
    result = sync(config)
    assert result.exit_code == 2
    assert "cannot open the state database" in result.output
    assert "NOT applied yet (the next sync retries)" in sync(config, "--status").output

    (tmp_path / "a").mkdir()
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert "resync: first run, recorded 1 devices; nothing sent" in result.output
    assert "NOT applied" not in sync(config, "--status").output


def test_doctor_and_the_admin_api_show_the_live_and_the_refused_revision(
    tmp_path: Path, repo: SiteRepo
) -> None:
    from admin_sample import PASSWORD, USER, logged_in
    from phoneprov.admin.app import create_admin_app
    from phoneprov.admin.users import add_user
    from phoneprov.core.findings import Facts, diagnose
    from phoneprov.sync.report import sync_facts

    config = appliance(tmp_path, repo)
    good = repo.git("rev-parse", "HEAD")
    sync(config)
    repo.write("site-a/inventory.toml", inventory("not-a-mac", "Broken"))
    bad = repo.commit("broken inventory")
    sync(config)

    loaded = load_config(config, follow_live=True)
    facts = Facts(hostsdir="", per_mac=True, security_mode="lease", sync=sync_facts(loaded))
    found = [(f.level, f.message) for f in diagnose(facts) if f.topic == "sync"]
    assert [level for level, _ in found] == ["ok", "warn"]
    assert found[0][1].startswith(f"live {good[:12]} 'site a' (committed ")
    assert " by manual (" in found[0][1]
    assert found[1][1].startswith(f"refused {bad[:12]}: site-a/inventory.toml:3: not a MAC")

    add_user(loaded.admin.users_file, USER, PASSWORD)
    client, _csrf = logged_in(create_admin_app(loaded))
    data = client.get("/api/v1/sync").get_json()
    assert data["enabled"] is True and data["path"] == "site-a"
    assert data["live"]["sha"] == good and data["live"]["applied"] is True
    assert data["refused"]["sha"] == bad and data["pinned"] is False


def test_doctor_says_pinned_and_unapplied() -> None:
    from phoneprov.core.findings import Facts, SyncFacts, diagnose

    pinned = SyncFacts(live="abc 'x'", applied=False, pinned=True)
    facts = Facts(hostsdir="", per_mac=True, security_mode="lease", sync=pinned)
    found = [(f.level, f.message, f.fix) for f in diagnose(facts) if f.topic == "sync"]
    assert found == [
        ("ok", "live abc 'x'", ""),
        ("fail", "the live revision is not applied", "phoneprov sync"),
        (
            "warn",
            "pinned by `sync --to`: the timer takes no new commit",
            "phoneprov sync --to latest",
        ),
    ]
    off = Facts(hostsdir="", per_mac=True, security_mode="lease")
    assert not [f for f in diagnose(off) if f.topic == "sync"]


def test_exit_1_when_a_changed_phone_does_not_take_its_check_sync(tmp_path: Path) -> None:
    from phoneprov.state.db import Lease, State

    (tmp_path / "a").mkdir()
    repo = SiteRepo(tmp_path)
    config_text = site_config(tmp_path / "a", extra="[sip]\nt1 = 0.01\n")
    repo.add_site("site-a", config_text.replace('"eth0"', '"lo"'), inventory(MAC, "Front desk"))
    repo.commit("site a")
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    with State(tmp_path / "a" / "state.db") as state:  # nothing answers SIP on loopback
        state.record_lease(Lease(MAC, "127.0.0.1"), 0.0)
    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    repo.commit("lobby")
    result = sync(config)
    assert result.exit_code == 1, result.output
    assert re.search(rf"^{MAC} 127\.0\.0\.1 (no answer|unreachable)", result.output, re.M)
    assert "Lobby" in (tmp_path / "sync/live/site-a/inventory.toml").read_text()  # switched


def test_the_users_git_config_does_not_change_what_is_fetched(
    tmp_path: Path, repo: SiteRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f'[url "{tmp_path}/elsewhere.git"]\n\tinsteadOf = {repo.bare}\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    result = sync(appliance(tmp_path, repo))
    assert result.exit_code == 0, result.output


def test_sites_may_share_templates_elsewhere_in_the_repository(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    repo = SiteRepo(tmp_path)
    text = site_config(tmp_path / "a").replace('"templates"', '"../shared/templates"')
    site = repo.add_site("site-a", text, inventory(MAC, "Front desk"))
    (site / "templates").rename(tmp_path / "shared-templates")
    (repo.work / "shared").mkdir()
    (tmp_path / "shared-templates").rename(repo.work / "shared" / "templates")
    repo.commit("one set of templates for every site")
    config = appliance(tmp_path, repo)
    result = sync(config)
    assert result.exit_code == 0, result.output
    assert (
        load_config(config, follow_live=True).templates
        == tmp_path / "sync/live/site-a/../shared/templates"
    )


def test_sync_off_in_the_api_answer() -> None:
    from phoneprov.config import SyncConfig
    from phoneprov.sync.report import sync_status

    assert sync_status(SyncConfig()) == {"enabled": False}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_set_group_id_sync_dir_hands_its_group_to_each_revision(
    tmp_path: Path, repo: SiteRepo
) -> None:
    group = grp.getgrnam("nogroup").gr_gid
    (tmp_path / "sync").mkdir()
    os.chown(tmp_path / "sync", 0, group)
    (tmp_path / "sync").chmod(0o2750)  # as phoneprov setup makes it (group phoneprov)
    assert sync(appliance(tmp_path, repo)).exit_code == 0
    inventory_file = tmp_path / "sync" / "live" / "site-a" / "inventory.toml"
    assert inventory_file.stat().st_gid == group
    assert inventory_file.stat().st_mode & 0o777 == 0o640


def test_the_learned_schema_is_the_live_revisions(tmp_path: Path, repo: SiteRepo) -> None:
    from phoneprov.config import site_config_path

    config = appliance(tmp_path, repo)
    sync(config)
    assert site_config_path(config) == tmp_path / "sync/live/site-a/phoneprov.toml"
    backup = tmp_path / "backup.xml"
    backup.write_text("<settings/>")
    result = run(config, "schema", "learn", str(backup))
    assert result.exit_code == 2
    assert "the learned schema comes from the repository with the site ([sync] repo)" in (
        result.output
    )
    assert not list((tmp_path / "sync").rglob("phone-schema.learned.json"))


def test_without_git_sync_says_so_and_nothing_goes_live(
    tmp_path: Path, repo: SiteRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = appliance(tmp_path, repo)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git anywhere on it
    result = sync(config)
    assert result.exit_code == 2
    assert "git is not installed (Debian: apt install git)" in result.output
    assert live_sha(config) is None


def test_sync_plan_shows_the_next_revision_and_takes_nothing(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    first = repo.git("rev-parse", "HEAD")
    assert sync(config).exit_code == 0
    result = sync(config, "--plan")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"plan for {first[:12]} (live: {first[:12]})\nno change\n")

    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    second = repo.commit("the lobby")
    result = sync(config, "--plan")
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"plan for {second[:12]} (live: {first[:12]})\n")
    assert "    lines[0].display_name: Front desk -> Lobby\n" in result.output
    result = sync(config, "--plan", "--json")
    assert result.exit_code == 1
    assert [d["mac"] for d in json.loads(result.output)["changes"]] == [MAC]
    assert live_sha(config) == first  # nothing taken

    repo.write("site-a/inventory.toml", inventory("00:09:52:zz", "Broken"))
    broken = repo.commit("broken")
    result = sync(config, "--plan")
    assert result.exit_code == 2
    assert f"error: {broken[:12]} would be refused: site-a/inventory.toml:" in result.output
    assert Revisions(load_sync_settings(config)).status().refused is None  # nothing recorded
    assert sync(config).exit_code == 2  # the sync itself refuses it, as ever

    # pinned (a rollback to the first): a plain sync would take nothing new, so it plans the
    # live revision; `--to` plans that revision
    assert sync(config, "--to", first).exit_code == 0
    result = sync(config, "--plan")
    assert result.exit_code == 0 and result.output.startswith(f"plan for {first[:12]} ")
    result = sync(config, "--plan", "--to", second)
    assert result.exit_code == 1 and "Front desk -> Lobby" in result.output
    assert live_sha(config) == first


def test_the_revision_is_flushed_before_live_switches_to_it(
    tmp_path: Path, repo: SiteRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power cut `live` names a complete tree: the revision's filesystem is flushed
    before the rename that switches `live`, and the rename itself after."""
    from phoneprov.sync import revisions

    log: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(revisions, "flush_tree", lambda path: log.append(f"flush {path.name}"))
    monkeypatch.setattr(revisions, "fsync_dir", lambda path: log.append(f"fsync {path.name}"))
    monkeypatch.setattr(  # os itself: apply renames too (with dir_fd)
        revisions.os,
        "replace",
        lambda a, b, **kw: log.append(f"rename {Path(b).name}") or real_replace(a, b, **kw),
    )
    head = repo.git("rev-parse", "HEAD")
    assert sync(appliance(tmp_path, repo)).exit_code == 0
    switch = log.index("rename live")
    assert log[switch - 1] == f"flush {head}" and log[switch + 1] == "fsync sync"


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path, repo: SiteRepo) -> None:
    """A revision whose inventory is a link to a file of the appliance (read as root when
    checking) is refused naming the link; a link inside the tree is fine."""
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    (repo.work / "site-a" / "notes.toml").symlink_to("inventory.toml")  # inside: fine
    inside = repo.commit("a link inside")
    assert sync(config).exit_code == 0 and live_sha(config) == inside
    (repo.work / "site-a" / "notes.toml").unlink()  # (it would lead out too, through it)
    (repo.work / "site-a" / "inventory.toml").unlink()
    (repo.work / "site-a" / "inventory.toml").symlink_to("/etc/passwd")
    outside = repo.commit("a link out")
    result = sync(config)
    assert result.exit_code == 2
    assert (
        f"error: refused {outside[:12]}: revision {outside[:12]}: site-a/inventory.toml is a "
        "symlink to /etc/passwd, outside the repository" in result.output
    )
    assert live_sha(config) == inside
