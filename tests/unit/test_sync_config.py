"""A site config from Git: its appliance paths absolute, its inventory and templates inside
the revision's tree; one revision per command (`live` read once) and the long-running
processes following `live`; the hook's settings naming the appliance's own file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phoneprov.cli import cli
from phoneprov.config import SyncConfig, load_config, load_inventory, load_site_config
from phoneprov.core.errors import ConfigError, ConfigErrors
from site_repo import MAC, SiteRepo, appliance, inventory, one_site, site_config

UNKNOWN = "00:09:52:00:00:77"
ABSOLUTE = "a relative one would live in the revision and go at the next switch"  # in each message


@pytest.fixture
def repo(tmp_path: Path) -> SiteRepo:
    return one_site(tmp_path)


def sync(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["sync", *args, "-c", str(config)])


def revision(tmp_path: Path, text: str, path: str = "site-a") -> tuple[Path, SyncConfig]:
    """A site config in an exported revision's tree (no git needed to load it)."""
    site = tmp_path / "sync" / "revs" / "abc" / path
    site.mkdir(parents=True)
    (site / "phoneprov.toml").write_text(text)
    settings = SyncConfig(
        repo="r.git", path=path, dir=tmp_path / "sync", local=tmp_path / "appliance.toml"
    )
    return site / "phoneprov.toml", settings


def errors_of(path: Path, settings: SyncConfig) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_site_config(path, settings)
    found = e.value.errors if isinstance(e.value, ConfigErrors) else [e.value]
    return [str(error) for error in found]


# the appliance's own paths -------------------------------------------------------------


def test_the_appliances_paths_must_be_absolute_each_named_at_its_line(tmp_path: Path) -> None:
    root = tmp_path / "a"
    text = site_config(root).replace(f'"{root}/', '"').replace('leasefile = ""', 'leasefile = "l"')
    path, settings = revision(tmp_path, text)
    assert errors_of(path, settings) == [
        f"{path}:{line}: {name} must be an absolute path on the appliance ({ABSOLUTE})"
        for line, name in [
            (14, "paths.state"),
            (10, "security.secret_file"),
            (5, "dhcp.hostsdir"),
            (6, "dhcp.optsdir"),
            (7, "dhcp.dnsmasq_pidfile"),
            (8, "dhcp.leasefile"),
        ]
    ]


def test_absolute_appliance_paths_and_no_leasefile_are_fine(tmp_path: Path) -> None:
    path, settings = revision(tmp_path, site_config(tmp_path / "a"))  # leasefile = ""
    config = load_site_config(path, settings)
    assert config.state == tmp_path / "a" / "state.db"
    assert config.security.secret_file == tmp_path / "a" / "secret"
    assert config.dhcp.leasefile is None


def test_outside_git_relative_paths_stay_relative_to_the_file(tmp_path: Path) -> None:
    root = tmp_path / "a"
    text = site_config(root).replace(f'"{root}/', '"')  # no [sync]: nothing to confine
    (tmp_path / "pp.toml").write_text(text)
    config = load_config(tmp_path / "pp.toml")
    assert config.state == tmp_path / "state.db"


def test_a_sync_refuses_a_relative_state_database_naming_its_line(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    text = site_config(tmp_path / "a").replace(f'"{tmp_path / "a"}/state.db"', '"state.db"')
    repo.write("site-a/phoneprov.toml", text)
    bad = repo.commit("state in the revision")
    result = sync(config)
    assert result.exit_code == 2
    assert f"refused {bad[:12]}: site-a/phoneprov.toml:14: paths.state must be an absolute" in (
        result.output
    )
    assert not (tmp_path / "sync" / "revs" / bad).exists()


# the inventory and the templates: the revision's ---------------------------------------


@pytest.mark.parametrize(
    ("path", "key", "value"),
    [
        ("site-a", "inventory", "../../../../etc/hostname"),
        ("site-a", "inventory", "/etc/hostname"),
        ("site-a", "templates", "../.."),
        ("site-a", "templates", "/usr/share/phoneprov/templates"),
        ("", "templates", "../shared/templates"),  # the site at the root: nothing above it
        ("sites/b", "inventory", "../../../inventory.toml"),
    ],
)
def test_the_inventory_and_templates_outside_the_tree_are_refused(
    tmp_path: Path, path: str, key: str, value: str
) -> None:
    text = site_config(tmp_path / "a").replace(f'{key} = "{key}', f'{key} = "{value}"#')
    config, settings = revision(tmp_path, text, path)
    line = 12 if key == "inventory" else 13
    assert errors_of(config, settings) == [
        f"{config}:{line}: paths.{key} must lie inside the revision's tree (the repository): "
        f"{value!r} leads out of it"
    ]


@pytest.mark.parametrize(
    ("path", "inventory_at", "templates_at"),
    [
        ("site-a", "inventory.toml", "../shared/templates"),  # shared by the sites
        ("sites/b", "../../inventories/b.csv", "../b/./templates"),
        ("", "site/inventory.toml", "templates"),
    ],
)
def test_paths_inside_the_tree_are_fine(
    tmp_path: Path, path: str, inventory_at: str, templates_at: str
) -> None:
    text = (
        site_config(tmp_path / "a")
        .replace('"inventory.toml"', f'"{inventory_at}"')
        .replace('"templates"', f'"{templates_at}"')
    )
    config, settings = revision(tmp_path, text, path)
    loaded = load_site_config(config, settings)
    assert loaded.inventory_path == config.parent / inventory_at
    assert loaded.templates == config.parent / templates_at


def test_an_inventory_outside_is_refused_and_not_read(tmp_path: Path, repo: SiteRepo) -> None:
    """A valid inventory beside the appliance's file: taken, it would pass the check."""
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    good = (tmp_path / "sync" / "live").resolve().name
    (tmp_path / "outside.toml").write_text(inventory(MAC, "Not from Git"))
    text = site_config(tmp_path / "a").replace('"inventory.toml"', '"../../../../outside.toml"')
    repo.write("site-a/phoneprov.toml", text)
    bad = repo.commit("an inventory from elsewhere")
    result = sync(config)
    assert result.exit_code == 2
    assert result.output.startswith(
        f"error: refused {bad[:12]}: site-a/phoneprov.toml:12: paths.inventory must lie inside "
        "the revision's tree (the repository): '../../../../outside.toml' leads out of it\n"
    )
    assert (tmp_path / "sync" / "live").resolve().name == good


def test_a_link_inside_the_tree_does_not_lead_the_inventory_out(
    tmp_path: Path, repo: SiteRepo
) -> None:
    """`x` -> `.` stays inside (sync takes such a link), but `x/x/x/x/../../../..` is the site
    directory only lexically: the kernel climbs four levels from where `x` leads."""
    config = appliance(tmp_path, repo)
    (tmp_path / "outside.toml").write_text(inventory(MAC, "Not from Git"))
    os.symlink(".", repo.work / "site-a" / "x")
    value = "x/x/x/x/../../../../outside.toml"  # from revs/<sha>/site-a: tmp_path/outside.toml
    text = site_config(tmp_path / "a").replace('"inventory.toml"', f'"{value}"')
    repo.write("site-a/phoneprov.toml", text)
    bad = repo.commit("a link that climbs")
    result = sync(config)
    assert result.exit_code == 2
    assert (
        f"error: refused {bad[:12]}: site-a/phoneprov.toml:12: paths.inventory must lie inside "
        f"the revision's tree (the repository): {value!r} leads out of it through a symlink "
        f"(to {(tmp_path / 'outside.toml').resolve()})\n"
    ) in result.output
    assert not (tmp_path / "sync" / "live").exists()


# one revision per command; the long-running processes follow `live` -------------------


def test_a_command_reads_one_revision_even_when_a_sync_switches_meanwhile(
    tmp_path: Path, repo: SiteRepo
) -> None:
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    first = (tmp_path / "sync" / "live").resolve().name
    command = load_config(config)  # a one-shot command's settings...
    server = load_config(config, follow_live=True)  # ...and a serve worker's

    text = site_config(tmp_path / "a", server="http://192.0.2.20:8080")
    repo.write("site-a/phoneprov.toml", text)
    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    second = repo.commit("a new server and a new name")
    assert sync(config).exit_code == 0  # switches `live` between the two loads

    assert command.path == tmp_path / "sync" / "revs" / first / "site-a" / "phoneprov.toml"
    assert command.server.url == "http://192.0.2.10:8080"
    device = load_inventory(command).devices[MAC]  # ...of the same revision
    assert device.settings.lines[0].display_name == "Front desk"

    assert server.path == tmp_path / "sync" / "live" / "site-a" / "phoneprov.toml"
    assert load_inventory(server).devices[MAC].settings.lines[0].display_name == "Lobby"
    assert load_config(config).path.parent.parent.name == second


def test_before_the_first_sync_both_modes_say_so(tmp_path: Path, repo: SiteRepo) -> None:
    config = appliance(tmp_path, repo)
    for follow_live in (False, True):
        with pytest.raises(ConfigError) as e:
            load_config(config, follow_live=follow_live)
        assert str(e.value) == f"{config}: no revision synced yet: run `phoneprov sync`"


def test_the_http_app_follows_a_switch(
    tmp_path: Path, repo: SiteRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phoneprov.web.app import create_app
    from phoneprov.web.routes import provisioning

    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    monkeypatch.setenv("PHONEPROV_CONFIG", str(config))
    app = create_app()  # as serve's worker loads it: from the appliance's own file
    catalog = provisioning(app).catalog
    try:
        repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
        repo.commit("lobby")
        assert sync(config).exit_code == 0
        assert catalog.refresh(force=True)
        device = catalog.device(MAC, refreshed=True)
        assert device is not None and device.settings.lines[0].display_name == "Lobby"
    finally:
        provisioning(app).close()


# the hook --------------------------------------------------------------------------------


def test_the_hooks_settings_name_the_appliances_file_and_its_auto_enrol_works(
    tmp_path: Path, repo: SiteRepo
) -> None:
    from phoneprov.dnsmasq import hook
    from phoneprov.dnsmasq.applied import load_applied
    from phoneprov.state.db import State

    text = site_config(tmp_path / "a").replace("[dhcp]\n", "[dhcp]\nauto_enrol = true\n")
    repo.write("site-a/phoneprov.toml", text)
    repo.commit("auto-enrol")
    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    settings = tmp_path / "a" / "hosts" / ".phoneprov-applied"
    assert load_applied(str(settings))["config"] == str(config)  # not a revision's file

    environ = {"PHONEPROV_HOOK_SETTINGS": str(settings)}
    assert hook.main(["hook", "add", UNKNOWN, "10.0.0.77"], environ) == 0
    assert (tmp_path / "a" / "hosts" / "000952000077").read_text().startswith(UNKNOWN)
    with State(tmp_path / "a" / "state.db") as state:
        assert [e["mac"] for e in state.enrolled()] == ["000952000077"]


def test_the_admin_page_follows_a_switch(
    tmp_path: Path, repo: SiteRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from phoneprov.admin.app import SERVICE, create_admin_app

    config = appliance(tmp_path, repo)
    assert sync(config).exit_code == 0
    monkeypatch.setenv("PHONEPROV_CONFIG", str(config))
    service = create_admin_app().extensions[SERVICE]  # as the admin service loads it
    assert service.config.path == tmp_path / "sync" / "live" / "site-a" / "phoneprov.toml"
    catalog = service.catalog()  # made before the switch, kept
    repo.write("site-a/inventory.toml", inventory(MAC, "Lobby"))
    repo.commit("lobby")
    assert sync(config).exit_code == 0
    device = catalog.device(MAC)  # the inventory is looked at on every call
    assert device is not None and device.settings.lines[0].display_name == "Lobby"
