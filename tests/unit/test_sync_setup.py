"""`phoneprov setup` with [sync] repo set: the sync units, the first sync before anything
reads the configuration, and the timer enabled only then."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from phoneprov.install import setup as install
from phoneprov.install.setup import SYNC_TIMER, Layout, run, setup_steps
from site_repo import SiteRepo, inventory, site_config

COMMAND = f"{sys.executable} -m phoneprov"


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    monkeypatch.setattr(install, "systemd_runs", lambda: False)  # no systemctl here
    return Layout.under(tmp_path / "root")


def steps(layout: Layout) -> list[install.Step]:
    return [s for s in setup_steps(layout, "eth7", COMMAND) if "user" not in s.what]


def test_the_sync_units_start_this_phoneprov_sync_as_the_timer(layout: Layout) -> None:
    run(steps(layout), False, lambda _line: None)
    service, timer = layout.sync_units
    assert f"ExecStart={COMMAND} sync\n" in service.read_text()
    assert "Environment=PHONEPROV_SYNC_BY=timer\n" in service.read_text()
    assert "Type=oneshot\n" in service.read_text()
    assert "ReadWritePaths=/var/lib/phoneprov\n" in service.read_text()
    assert "OnUnitActiveSec=5min\n" in timer.read_text()
    assert "OnBootSec=2min\n" in timer.read_text()
    assert "RandomizedDelaySec=60\n" in timer.read_text()
    assert layout.sync.stat().st_mode & 0o7777 == 0o2750


def test_with_sync_setup_syncs_first_and_enables_the_timer(
    layout: Layout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    repo = SiteRepo(tmp_path / "git")
    repo.add_site("office", site_config(site), inventory("00095200000E", "Front desk"))
    head = repo.commit("the office")
    layout.etc.mkdir(parents=True)
    layout.config.write_text(
        f'[sync]\nrepo = "{repo.bare}"\npath = "office"\ndir = "{layout.sync}"\n'
    )
    report = run(steps(layout), False, lambda _line: None)
    assert "phoneprov sync: the first revision of [sync] repo" in report.done
    assert (layout.sync / "live").resolve().name == head
    assert f"dhcp-hostsdir={site}/hosts" in layout.snippet.read_text()  # the site's config
    assert "phoneprov sync: the first revision of [sync] repo" in (
        run(steps(layout), False, lambda _line: None).already
    )

    monkeypatch.setattr(install, "systemd_runs", lambda: True)
    enabled = [
        s.what
        for s in setup_steps(layout, "", COMMAND)
        if s.what.startswith("systemctl") and SYNC_TIMER in s.what
    ]
    assert enabled == [f"systemctl enable --now {SYNC_TIMER} ([sync] repo is set)"]
    layout.config.write_text('[server]\ninterface = "eth7"\n')
    assert not [
        s
        for s in setup_steps(layout, "", COMMAND)
        if s.what.startswith("systemctl") and SYNC_TIMER in s.what
    ]


def test_a_first_sync_that_is_refused_stops_setup(layout: Layout, tmp_path: Path) -> None:
    repo = SiteRepo(tmp_path / "git")
    repo.add_site("office", site_config(tmp_path), inventory("zz", "Broken"))
    repo.commit("broken")
    layout.etc.mkdir(parents=True)
    layout.config.write_text(f'[sync]\nrepo = "{repo.bare}"\npath = "office"\ndir = "s"\n')
    with pytest.raises(install.ConfigError) as e:
        run(steps(layout), False, lambda _line: None)
    assert "the first `phoneprov sync` failed:\nerror: refused " in str(e.value)
    assert "office/inventory.toml:3: not a MAC address" in str(e.value)
