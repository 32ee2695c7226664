"""Which uWSGI `phoneprov serve` runs: the PyPI build beside the interpreter, else Debian's
uwsgi-core with its HTTP router and this Python's plugin (tests/e2e/test_install.py serves
with that one on a clean Debian root), else one on PATH, else a clear error."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from phoneprov.core.errors import ConfigError
from phoneprov.web import launcher

PLUGIN = f"python{sys.version_info.major}{sys.version_info.minor}"


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine in tmp_path: bin/ (this interpreter's directory and PATH), plugins/."""
    for name in ("bin", "plugins"):
        (tmp_path / name).mkdir()
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python3"))
    monkeypatch.setattr(launcher, "DEBIAN_PLUGINS", tmp_path / "plugins")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


def tool(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_the_pypi_build_beside_the_interpreter_comes_first(machine: Path) -> None:
    beside = tool(machine / "bin" / "uwsgi")
    tool(machine / "bin" / "uwsgi-core")
    (machine / "plugins" / f"{PLUGIN}_plugin.so").touch()
    assert launcher.uwsgi_binary() == [str(beside)]


def test_debians_uwsgi_core_with_the_router_and_this_pythons_plugin(machine: Path) -> None:
    core = tool(machine / "bin" / "uwsgi-core")
    (machine / "plugins" / f"{PLUGIN}_plugin.so").touch()
    assert launcher.uwsgi_binary() == [str(core), "--plugin", f"http,{PLUGIN}"]
    argv = launcher.uwsgi_argv(launcher.ServeOptions(listen="127.0.0.1:8080"))
    assert argv[:3] == [str(core), "--plugin", f"http,{PLUGIN}"]
    assert argv[argv.index("--pythonpath") + 1] == str(launcher.PACKAGE_PARENT)


def test_uwsgi_core_without_the_plugin_of_this_python_is_not_taken(machine: Path) -> None:
    tool(machine / "bin" / "uwsgi-core")
    (machine / "plugins" / "python39_plugin.so").touch()  # another Python's
    with pytest.raises(ConfigError, match="apt install uwsgi-core uwsgi-plugin-python3"):
        launcher.uwsgi_binary()


def test_debians_uwsgi_beside_usr_bin_python3_is_its_uwsgi_core(machine: Path) -> None:
    core = tool(machine / "bin" / "uwsgi-core")
    (machine / "bin" / "uwsgi").symlink_to(core)  # /usr/bin/uwsgi -> alternatives -> core
    (machine / "plugins" / f"{PLUGIN}_plugin.so").touch()
    assert launcher.uwsgi_binary() == [str(core), "--plugin", f"http,{PLUGIN}"]


def test_one_process_mode_has_no_router_and_no_master() -> None:
    options = launcher.ServeOptions(listen="127.0.0.1:8080", http="socket")
    argv = launcher.uwsgi_argv(options)
    assert argv[argv.index("--http-socket") + 1] == "127.0.0.1:8080"
    for router_or_master in ("--http", "--https", "--socket", "--master", "--processes"):
        assert router_or_master not in argv
    with pytest.raises(ConfigError, match="TLS needs uWSGI's HTTP router"):
        launcher.uwsgi_argv(replace(options, tls_cert=Path("c"), tls_key=Path("k")))
    with pytest.raises(ConfigError, match="one process only"):
        launcher.uwsgi_argv(replace(options, processes=2))


def test_openwrts_uwsgi_gets_its_python_plugin_by_path(
    machine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (machine / "sbin").mkdir()  # on PATH, not beside the interpreter
    uwsgi = tool(machine / "sbin" / "uwsgi")
    monkeypatch.setenv("PATH", str(machine / "sbin"))
    plugin = machine / "python_plugin.so"
    plugin.touch()
    monkeypatch.setattr(launcher, "OPENWRT_PLUGIN", plugin)
    assert launcher.uwsgi_binary() == [str(uwsgi), "--plugin", str(plugin)]
