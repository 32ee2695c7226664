"""The doctor's rules: facts in, findings (with fixes) out; and its dnsmasq parsers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phoneprov.core.dnsmasq_cmdline import (
    cmdline_directives,
    conf_dir_includes,
    conf_directives,
    parse_version,
)
from phoneprov.core.findings import (
    DeviceCheck,
    DnsmasqProcess,
    Facts,
    PathState,
    blocked_for_others,
    diagnose,
)

HOSTS, OPTS = "/var/lib/phoneprov/dnsmasq/hosts", "/var/lib/phoneprov/dnsmasq/opts"
SNIPPET = "/etc/dnsmasq.d/phoneprov.conf"
HOOK = "/opt/phoneprov/hooks/dnsmasq-dhcp-script"
OURS = DnsmasqProcess(
    412,
    65534,
    (
        ("command line of pid 412", "conf-dir", "/etc/dnsmasq.d"),
        (SNIPPET, "dhcp-hostsdir", HOSTS),
        (SNIPPET, "dhcp-optsdir", OPTS),
        (SNIPPET, "dhcp-script", HOOK),
    ),
)
OTHER = DnsmasqProcess(77, 65534, (("/etc/libvirt/default.conf", "dhcp-hostsdir", "/x"),))
DEVICE = DeviceCheck(
    mac="00095200000E",
    type="D200",
    source="inventory (D200)",
    options={"42": ["10.0.0.1"], "43": None, "66": "http://10.0.0.1:8080", "67": "prov.py"},
    url="http://10.0.0.1:8080/prov.py?mac=00095200000E",
    applied=True,
    fetched="http://10.0.0.1:8080/t/abc/prov.py?mac=00095200000E",
    files=2,
    size=1234,
)
HEALTHY = Facts(
    hostsdir=HOSTS,
    per_mac=True,
    security_mode="lease",
    dnsmasq=(OTHER, OURS),
    version="2.90",
    dirs=(PathState(HOSTS, True, True, entries=1), PathState(OPTS, True, True, entries=1)),
    hook=PathState(HOOK, True, executable=True, interpreter="/usr/bin/python3"),
    state="/var/lib/phoneprov/state.db",
    listen="0.0.0.0:8080",
    ntp=("10.0.0.1",),
    devices=(DEVICE,),
)


def levels(facts: Facts, topic: str) -> list[tuple[str, str, str]]:
    return [(f.level, f.message, f.fix) for f in diagnose(facts) if f.topic.startswith(topic)]


def failures(facts: Facts) -> list[str]:
    return [f.topic for f in diagnose(facts) if f.level == "fail"]


def test_healthy_appliance_has_no_failure_and_names_what_it_checked():
    assert failures(HEALTHY) == []
    dnsmasq = levels(HEALTHY, "dnsmasq")
    assert dnsmasq[0][0] == "ok" and "dnsmasq 2.90 running (pid 412" in dnsmasq[0][1]
    assert SNIPPET in dnsmasq[0][1] and "pid 77" not in dnsmasq[0][1]
    device = levels(HEALTHY, "device 00095200000E D200")
    assert [m for _l, m, _f in device][1:] == [
        f"url {DEVICE.url}",
        f"files ok: 2 file(s), 1234 bytes (fetched as {DEVICE.fetched})",
    ]


def test_sighup_warning_names_the_crashing_version_and_says_restart():
    ((_level, message, fix),) = [x for x in levels(HEALTHY, "dnsmasq") if x[0] == "warn"]
    assert "SIGHUP" in message and "dnsmasq 2.90 crashes on reload" in message
    assert fix.endswith("systemctl restart dnsmasq")
    newer = levels(replace(HEALTHY, version="2.91"), "dnsmasq")
    assert any("2.91: not verified" in m for _l, m, _f in newer)
    # vendor mode writes no host files: no hazard
    vendor = levels(replace(HEALTHY, per_mac=False), "dnsmasq")
    assert [lv for lv, _m, _f in vendor] == ["ok"]


def test_dnsmasq_missing_or_without_snippet_fails_with_the_fix():
    down = replace(HEALTHY, dnsmasq=())
    assert levels(down, "dnsmasq")[0][:3] == (
        "fail",
        "dnsmasq is not running",
        "systemctl start dnsmasq",
    )
    foreign = levels(replace(HEALTHY, dnsmasq=(OTHER,)), "dnsmasq")
    assert foreign[0][0] == "fail" and "pid 77" in foreign[0][1]
    assert "dnsmasq-snippet" in foreign[0][2] and "restart" in foreign[0][2]


@pytest.mark.parametrize(
    ("state", "fix"),
    [
        (PathState(HOSTS, True, True, blocked_at=HOSTS), f"chmod 0755 {HOSTS}"),
        (
            PathState(HOSTS, True, True, blocked_at="/var/lib/phoneprov"),
            "chmod o+rx /var/lib/phoneprov",
        ),
        (PathState(HOSTS, True, True, unreadable=("00095200000E",)), f"chmod 0644 {HOSTS}/*"),
        (PathState(HOSTS, False), f"install -d -m 0755 {HOSTS}"),
    ],
)
def test_hostsdir_nobody_cannot_read_fails_with_the_chmod(state: PathState, fix: str):
    facts = replace(HEALTHY, dirs=(state, HEALTHY.dirs[1]))
    ((level, _message, got),) = levels(facts, "files")[:1]
    assert level == "fail" and got.startswith(fix)
    # dnsmasq started with --user=root reads anything: modes are no problem then
    as_root = replace(facts, dnsmasq=(replace(OURS, uid=0),))
    assert levels(as_root, "files")[0][0] == ("fail" if not state.exists else "ok")


def test_hook_missing_fails_in_lease_mode_only():
    assert levels(replace(HEALTHY, hook=None), "hook")[0][0] == "fail"
    assert levels(replace(HEALTHY, hook=None, security_mode="token"), "hook")[0][0] == "warn"
    cases = {
        PathState(HOOK, False): "does not exist",
        PathState(HOOK, True, executable=False): "not executable",
        PathState(HOOK, True, executable=True, interpreter="/nope", interpreter_ok=False): "/nope",
    }
    for hook, words in cases.items():
        ((level, message, fix),) = levels(replace(HEALTHY, hook=hook), "hook")
        assert level == "fail" and words in message and fix


def test_state_not_created_yet_is_fine_when_it_can_be():
    fresh = replace(HEALTHY, state_exists=False)
    assert levels(fresh, "state") == [
        ("ok", f"{HEALTHY.state} not created yet; its directory is writable", "")
    ]
    blocked = replace(fresh, state_error="does not exist, and /x is no writable directory")
    assert levels(blocked, "state")[0][0] == "fail"


def test_state_http_ntp():
    broken = replace(
        HEALTHY,
        state_error="not writable: attempt to write a readonly database",
        http_error="refused",
    )
    assert failures(broken) == ["state", "http"]
    ((level, message, fix),) = levels(replace(HEALTHY, ntp=()), "ntp")
    assert level == "warn" and "no NTP server" in message and "dhcp.ntp" in fix


@pytest.mark.parametrize(
    ("status", "words"),
    [(0, "phoneprov serve running"), (403, "secret file"), (404, "render"), (500, "template")],
)
def test_device_fetch_failure_says_what_to_do(status: int, words: str):
    device = replace(DEVICE, error=f"fetching x gave HTTP {status}", status=status, files=0)
    findings = levels(replace(HEALTHY, devices=(device,)), "device")
    assert findings[-1][0] == "fail" and "fetch failed" in findings[-1][1]
    assert words in findings[-1][2]


def test_device_without_options_or_not_applied():
    none = replace(
        DEVICE,
        options=dict.fromkeys(("42", "43", "66", "67")),
        source="none: not in the inventory",
        url=None,
    )
    assert levels(replace(HEALTHY, devices=(none,)), "device") == [
        ("fail", "gets no options: none: not in the inventory", "add it to the inventory")
    ]
    stale = levels(replace(HEALTHY, devices=(replace(DEVICE, applied=False),)), "device")
    assert ("warn", "dnsmasq's files for it differ from the inventory", "phoneprov apply") in stale


def test_parsers():
    assert parse_version("garbage") is None
    argv = ["dnsmasq", "-k", "--conf-file", "/s.conf", "--dhcp-hostsdir=/h", "-u", "nobody", "-x/p"]
    assert cmdline_directives(argv) == [
        ("conf-file", "/s.conf"),
        ("dhcp-hostsdir", "/h"),
        ("user", "nobody"),
        ("pid-file", "/p"),
    ]
    assert conf_directives('dhcp-script=/x # comment\n#dhcp-hostsdir=/no\nx="a #b"') == [
        ("dhcp-script", "/x"),
        ("x", '"a #b"'),
    ]
    assert conf_dir_includes("/etc/dnsmasq.d", "phoneprov.conf")
    assert not conf_dir_includes("/etc/dnsmasq.d,*.conf,*.cnf", "x.dpkg-old")
    assert blocked_for_others([("/", 0o40755), ("/h", 0o40755), ("/h/f", 0o100644)]) == ""
    assert blocked_for_others([("/", 0o40755), ("/h", 0o40744)]) == "/h"


def test_a_world_readable_inventory_is_a_warning_with_the_chmod():
    inventory = "/etc/phoneprov/inventory.toml"
    assert levels(replace(HEALTHY, inventory=inventory), "inventory") == [
        ("ok", f"{inventory}: not readable by other users (it holds SIP passwords)", "")
    ]
    exposed = replace(HEALTHY, inventory=inventory, world_readable=(inventory,))
    assert levels(exposed, "inventory") == [
        (
            "warn",
            f"{inventory} is readable by every user, and it holds SIP passwords",
            f"chmod o-rwx {inventory}",
        )
    ]
    assert failures(exposed) == []
