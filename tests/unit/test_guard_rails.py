"""Rules of the layout that a reviewer should not have to check by eye."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "plugin" / "phoneprov" / "core"
# I/O and the adapters' libraries: none of them may appear in the pure core, not even inside
# a function (`time`: the clock comes in as a parameter).
IO_MODULES = {
    "asyncio", "fcntl", "flask", "http", "jinja2", "os", "pathlib", "pyroute2", "select",
    "shutil", "signal", "socket", "sqlite3", "subprocess", "tempfile", "threading", "time",
    "urllib.request", "werkzeug",
}  # fmt: skip


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def forbidden(names: set[str]) -> set[str]:
    return {n for n in names if n in IO_MODULES or n.split(".")[0] in IO_MODULES - {"urllib"}}


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_io(module: Path) -> None:
    assert not forbidden(imported(module)), f"{module.name} imports I/O modules"


def test_the_check_sees_io_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import re\ndef f():\n    import os.path\n    from time import time\n")
    assert forbidden(imported(sample)) == {"os.path", "time"}


@pytest.mark.parametrize(
    "test_file", sorted((ROOT / "tests" / "e2e").glob("test_*.py")), ids=lambda p: p.name
)
def test_every_e2e_module_is_marked(test_file: Path) -> None:
    assert re.search(r"^pytestmark = \[?[^\]]*pytest\.mark\.e2e", test_file.read_text(), re.M)


def test_the_appliance_runs_without_the_lab_extra() -> None:
    """pyroute2 is the `lab` extra: nothing the appliance runs may need it."""
    probe = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'pyroute2':\n"
        "            raise ImportError('pyroute2 is not installed')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import phoneprov.cli, phoneprov.site, phoneprov.web.app, phoneprov.web.endpoint\n"
        "import phoneprov.dnsmasq.apply, phoneprov.dnsmasq.hook, phoneprov.sip.policy\n"
        "import phoneprov.sip.pnp, phoneprov.sip.resync, phoneprov.doctor, phoneprov.render\n"
        "from click.testing import CliRunner\n"
        "assert CliRunner().invoke(phoneprov.cli.cli, ['--help']).exit_code == 0\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout == "ok\n", result.stderr


def test_the_hooks_enrol_path_needs_only_the_standard_library() -> None:
    """The dhcp-script runs `python3 -IS` (no site-packages); auto-enrolment loads the config
    and the inventory and applies: none of that may need lxml, Jinja2, Flask or click."""
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'plugin')!r})\n"
        "import phoneprov.dnsmasq.hook, phoneprov.config, phoneprov.site, phoneprov.dnsmasq.apply\n"
        "heavy = {'lxml', 'jinja2', 'flask', 'click'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert result.stdout == "[]\n", result.stderr


def test_the_served_worker_does_not_load_flask(tmp_path: Path) -> None:
    """What uWSGI loads (`web.wsgi`) answers phones without Flask (~8 MB a process)."""
    (tmp_path / "inventory.toml").write_text('[profiles.default]\ntemplates = ["office.xml"]\n')
    config = tmp_path / "pp.toml"
    config.write_text(
        '[server]\nurl = "http://127.0.0.1:8080"\n[security]\nmode = "open"\n'
        f'[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
        f'templates = "{ROOT / "conf" / "templates"}"\n'
    )
    probe = (
        "import sys, phoneprov.web.wsgi as w\n"
        "env = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/prov.py', 'QUERY_STRING': 'mac=x'}\n"
        "w.application(env | {'REMOTE_ADDR': '127.0.0.1'}, lambda s, h: print(s))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'werkzeug'}))\n"
    )
    env = {"PHONEPROV_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.splitlines()[-2:] == ["404 Not Found", "[]"], result.stderr
