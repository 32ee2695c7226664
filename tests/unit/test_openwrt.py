"""The OpenWrt package (conf/openwrt/): what can be checked off OpenWrt.

- The /etc/hotplug.d/dhcp/ handler, sourced the way procd's hotplug dispatcher sources it
  (`sh -c ". /lib/functions.sh; . HANDLER"`), by busybox sh (OpenWrt's shell) and dash, with
  the environment procd and OpenWrt's dhcp-script.sh give it, against a throwaway site with
  a real state database.
- The shell files: `sh -n` under busybox sh and dash, and shellcheck.
- The recipe's file list (conf/openwrt/Makefile, Package/phoneprov/install) against the
  repository's files and the paths the shell files expect.
Nothing here ran on OpenWrt (README: OpenWrt).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from phoneprov.config import DEFAULT_CONFIG
from phoneprov.state.db import State
from sample_data import write_hook_site

ROOT = Path(__file__).resolve().parents[2]
OPENWRT = ROOT / "conf" / "openwrt"
HANDLER = OPENWRT / "files" / "phoneprov.hotplug"
HOOK = ROOT / "hooks" / "dnsmasq-dhcp-script"
KNOWN = "00:09:52:00:00:0e"
PROCD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # procd's PATH, inherited by the handlers
MARKER = "after-handler"

# POSIX shells to source the handler with: busybox sh is OpenWrt's /bin/sh (ash).
SHELLS = {
    "busybox": ["busybox", "sh"] if shutil.which("busybox") else None,
    "dash": ["dash"] if shutil.which("dash") else None,
}
shell_params = [
    pytest.param(argv, id=name, marks=pytest.mark.skipif(argv is None, reason=f"needs {name}"))
    for name, argv in SHELLS.items()
]

# The lines of the handler a test points elsewhere (each must occur exactly once).
SHIPPED_PYTHON = "phoneprov_python=/usr/bin/python3\n"
SHIPPED_HOOK = "phoneprov_hook=/usr/lib/phoneprov/hooks/dnsmasq-dhcp-script\n"
SHIPPED_SETTINGS = "phoneprov_settings=/etc/phoneprov/dnsmasq/hosts/.phoneprov-applied\n"
SHIPPED_LOGGER = "\tlogger -t phoneprov-hook -p daemon.notice\n"


class Hotplug:
    """A site, a copy of the handler pointed at it, and procd's way of running the copy."""

    def __init__(self, root: Path, shell: list[str]) -> None:
        (root / "site").mkdir()
        self.site = write_hook_site(root / "site")
        self.shell = shell
        self.log = root / "hook.log"
        self.calls = root / "calls"
        # the hook's interpreter, through a recorder: each call's argv and DNSMASQ_* env
        python = root / "python3"
        python.write_text(
            "#!/bin/sh\n"
            f"{{ echo \"argv $*\"; env | grep '^DNSMASQ_' | sort; "
            f"echo \"settings $PHONEPROV_HOOK_SETTINGS\"; }} >>'{self.calls}'\n"
            f"exec '{sys.executable}' \"$@\"\n"
        )
        python.chmod(0o755)
        text = HANDLER.read_text()
        settings = self.site / "hosts" / ".phoneprov-applied"
        for shipped, ours in (
            (SHIPPED_PYTHON, f"phoneprov_python='{python}'\n"),
            (SHIPPED_HOOK, f"phoneprov_hook='{HOOK}'\n"),
            (SHIPPED_SETTINGS, f"phoneprov_settings='{settings}'\n"),
            (SHIPPED_LOGGER, f"\tcat >>'{self.log}'\n"),
        ):
            assert text.count(shipped) == 1, f"the handler no longer has {shipped!r}"
            text = text.replace(shipped, ours)
        self.handler = root / "50-phoneprov"
        self.handler.write_text(text)
        self.functions = root / "functions.sh"  # stands in for /lib/functions.sh
        self.functions.write_text("config_load() { :; }\nappend() { :; }\n")

    def run(self, options: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        """Source the handler as procd does, then print MARKER: the shell must go on."""
        script = f"{options}\n. '{self.functions}'\n. '{self.handler}'\necho {MARKER}\n"
        result = subprocess.run(
            [*self.shell, "-c", script],
            env={"PATH": PROCD_PATH, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, MARKER + "\n", "")
        return result

    def leases(self) -> dict[str, object]:
        with State(self.site / "state.db") as state:
            return {lease.mac: lease for lease in state.leases(include_inactive=True)}

    def hook_log(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def argvs(self) -> list[str]:
        if not self.calls.exists():
            return []
        return [line[5:] for line in self.calls.read_text().splitlines() if line[:5] == "argv "]


@pytest.fixture(params=shell_params)
def hotplug(request, tmp_path):
    return Hotplug(tmp_path, request.param)


def event(action: str, mac: str = KNOWN, ip: str = "10.231.0.100", **extra: str) -> dict:
    """The variables OpenWrt's dhcp-script.sh hands procd for one dnsmasq event."""
    return {"ACTION": action, "MACADDR": mac, "IPADDR": ip, **extra}


DNSMASQ_ENV = {
    "DNSMASQ_INTERFACE": "br-lan",
    "DNSMASQ_VENDOR_CLASS": "Auerswald D200",
    "DNSMASQ_REQUESTED_OPTIONS": "1,3,6,42,43,66,67",
    "DNSMASQ_TAGS": "lan known",
    "DNSMASQ_LEASE_EXPIRES": "2000000000",
}


def test_add_records_the_lease_with_what_dnsmasq_told(hotplug):
    hotplug.run(**event("add", HOSTNAME="d200", **DNSMASQ_ENV))
    lease = hotplug.leases()["00095200000E"]
    assert (lease.ip, lease.hostname, lease.interface, lease.vendor_class) == (
        "10.231.0.100",
        "d200",
        "br-lan",
        "Auerswald D200",
    )
    assert (lease.requested_options, lease.tags, lease.expires, lease.active) == (
        "1,3,6,42,43,66,67",
        "lan known",
        2000000000,
        True,
    )
    assert hotplug.argvs() == [f"-IS {HOOK} add {KNOWN} 10.231.0.100 d200"]
    recorded = hotplug.calls.read_text().splitlines()
    assert [line for line in recorded if line.startswith("DNSMASQ_")] == sorted(
        f"{name}={value}" for name, value in DNSMASQ_ENV.items()
    )
    assert hotplug.hook_log() == ""


def test_update_and_remove_become_old_and_del(hotplug):
    hotplug.run(**event("add", HOSTNAME="d200", **DNSMASQ_ENV))
    hotplug.run(**event("update", ip="10.231.0.101", DNSMASQ_DATA_MISSING="1"))
    lease = hotplug.leases()["00095200000E"]
    assert (lease.ip, lease.vendor_class, lease.active) == ("10.231.0.101", "Auerswald D200", True)
    hotplug.run(**event("remove", ip="10.231.0.101", DNSMASQ_DATA_MISSING="1"))
    assert not hotplug.leases()["00095200000E"].active
    assert [argv.split()[2] for argv in hotplug.argvs()] == ["add", "old", "del"]
    assert hotplug.hook_log() == ""


@pytest.mark.parametrize(
    "variables",
    [
        {},  # no event at all
        event("old"),  # dnsmasq's own words are not OpenWrt's ACTION values
        event("del"),
        event("tftp"),
        event("arp-add"),
        event("ADD"),
        event("add", mac=""),
        event("add", ip=""),
        event("add", ip="fd00::5", DNSMASQ_IAID="1"),  # DHCPv6 (older releases: no IAID)
        event("add", ip="fd00::5"),
        event("add", DNSMASQ_IAID="1"),
    ],
)
def test_other_events_run_nothing(hotplug, variables):
    hotplug.run(**variables)
    assert hotplug.argvs() == []
    assert hotplug.hook_log() == ""
    assert hotplug.leases() == {}


def test_the_shell_goes_on_under_set_eu_too(hotplug):
    """A sourced file shares the shell's options: nothing in it may trip `set -eu`."""
    hotplug.run("set -eu", **event("add"))
    hotplug.run("set -eu", **event("tftp"))
    hotplug.run("set -eu")
    assert "00095200000E" in hotplug.leases()


def test_the_routers_own_name_is_not_the_phones(hotplug):
    """procd drops empty variables: a phone that sent no name leaves HOSTNAME = the router's."""
    own = Path("/proc/sys/kernel/hostname").read_text().strip()
    hotplug.run(**event("add", HOSTNAME=own))
    assert hotplug.leases()["00095200000E"].hostname is None
    assert hotplug.argvs() == [f"-IS {HOOK} add {KNOWN} 10.231.0.100"]


def test_the_environment_cannot_redirect_the_handler(hotplug, tmp_path):
    """Whoever calls `ubus call hotplug.dhcp call` picks the environment: it must not pick
    the program, the hook or the settings the handler runs (as root)."""
    trap = tmp_path / "trap"
    hotplug.run(
        **event("add"),
        phoneprov_python="/bin/false",
        phoneprov_hook=str(trap),
        phoneprov_settings=str(trap),
        PHONEPROV_HOOK_SETTINGS=str(trap),
    )
    assert "00095200000E" in hotplug.leases()
    settings = [line for line in hotplug.calls.read_text().splitlines() if line[:9] == "settings "]
    assert settings == [f"settings {hotplug.site / 'hosts' / '.phoneprov-applied'}"]


def test_a_hook_problem_is_logged_and_the_shell_goes_on(hotplug):
    (hotplug.site / "hosts" / ".phoneprov-applied").unlink()  # as before the first apply
    hotplug.run(**event("add"))
    assert hotplug.hook_log().startswith("phoneprov-hook: error: no settings from `phoneprov")
    assert hotplug.hook_log().count("\n") == 1


def test_a_missing_hook_is_one_log_line(hotplug):
    text = hotplug.handler.read_text().replace(f"phoneprov_hook='{HOOK}'", "phoneprov_hook=/nx")
    hotplug.handler.write_text(text)
    hotplug.run(**event("add"))
    assert hotplug.hook_log() == (
        f"error: {hotplug.calls.parent / 'python3'} or /nx missing: lease not recorded\n"
    )
    assert hotplug.argvs() == []


def test_the_handler_is_sourced_not_run():
    """procd sources it: `exit` or `exec` would end the dispatcher's shell, `set -e` would
    leak into it. (The behaviour is checked above; this catches the words early.)"""
    code = [
        line.split("#")[0]
        for line in HANDLER.read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    words = {word for line in code for word in line.replace(";", " ").split()}
    assert not words & {"exit", "exec", "set"}
    assert not HANDLER.read_text().startswith("#!"), "sourced, not executed: no shebang"
    assert os.access(HANDLER, os.R_OK)


# --- the shell files: syntax and shellcheck --------------------------------------------

SHELL_FILES = {
    "init": OPENWRT / "files" / "phoneprov.init",
    "hotplug": HANDLER,
    "uci-defaults": OPENWRT / "files" / "phoneprov.uci-defaults",
}


@pytest.mark.parametrize("shell", shell_params)
@pytest.mark.parametrize("name", SHELL_FILES)
def test_shell_files_parse(shell, name):
    result = subprocess.run([*shell, "-n", str(SHELL_FILES[name])], capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, "")


def test_sh_n_catches_a_syntax_error(tmp_path):
    """The check above can fail: a broken file does not parse."""
    broken = tmp_path / "broken"
    broken.write_text(HANDLER.read_text().replace("esac", "", 1))
    shell = next((argv for argv in SHELLS.values() if argv), None)
    assert shell is not None, "needs busybox or dash"
    assert subprocess.run([*shell, "-n", str(broken)], capture_output=True).returncode != 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
@pytest.mark.parametrize("name", SHELL_FILES)
def test_shellcheck(name):
    """POSIX sh (busybox ash runs them; no `local`, no bashisms); every exception is
    written next to its line with its reason."""
    result = subprocess.run(
        ["shellcheck", "--shell=sh", "--severity=style", str(SHELL_FILES[name])],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the init script, sourced with stand-ins for rc.common, procd and uci ------------


@pytest.fixture
def init(tmp_path):
    """Runs shell code after sourcing the init script, with `uci`, `pidof` and procd's
    functions standing in (they record what they are asked), and its paths in tmp_path."""
    shell = SHELLS["busybox"] or SHELLS["dash"]
    if shell is None:
        pytest.skip("needs busybox or dash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uci").write_text(
        "#!/bin/sh\n"
        'echo "uci $*" >>"$CALLS"\n'
        'case "$*" in\n'
        '"-q get dhcp.@dnsmasq[0].confdir") [ -z "$CONFDIR" ] || echo "$CONFDIR" ;;\n'
        "'-q show dhcp.@dnsmasq[0]') printf \"%s\\n\" dhcp.cfg01411c=dnsmasq"
        " \"dhcp.cfg01411c.domain='lan'\" ;;\n"
        "esac\n"
    )
    (bin_dir / "pidof").write_text('#!/bin/sh\necho "pidof $*" >>"$CALLS"\nexit 1\n')
    (bin_dir / "phoneprov").write_text(
        "#!/bin/sh\n"
        'echo "phoneprov $*" >>"$CALLS"\n'
        "printf '%s\\n' '# phoneprov: generated' 'dhcp-hostsdir=/etc/phoneprov/dnsmasq/hosts'"
        " 'dhcp-optsdir=/etc/phoneprov/dnsmasq/opts' 'dhcp-script=/usr/lib/x/hook'"
        " '#dhcp-script=/commented'\n"
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    procd = "".join(
        f'{name}() {{ echo "{name}${{1+ $*}}" >>"$CALLS"; }}\n'
        for name in ("procd_open_instance", "procd_set_param", "procd_close_instance")
    )

    def run(code: str, confdir: str = "") -> tuple[str, list[str]]:
        calls = tmp_path / "calls"
        calls.unlink(missing_ok=True)
        script = (
            f"{procd}. '{SHELL_FILES['init']}'\n"
            f"PHONEPROV='{bin_dir / 'phoneprov'}'\n"
            f"PHONEPROV_SNIPPET='{tmp_path / 'dnsmasq.conf'}'\n"
            f"{code}\n"
        )
        env = {"PATH": f"{bin_dir}:{PROCD_PATH}", "CALLS": str(calls), "CONFDIR": confdir}
        result = subprocess.run(
            [*shell, "-c", script], env=env, capture_output=True, text=True, timeout=30
        )
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        return result.stdout, calls.read_text().splitlines() if calls.exists() else []

    return run


def test_init_finds_dnsmasqs_confdir(init, tmp_path):
    out, _ = init("phoneprov_confdirs")
    assert out.splitlines() == ["/tmp/dnsmasq.d", "/tmp/dnsmasq.cfg01411c.d"]
    out, _ = init("phoneprov_confdirs", confdir=f"{tmp_path}/conf.d,*.conf")
    assert out.splitlines() == [f"{tmp_path}/conf.d"]


def test_init_snippet_drops_dhcp_script_and_restarts_nothing_not_running(init, tmp_path):
    _, calls = init("snippet", confdir=str(tmp_path / "confdir"))
    written = (tmp_path / "dnsmasq.conf").read_text().splitlines()
    assert written == [
        "# dhcp-script: OpenWrt's own, which runs /etc/hotplug.d/dhcp/50-phoneprov",
        "# phoneprov: generated",
        "dhcp-hostsdir=/etc/phoneprov/dnsmasq/hosts",
        "dhcp-optsdir=/etc/phoneprov/dnsmasq/opts",
        "#dhcp-script=/commented",
    ]
    assert (tmp_path / "confdir" / "phoneprov.conf").read_text().splitlines() == written
    assert sorted(p.name for p in (tmp_path / "confdir").iterdir()) == ["phoneprov.conf"]
    assert calls[0] == "phoneprov dnsmasq-snippet --config /etc/phoneprov/phoneprov.toml"
    assert [c for c in calls if c.startswith(("uci -q del_list", "uci add", "uci commit"))] == [
        "uci -q del_list dhcp.@dnsmasq[0].addnmount=/etc/phoneprov/dnsmasq",
        "uci add_list dhcp.@dnsmasq[0].addnmount=/etc/phoneprov/dnsmasq",
        "uci commit dhcp",
    ]
    assert calls[-1] == "pidof dnsmasq"  # not running: no restart (and never a reload)


def test_init_detach_takes_it_out_again(init, tmp_path):
    init("snippet", confdir=str(tmp_path / "confdir"))
    _, calls = init("detach", confdir=str(tmp_path / "confdir"))
    assert list((tmp_path / "confdir").iterdir()) == []
    assert "uci -q del_list dhcp.@dnsmasq[0].addnmount=/etc/phoneprov/dnsmasq" in calls
    assert "uci commit dhcp" in calls


def test_init_start_places_the_snippet_and_runs_serve(init, tmp_path):
    (tmp_path / "dnsmasq.conf").write_text("dhcp-hostsdir=/x\n")
    _, calls = init("start_service", confdir=str(tmp_path / "confdir"))
    assert (tmp_path / "confdir" / "phoneprov.conf").read_text() == "dhcp-hostsdir=/x\n"
    params = [c for c in calls if c.startswith("procd_")]
    assert params[0] == "procd_open_instance serve"
    assert f"procd_set_param command {tmp_path / 'bin' / 'phoneprov'} serve" in params
    assert "procd_set_param env PHONEPROV_CONFIG=/etc/phoneprov/phoneprov.toml" in params
    assert "procd_set_param respawn 300 10 12" in params
    assert params[-1] == "procd_close_instance"


def test_init_never_reloads_dnsmasq():
    """reload = SIGHUP to dnsmasq (procd's default signal): DESIGN §3, dnsmasq crashes."""
    code = [line for line in SHELL_FILES["init"].read_text().splitlines() if "#" not in line]
    assert not [line for line in code if "dnsmasq reload" in line or 'dnsmasq" reload' in line]
    assert any("/etc/init.d/dnsmasq restart" in line for line in code)


# --- the recipe: what Package/phoneprov/install puts into the package --------------------

MAKEFILE = OPENWRT / "Makefile"
# Stand-ins for OpenWrt's rules.mk and package.mk: the install commands as OpenWrt defines
# them, and a `stage` target that runs the recipe's Build/Prepare, Build/Compile and
# Package/phoneprov/install into a directory, as OpenWrt's package build does.
STUB_PACKAGE_MK = """\
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
CP := cp -fpR
define BuildPackage
stage:
\trm -rf $(PKG_BUILD_DIR) $(STAGE)
\t$(call Build/Prepare)
\t$(call Build/Compile)
\t$(call Package/$(1)/install,$(STAGE))
endef
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """The package's files, made by running the recipe (its sources: the checkout's HEAD)."""
    if shutil.which("make") is None:
        pytest.skip("needs make")
    work = tmp_path_factory.mktemp("openwrt-build")
    (work / "rules.mk").write_text("")
    (work / "package.mk").write_text(STUB_PACKAGE_MK)
    stage = work / "stage"
    subprocess.run(
        [
            *("make", "-s", "-C", str(OPENWRT), f"TOPDIR={work}", f"INCLUDE_DIR={work}"),
            *(f"BUILD_DIR={work / 'build'}", f"STAGE={stage}", "stage"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return stage


def make_block(name: str) -> list[str]:
    """The lines of `define NAME` ... `endef` in the recipe."""
    lines = MAKEFILE.read_text().splitlines()
    start = lines.index(f"define {name}")
    return lines[start + 1 : lines.index("endef", start)]


def committed() -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", "-z", "HEAD"],
        capture_output=True,
        check=True,
    ).stdout
    return [path for path in out.decode().split("\0") if path]


def committed_bytes(path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True, check=True
    ).stdout


def sed_config() -> bytes:
    """conf/phoneprov.toml (HEAD) through phoneprov-toml.sed, as Build/Prepare makes it."""
    return subprocess.run(
        ["sed", "-f", str(OPENWRT / "phoneprov-toml.sed")],
        input=committed_bytes("conf/phoneprov.toml"),
        capture_output=True,
        check=True,
    ).stdout


# What the package must hold: {path on the router: (where it comes from, mode)}. Sources
# under files/ are this checkout's; the rest is the commit the recipe builds (HEAD).
def expected_package() -> dict[str, tuple[str, int]]:
    lib = "/usr/lib/phoneprov"
    files = {
        f"{lib}/{path}": (path, 0o644)
        for path in committed()
        if path.startswith("plugin/phoneprov/")
    }
    files |= {
        f"{lib}/conf/{path[5:]}": (path, 0o644)
        for path in committed()
        if path.startswith("conf/templates/")
    }
    own = "conf/openwrt/files/"
    files |= {
        f"{lib}/hooks/dnsmasq-dhcp-script": ("hooks/dnsmasq-dhcp-script", 0o755),
        f"{lib}/conf/inventory.toml": ("conf/inventory.toml", 0o644),
        f"{lib}/conf/openwrt/phoneprov.toml": ("(sed)", 0o644),
        "/usr/bin/phoneprov": (own + "phoneprov.bin", 0o755),
        "/etc/init.d/phoneprov": (own + "phoneprov.init", 0o755),
        "/etc/hotplug.d/dhcp/50-phoneprov": (own + "phoneprov.hotplug", 0o644),
        "/etc/uci-defaults/90-phoneprov": (own + "phoneprov.uci-defaults", 0o755),
        "/lib/upgrade/keep.d/phoneprov": (own + "phoneprov.keep", 0o644),
    }
    return files


def staged_files(stage: Path) -> dict[str, Path]:
    return {"/" + str(p.relative_to(stage)): p for p in stage.rglob("*") if not p.is_dir()}


def test_the_package_holds_exactly_the_appliances_files(package):
    """The whole Python package (the command line imports every adapter; its data files),
    the hook, the example inventory and templates, the OpenWrt config and the files in
    conf/openwrt/files, byte for byte and with their modes; nothing else."""
    staged = staged_files(package)
    expected = expected_package()
    assert sorted(set(expected) - set(staged)) == []
    assert sorted(set(staged) - set(expected)) == []
    for path, (source, mode) in expected.items():
        if source == "(sed)":
            wanted = sed_config()
        elif source.startswith("conf/openwrt/files/"):
            wanted = (ROOT / source).read_bytes()
        else:
            wanted = committed_bytes(source)
        assert staged[path].read_bytes() == wanted, path
        assert staged[path].stat().st_mode & 0o7777 == mode, path
    assert not [p for p in staged if "__pycache__" in p or p.endswith(".pyc")]


def test_every_file_in_conf_openwrt_files_is_in_the_package():
    shipped = {source for source, _ in expected_package().values()}
    assert (
        sorted(
            f"conf/openwrt/files/{p.name}"
            for p in (OPENWRT / "files").iterdir()
            if f"conf/openwrt/files/{p.name}" not in shipped
        )
        == []
    )


def test_the_packages_hook_records_a_lease_through_the_handler(package, tmp_path):
    """The hook as the package lays it out (hooks/ beside plugin/), run by the handler."""
    hook = package / "usr/lib/phoneprov/hooks/dnsmasq-dhcp-script"
    shell = SHELLS["busybox"] or SHELLS["dash"]
    if shell is None:
        pytest.skip("needs busybox or dash")
    hotplug = Hotplug(tmp_path, shell)
    text = hotplug.handler.read_text().replace(
        f"phoneprov_hook='{HOOK}'", f"phoneprov_hook='{hook}'"
    )
    hotplug.handler.write_text(text)
    hotplug.run(**event("add", HOSTNAME="d200"))
    assert hotplug.argvs() == [f"-IS {hook} add {KNOWN} 10.231.0.100 d200"]
    assert hotplug.leases()["00095200000E"].hostname == "d200"
    assert hotplug.hook_log() == ""


def test_the_paths_the_shell_files_use_are_the_packages():
    package = expected_package()
    init = SHELL_FILES["init"].read_text()
    defaults = SHELL_FILES["uci-defaults"].read_text()
    hook = SHIPPED_HOOK.strip().split("=", 1)[1]
    assert package[hook][0] == "hooks/dnsmasq-dhcp-script"
    assert SHIPPED_PYTHON == "phoneprov_python=/usr/bin/python3\n"
    assert HOOK.read_text().startswith("#!/usr/bin/python3 -IS\n")  # the same interpreter
    assert package["/usr/bin/phoneprov"][0].endswith("phoneprov.bin")
    assert "PHONEPROV=/usr/bin/phoneprov\n" in init
    plugin = "/usr/lib/phoneprov/plugin"
    assert f"{plugin}/phoneprov/cli/__init__.py" in package
    assert f'sys.path.insert(0, "{plugin}")' in (OPENWRT / "files" / "phoneprov.bin").read_text()
    assert "PYTHONPATH" not in init  # serve passes uWSGI --pythonpath itself
    assert "phoneprov_shipped=/usr/lib/phoneprov/conf\n" in defaults
    for shipped in ("openwrt/phoneprov.toml", "inventory.toml", "templates"):
        assert f'"$phoneprov_shipped/{shipped}"' in defaults
    assert "/etc/hotplug.d/dhcp/50-phoneprov" in package
    assert "/etc/hotplug.d/dhcp/50-phoneprov" in init  # the snippet's note
    assert (OPENWRT / "files" / "phoneprov.keep").read_text() == "/etc/phoneprov/\n"


def test_the_prerm_detaches_with_the_init_scripts_command():
    prerm = "\n".join(make_block("Package/phoneprov/prerm"))
    assert "/etc/init.d/phoneprov detach" in prerm
    assert 'EXTRA_COMMANDS="snippet detach"' in SHELL_FILES["init"].read_text()


def test_the_recipe_depends_on_openwrts_python_packages():
    text = MAKEFILE.read_text()
    depends = text.split("DEPENDS:=", 1)[1].split("\nendef", 1)[0].replace("\\\n", " ").split()
    assert set(depends) == {
        "+python3-light",
        "+python3-sqlite3",  # split out of python3-light: the state database, the hook
        "+python3-asyncio",  # SIP
        "+python3-logging",
        "+python3-ctypes",  # syncfs for apply, sync and export (durable.py)
        "+python3-urllib",  # doctor's fetch (phone/simulator.py)
        "+python3-click",
        "+python3-flask",
        "+python3-jinja2",
        "+python3-lxml",
        "+uwsgi",
        "+uwsgi-python3-plugin",
    }
    assert "PKGARCH:=all" in text


# --- the OpenWrt example config: conf/phoneprov.toml through phoneprov-toml.sed ----------


def openwrt_config(tmp_path: Path) -> Path:
    """The config the package installs as /usr/lib/phoneprov/conf/openwrt/phoneprov.toml,
    made as Build/Prepare makes it, beside the example inventory and templates."""
    script = OPENWRT / "phoneprov-toml.sed"
    assert f"sed -f ./{script.name} $(PKG_BUILD_DIR)/conf/phoneprov.toml" in MAKEFILE.read_text()
    out = subprocess.run(
        ["sed", "-f", str(script), str(ROOT / "conf" / "phoneprov.toml")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = tmp_path / "phoneprov.toml"
    path.write_text(out)
    shutil.copy(ROOT / "conf" / "inventory.toml", tmp_path / "inventory.toml")
    shutil.copytree(ROOT / "conf" / "templates", tmp_path / "templates")
    return path


def test_every_sed_line_changes_exactly_one_line_of_the_config(tmp_path):
    """A key renamed or moved in conf/phoneprov.toml must not silently keep a Debian path."""
    original = (ROOT / "conf" / "phoneprov.toml").read_text().splitlines()
    script = [
        line
        for line in (OPENWRT / "phoneprov-toml.sed").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    for expression in script:
        out = subprocess.run(
            ["sed", "-e", expression, str(ROOT / "conf" / "phoneprov.toml")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert len(out) == len(original)
        assert sum(a != b for a, b in zip(original, out, strict=True)) == 1, expression


def test_the_openwrt_config_passes_the_schema_with_openwrts_paths(tmp_path):
    from phoneprov.config import load_config

    config = load_config(openwrt_config(tmp_path))
    assert str(config.dhcp.hostsdir) == "/etc/phoneprov/dnsmasq/hosts"
    assert str(config.dhcp.optsdir) == "/etc/phoneprov/dnsmasq/opts"
    assert str(config.state) == "/etc/phoneprov/state/state.db"
    assert str(config.security.secret_file) == "/etc/phoneprov/secret"
    assert str(config.dhcp.leasefile) == "/tmp/dhcp.leases"
    assert str(config.dhcp.dnsmasq_pidfile) == "/var/run/dnsmasq/dnsmasq.cfg01411c.pid"
    assert config.server.interface == "br-lan"
    assert config.server.http == "socket"  # OpenWrt's uwsgi has no HTTP router
    assert "/var/lib/" not in (tmp_path / "phoneprov.toml").read_text()
    # what the handler and the init script expect of it
    settings = SHIPPED_SETTINGS.strip().split("=", 1)[1]
    assert settings == f"{config.dhcp.hostsdir}/.phoneprov-applied"
    init = SHELL_FILES["init"].read_text()
    assert f"PHONEPROV_DNSMASQ_DIR={config.dhcp.hostsdir.parent}\n" in init
    assert config.dhcp.optsdir.parent == config.dhcp.hostsdir.parent
    assert f"PHONEPROV_CONFIG={DEFAULT_CONFIG}\n" in init


def test_the_uci_defaults_edits_find_their_lines(tmp_path):
    """uci-defaults puts the LAN device and the dnsmasq section's pid file into the config
    with sed: each of its patterns must match one line of the shipped OpenWrt config."""
    lines = openwrt_config(tmp_path).read_text().splitlines()
    assert sum(line == 'interface = "br-lan"' for line in lines) == 1
    assert sum(line.endswith('/dnsmasq.cfg01411c.pid"') for line in lines) == 1
    defaults = SHELL_FILES["uci-defaults"].read_text()
    assert 's|^interface = \\"br-lan\\"\\$|' in defaults
    assert 's|/dnsmasq\\.cfg01411c\\.pid\\"\\$|' in defaults
