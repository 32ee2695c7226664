"""The hook on a busy state database: it waits about a second at most, never loses an event
(a spool file beside the database, replayed in order), and still exits 0."""

import io
import os
import pwd
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phoneprov.dnsmasq import hook
from phoneprov.state.db import State
from sample_data import write_hook_site

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "hooks" / "dnsmasq-dhcp-script"
LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("UPDATE leases SET last_seen = last_seen")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@pytest.fixture
def site(tmp_path):
    return write_hook_site(tmp_path)


def env(site):
    return {
        "PATH": "/usr/bin:/bin",
        "PHONEPROV_HOOK_SETTINGS": str(site / "hosts" / ".phoneprov-applied"),
        "DNSMASQ_LEASE_EXPIRES": "2000000000",
    }


def run_in_process(site, *argv):
    assert hook.main(["hook", *argv], env(site), io.StringIO()) == 0


def active(site):
    if not (site / "state.db").exists():
        return {}
    with State(site / "state.db") as state:
        return {lease.mac: lease.ip for lease in state.leases()}


def wait_until(check, timeout):
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    return check()


def mac_ip(i):
    return f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", f"10.231.{i // 250}.{i % 250 + 1}"


def test_spooled_events_are_replayed_in_order_by_the_next_run(site, monkeypatch):
    monkeypatch.setattr(hook, "start_drainer", lambda *a: None, raising=False)  # next run
    State(site / "state.db").close()
    (site / "state.db").chmod(0o640)
    holder = sqlite3.connect(site / "state.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    run_in_process(site, "add", "02:00:00:00:00:01", "10.231.0.5")
    run_in_process(site, "del", "02:00:00:00:00:01", "10.231.0.5")
    run_in_process(site, "add", "02:00:00:00:00:01", "10.231.0.6")
    assert time.monotonic() - started < 6  # three events; before: 10 s each, all lost
    spool = site / "state.db.spool"
    assert len(spool.read_text().splitlines()) == 3
    assert stat.S_IMODE(spool.stat().st_mode) == 0o640  # as readable as the database
    holder.execute("ROLLBACK")
    holder.close()
    run_in_process(site, "old", "02:00:00:00:00:02", "10.231.0.7")
    assert active(site) == {"020000000001": "10.231.0.6", "020000000002": "10.231.0.7"}
    assert spool.read_text() == ""


def test_an_old_spooled_event_never_undoes_a_newer_one(site):
    from phoneprov.state.hookdb import LeaseDb
    from phoneprov.state.spool import Spool

    State(site / "state.db").close()
    db_path = str(site / "state.db")
    spool = Spool(db_path + ".spool")
    older = {"mac": "020000000001", "ip": "10.231.0.5"}
    spool.append([("lease", LeaseDb.lease_params(older, 50.0))])
    with LeaseDb(db_path) as db:  # a newer event went in directly (a replay cut short)
        db.commit([("lease", LeaseDb.lease_params({**older, "ip": "10.231.0.6"}, 100.0))])
    with LeaseDb(db_path) as db:
        db.commit([], spool)
    assert active(site) == {"020000000001": "10.231.0.6"}


def test_a_30s_write_lock_holds_no_event_longer_than_about_a_second(site):
    State(site / "state.db").close()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(site / "state.db"), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    took, sent = [], {}
    with locker:
        assert locker.stdout is not None and locker.stdout.readline() == "locked\n"
        while locker.poll() is None and len(sent) < 15:
            mac, ip = mac_ip(len(sent))
            start = time.monotonic()
            subprocess.run([str(HOOK), "add", mac, ip], env=env(site), check=True, timeout=60)
            took.append(time.monotonic() - start)
            sent[mac.replace(":", "").upper()] = ip
            time.sleep(1.5)
        assert locker.wait(timeout=60) == 0
    assert len(sent) >= 8 and max(took) < 3.0, took  # before: 10 s, then the lease was lost
    # recorded once the lock is gone, with no further DHCP event
    assert wait_until(lambda: active(site) == sent, 20), (active(site), sent)
    assert (site / "state.db.spool").read_text() == ""


def test_a_burst_of_1000_simultaneous_events_loses_none(site):
    events = [mac_ip(i) for i in range(1000)]
    procs = [
        subprocess.Popen(
            [str(HOOK), "add", mac, ip],
            env=env(site),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for mac, ip in events
    ]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0] * len(events)
    expected = {mac.replace(":", "").upper(): ip for mac, ip in events}
    assert wait_until(lambda: active(site) == expected, 60), len(active(site))


def test_without_a_database_to_write_the_event_is_kept_and_exit_is_0(site, monkeypatch, capsys):
    monkeypatch.setattr(hook, "start_drainer", lambda *a: None, raising=False)
    (site / "state.db").write_bytes(b"this is not an SQLite database" * 10)
    run_in_process(site, "add", "02:00:00:00:00:01", "10.231.0.5")
    err = capsys.readouterr().err
    assert err.startswith("phoneprov-hook: ") and "state.db.spool" in err, err
    (site / "state.db").unlink()
    run_in_process(site, "old", "02:00:00:00:00:02", "10.231.0.7")
    assert active(site) == {"020000000001": "10.231.0.5", "020000000002": "10.231.0.7"}
    assert os.path.getsize(site / "state.db.spool") == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the hook runs as root)")
def test_root_never_writes_through_a_link_in_the_service_users_directory(site):
    """The state directory belongs to the service user; a link it puts in place of the
    database must not make the root hook write into the link's target."""
    target = site / "precious"
    target.write_bytes(b"")  # empty, root's, 0600: SQLite as root would make it a database
    target.chmod(0o600)
    (site / "state.db").unlink(missing_ok=True)
    (site / "state.db").symlink_to(target)
    nobody = pwd.getpwnam("nobody")
    os.chown(site, nobody.pw_uid, nobody.pw_gid)
    try:
        run_in_process(site, "add", "00:09:52:00:00:0e", "10.231.0.100")
        assert target.read_bytes() == b""
        assert os.geteuid() == 0 and os.getegid() == 0  # the hook gave root back
    finally:
        os.chown(site, 0, 0)
