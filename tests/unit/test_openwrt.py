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
