import io
import subprocess
import sys
from pathlib import Path

import pytest

from phoneprov.config import load_config
from phoneprov.core.mac import norm_mac
from phoneprov.dnsmasq import hook
from phoneprov.dnsmasq.apply import apply
from phoneprov.state.db import State
from sample_data import write_hook_site

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "hooks" / "dnsmasq-dhcp-script"
KNOWN = "00:09:52:00:00:0e"
UNKNOWN = "00:09:52:00:00:77"
STRANGER = "02:00:00:00:00:01"
FULL_ENV = {
    "DNSMASQ_INTERFACE": "eth0",
    "DNSMASQ_VENDOR_CLASS": "Auerswald D200",
    "DNSMASQ_REQUESTED_OPTIONS": "1,3,6,42,43,66,67",
    "DNSMASQ_TAGS": "eth0 known",
    "DNSMASQ_LEASE_EXPIRES": "2000000000",
}


@pytest.fixture
def site(tmp_path):
    return write_hook_site(tmp_path, 'ntp = ["10.231.0.1"]\ndefault_type = "D100"\n')


def settings_file(site):
    return site / "hosts" / ".phoneprov-applied"


def run(site, *argv, **env):
    out = io.StringIO()
    environ = {"PHONEPROV_HOOK_SETTINGS": str(settings_file(site)), **env}
    assert hook.main(["hook", *argv], environ, out) == 0
    return out.getvalue()


def leases(site):
    with State(site / "state.db") as state:
        return {lease.mac: lease for lease in state.leases(include_inactive=True)}


def test_add_records_everything_dnsmasq_tells(site):
    run(site, "add", KNOWN, "10.231.0.100", "d200", **FULL_ENV)
    lease = leases(site)["00095200000E"]
    assert (lease.ip, lease.hostname, lease.interface, lease.vendor_class) == (
        "10.231.0.100",
        "d200",
        "eth0",
        "Auerswald D200",
    )
    assert (lease.requested_options, lease.tags, lease.expires) == (
        "1,3,6,42,43,66,67",
        "eth0 known",
        2000000000,
    )
    assert lease.active


def test_data_missing_keeps_what_was_known(site):
    run(site, "add", KNOWN, "10.231.0.100", **FULL_ENV)
    run(site, "old", KNOWN, "10.231.0.100", DNSMASQ_DATA_MISSING="1", DNSMASQ_INTERFACE="x")
    lease = leases(site)["00095200000E"]
    assert (lease.vendor_class, lease.interface, lease.tags) == (
        "Auerswald D200",
        "eth0",
        "eth0 known",
    )


def test_del_releases_the_lease(site):
    run(site, "add", KNOWN, "10.231.0.100", **FULL_ENV)
    run(site, "del", KNOWN, "10.231.0.100", DNSMASQ_DATA_MISSING="1")
    assert not leases(site)["00095200000E"].active


def test_init_prints_unexpired_leases_in_lease_file_format(site):
    run(site, "add", KNOWN, "10.231.0.100", "d200", **FULL_ENV)
    run(site, "add", STRANGER, "10.231.0.101", DNSMASQ_LEASE_EXPIRES="5")  # long expired
    assert run(site, "init") == "2000000000 00:09:52:00:00:0e 10.231.0.100 d200 *\n"


def test_vendor_phones_are_discovered_by_oui_or_class(site):
    run(site, "add", UNKNOWN, "10.231.0.102")
    run(site, "add", STRANGER, "10.231.0.103", DNSMASQ_VENDOR_CLASS="Auerswald COMfortel")
    run(site, "add", "02:00:00:00:00:02", "10.231.0.104", DNSMASQ_VENDOR_CLASS="Linux")
    run(site, "add", KNOWN, "10.231.0.100")
    with State(site / "state.db") as state:
        found = {d.mac: d.reason for d in state.discovered()}
    assert found == {"000952000077": "oui 000952", "020000000001": "vendor class Auerswald"}


def test_auto_enrol_writes_the_phones_files_at_once(site):
    config = (site / "pp.toml").read_text().replace("[dhcp]\n", "[dhcp]\nauto_enrol = true\n")
    (site / "pp.toml").write_text(config)
    apply(load_config(site / "pp.toml"))  # the hook takes its settings from the last apply
    run(site, "add", UNKNOWN, "10.231.0.102")
    assert (site / "hosts" / "000952000077").read_text().startswith("00:09:52:00:00:77,set:")
    assert '66,"http://10.231.0.1:8080"' in (site / "opts" / "000952000077").read_text()
    with State(site / "state.db") as state:
        assert [(e["mac"], e["type"]) for e in state.enrolled()] == [("000952000077", "D100")]
    run(site, "old", UNKNOWN, "10.231.0.102")  # known now: nothing more happens
    assert (site / "inventory.toml").read_text().count("[[devices]]") == 1  # never rewritten


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        ([], {}),
        (["add"], {}),
        (["add", KNOWN], {}),
        (["add", "zz:09:52:00:00:0e", "10.231.0.1"], {}),
        (["add", KNOWN, "10.231.0.300"], {}),
        (["add", KNOWN, "10.231.0.1"], {"PHONEPROV_HOOK_SETTINGS": "/nonexistent/.applied"}),
        (["reboot"], {}),
        (["add", "\udcff", "\x00"], {}),
    ],
)
def test_garbage_is_one_error_line_exit_0_and_loses_nothing(site, capsys, argv, env):
    run(site, "add", KNOWN, "10.231.0.100", **FULL_ENV)
    before = leases(site)
    run(site, *argv, **env)
    err = capsys.readouterr().err
    assert err.startswith("phoneprov-hook: error:") and err.count("\n") == 1
    assert leases(site) == before


def test_garbage_environment_is_tolerated(site):
    run(site, "add", KNOWN, "10.231.0.100", DNSMASQ_LEASE_EXPIRES="soon", DNSMASQ_TAGS="\x01\x02")
    assert leases(site)["00095200000E"].expires is None


def test_other_actions_and_dhcpv6_are_ignored_quietly(site, capsys):
    run(site, "tftp", "1234", "10.231.0.5", "/file")
    run(site, "add", "00:01:00:01:2c:aa", "fd00::5", DNSMASQ_IAID="1")
    assert capsys.readouterr().err == ""


def test_the_hook_reads_what_apply_resolved_from_the_config(site):
    ours, full = hook.HookSettings(str(settings_file(site))), load_config(site / "pp.toml")
    assert Path(ours.hostsdir) == full.dhcp.hostsdir and Path(ours.state) == full.state
    assert ours.vendor_ouis == list(full.dhcp.vendor_ouis) == ["000952"]
    assert ours.vendor_classes == list(full.dhcp.vendor_classes)
    assert (ours.auto_enrol, ours.mode) == (full.dhcp.auto_enrol, full.dhcp.mode)
    assert Path(ours.config) == full.path.absolute()
    assert not list(site.glob(".*cache*")), "no cache of its own beside the config"


def test_without_settings_from_apply_one_line_and_exit_0(tmp_path, capsys):
    missing = tmp_path / "hosts" / ".phoneprov-applied"
    out = io.StringIO()
    env = {"PHONEPROV_HOOK_SETTINGS": str(missing)}
    assert hook.main(["hook", "add", KNOWN, "10.231.0.100"], env, out) == 0
    err = capsys.readouterr().err
    assert err.startswith("phoneprov-hook: error: no settings from `phoneprov apply` at ")
    assert err.count("\n") == 1


def test_a_foreign_settings_file_is_refused_in_one_line(site, capsys):
    settings_file(site).write_text("mode=66+67\nhostsdir=/tmp\n")
    run(site, "add", KNOWN, "10.231.0.100")
    assert "not a line `phoneprov apply` writes" in capsys.readouterr().err
    assert "00095200000E" not in leases(site)


# Not on the hook's path: heavy packages, and what the common path must not pay per event.
HEAVY = {"flask", "lxml", "pyroute2", "click", "jinja2", "dataclasses", "tomllib"}
PER_EVENT = {"typing", "re", "json", "sqlite3", "functools", "collections", "datetime"}


@pytest.mark.parametrize("mac", [KNOWN, UNKNOWN])
def test_the_script_imports_nothing_heavy_and_exits_0(site, mac):
    State(site / "state.db").close()  # only a brand-new database needs the full State
    env = {"PHONEPROV_HOOK_SETTINGS": str(settings_file(site)), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-IS", "-X", "importtime", str(HOOK), "add", mac, "10.231.0.100"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert not [line for line in lines if line.startswith("phoneprov-hook:")], result.stderr
    imported = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    assert "phoneprov.state.hookdb" in imported, result.stderr
    assert {name.split(".")[0] for name in imported} & (HEAVY | PER_EVENT) == set()
    assert norm_mac(mac) in leases(site)


def test_the_hooks_sqlite_is_the_standard_one_without_functools(tmp_path):
    """`state.hookdb` loads `_sqlite3` with a stand-in for `functools.lru_cache`: the same
    connect and exceptions as `sqlite3`, a working statement cache, the real functools later."""
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'plugin')!r})\n"
        "from phoneprov.state import hookdb\n"
        "print(sorted({'functools', 'sqlite3', 'collections'} & set(sys.modules)))\n"
        f"db = hookdb.sqlite3.connect({str(tmp_path / 't.db')!r}, isolation_level=None)\n"
        "db.execute('CREATE TABLE t (n)')\n"
        "for n in range(300):  # more distinct statements than the cache holds, and repeats\n"
        "    db.execute(f'INSERT INTO t VALUES ({n % 150})')\n"
        "    db.execute('INSERT INTO t VALUES (?)', (n,))\n"
        "print(db.execute('SELECT count(*), sum(n) FROM t').fetchone())\n"
        "import functools, sqlite3\n"
        "print(functools.reduce(int.__add__, [1, 2]), functools.lru_cache(1)(abs).cache_info())\n"
        "print(hookdb.sqlite3.connect is sqlite3.connect, hookdb.Error is sqlite3.Error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-IS", "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.splitlines() == [
        "[]",
        "(600, 67200)",
        "3 CacheInfo(hits=0, misses=0, maxsize=1, currsize=0)",
        "True True",
    ], result.stderr


def test_an_edited_config_reaches_the_hook_with_the_next_apply(site):
    settings = str(settings_file(site))
    assert not hook.HookSettings(settings).auto_enrol
    text = (site / "pp.toml").read_text().replace("[dhcp]\n", "[dhcp]\nauto_enrol = true\n")
    (site / "pp.toml").write_text(text)
    assert not hook.HookSettings(settings).auto_enrol  # not applied yet
    apply(load_config(site / "pp.toml"))
    assert hook.HookSettings(settings).auto_enrol


def test_hook_and_state_write_the_same_rows(site, tmp_path):
    from phoneprov.state.db import Discovered, Lease
    from phoneprov.state.hookdb import LeaseDb

    row = {"mac": "00095200000E", "ip": "10.0.0.5", "hostname": "d", "expires": 9}
    with State(tmp_path / "a.db") as state:
        state.record_lease(Lease(**row), 1.0)
        state.record_lease(Lease("00095200000E", "10.0.0.6"), 2.0)
        state.release_lease("00095200000E", "10.0.0.6", 3.0)
        state.record_discovered(Discovered("000952000077", "10.0.0.7", None, "oui", 4.0, 4.0))
    with LeaseDb(str(tmp_path / "b.db")) as db:
        db.commit([("lease", LeaseDb.lease_params(row, 1.0))])
        db.commit([("lease", LeaseDb.lease_params({"mac": "00095200000E", "ip": "10.0.0.6"}, 2.0))])
        db.commit([("release", LeaseDb.release_params("00095200000E", "10.0.0.6", 3.0))])
        db.commit(
            [
                (
                    "discovered",
                    LeaseDb.discovered_params("000952000077", "10.0.0.7", None, "oui", 4.0),
                )
            ]
        )
    with State(tmp_path / "a.db") as a, State(tmp_path / "b.db") as b:
        assert a.leases(include_inactive=True) == b.leases(include_inactive=True)
        assert a.discovered() == b.discovered()


def test_a_broken_install_still_exits_0_with_one_error_line(tmp_path):
    lonely = tmp_path / "hooks" / HOOK.name  # no ../plugin beside it: phoneprov is missing
    lonely.parent.mkdir()
    lonely.write_bytes(HOOK.read_bytes())
    lonely.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-IS", str(lonely), "add", KNOWN, "10.231.0.100"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stderr.startswith("phoneprov-hook: error: cannot load phoneprov:")
