"""`phoneprov setup` installs the admin page's units (service + socket), `--uninstall`
removes them; the launcher's uWSGI command line for `phoneprov admin`."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneprov.admin.launcher import AdminOptions, admin_argv, socket_activated
from phoneprov.core.errors import ConfigError
from phoneprov.install import setup as install
from phoneprov.install.setup import Layout, run, setup_steps, uninstall_steps


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    monkeypatch.setattr(install, "systemd_runs", lambda: False)  # no systemctl here
    return Layout.under(tmp_path)


def test_setup_installs_and_uninstall_removes_the_admin_units(layout: Layout) -> None:
    steps = [
        s for s in setup_steps(layout, "eth7", "/opt/pp/bin/phoneprov") if "user" not in s.what
    ]
    run(steps, False, lambda _line: None)
    service = (layout.units / "phoneprov-admin.service").read_text()
    assert "ExecStart=/opt/pp/bin/phoneprov admin\n" in service
    assert "Requires=phoneprov-admin.socket" in service
    socket_unit = (layout.units / "phoneprov-admin.socket").read_text()
    assert "ListenStream=127.0.0.1:8090" in socket_unit
    assert run(steps, False, lambda _line: None).done == []  # a second run changes nothing
    run(uninstall_steps(layout, purge=False), False, lambda _line: None)
    assert not any(path.exists() for path in layout.admin_units)


def test_the_socket_listens_where_the_config_says_by_default() -> None:
    from phoneprov.config.schema import SCHEMA

    root = Path(__file__).resolve().parents[2]
    socket_unit = (root / "conf" / "systemd" / "phoneprov-admin.socket").read_text()
    assert f"ListenStream={SCHEMA['admin']['listen'].default}\n" in socket_unit


def test_socket_activation_is_for_this_pid_only() -> None:
    assert socket_activated({"LISTEN_PID": "42", "LISTEN_FDS": "1"}, 42)
    assert not socket_activated({"LISTEN_PID": "41", "LISTEN_FDS": "1"}, 42)
    assert not socket_activated({"LISTEN_FDS": "1"}, 42)


def test_argv_idle_exit_only_when_activated() -> None:
    options = AdminOptions("127.0.0.1:8090", idle_exit=600)
    plain = admin_argv(options, activated=False)
    assert "--http-socket" in plain and "--die-on-idle" not in plain
    activated = admin_argv(options, activated=True)
    assert activated[activated.index("--idle") + 1] == "600" and "--die-on-idle" in activated
    assert activated[activated.index("--protocol") + 1] == "http"
    never = admin_argv(AdminOptions("127.0.0.1:8090", idle_exit=0), activated=True)
    assert "--idle" not in never


def test_argv_tls_and_its_limit(tmp_path: Path) -> None:
    options = AdminOptions("0.0.0.0:8443", tmp_path / "c.pem", tmp_path / "k.pem")
    argv = admin_argv(options, activated=False)
    assert (
        argv[argv.index("--https-socket") + 1] == f"0.0.0.0:8443,{tmp_path}/c.pem,{tmp_path}/k.pem"
    )
    with pytest.raises(ConfigError, match="TLS does not work on a socket systemd hands over"):
        admin_argv(options, activated=True)
    with pytest.raises(ConfigError, match="host:port"):
        admin_argv(AdminOptions("8090"), activated=False)


@pytest.mark.parametrize(("listen", "warned"), [("127.0.0.1:8090", False), ("0.0.0.0:8090", True)])
def test_admin_command_options_and_the_clear_text_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listen: str, warned: bool
) -> None:
    from click.testing import CliRunner

    from phoneprov.admin import launcher
    from phoneprov.cli import cli

    config = tmp_path / "phoneprov.toml"
    config.write_text('[admin]\nidle_exit = 30\n[paths]\nstate = "state.db"\n')
    started: list[AdminOptions] = []
    monkeypatch.setattr(launcher, "exec_admin", lambda _path, options: started.append(options))
    result = CliRunner().invoke(cli, ["admin", "-c", str(config), "--listen", listen])
    assert result.exit_code == 0, result.output
    assert started == [AdminOptions(listen, idle_exit=30.0)]
    assert ("without TLS" in result.stderr) == warned
