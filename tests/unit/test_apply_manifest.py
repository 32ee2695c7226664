"""apply's manifest: a no-op apply reads no file back (nor the inventory when its inputs are
the same), yet sees files changed behind its back; many files are flushed with syncfs,
never with a system-wide sync."""

import os

import pytest

from phoneprov.config import load_config
from phoneprov.core import dnsmasq_conf as conf
from phoneprov.dnsmasq import apply as apply_mod
from phoneprov.dnsmasq import fragdir, inputs
from phoneprov.dnsmasq.applied import APPLIED_NAME
from phoneprov.dnsmasq.apply import apply
from phoneprov.dnsmasq.manifest import MANIFEST_NAME, Manifest
from phoneprov.state.db import State

MACS = ("00:09:52:00:00:0e", "00:09:52:00:00:1f")


def make_site(tmp_path, macs=MACS):
    devices = "".join(
        f'[[devices]]\nmac = "{m}"\ntype = "D200"\nprofile = "default"\n' for m in macs
    )
    (tmp_path / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["office.xml"]\n' + devices
    )
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n[dhcp]\nmode = "both"\n'
        'ntp = ["10.231.0.1"]\nhostsdir = "hosts"\noptsdir = "opts"\n'
        '[security]\nsecret_file = "secret"\nmode = "token"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return load_config(tmp_path / "pp.toml")


def settle(tmp_path):
    """Date the manifest after every file (as it is once a clock tick has passed)."""
    manifest = tmp_path / "hosts" / MANIFEST_NAME
    later = manifest.stat().st_mtime_ns + 10**9
    os.utime(manifest, ns=(later, later))


@pytest.fixture
def opened(monkeypatch):
    """Names of device files opened (read back or written)."""
    names = []
    real = os.open

    def spy(path, flags, *args, **kwargs):
        name = os.fsdecode(path)
        if len(name) == 12 or name.endswith(".tmp"):
            names.append(name)
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return names


def test_a_no_op_apply_reads_no_file_and_writes_no_manifest(tmp_path, opened):
    config = make_site(tmp_path)
    apply(config)
    settle(tmp_path)
    before = (tmp_path / "hosts" / MANIFEST_NAME).stat()
    opened.clear()
    result = apply(config)
    assert result.unchanged == 2 and not result.written
    assert [n for n in opened if ".phoneprov" not in n] == []
    after = (tmp_path / "hosts" / MANIFEST_NAME).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("change", ["same size", "removed", "renamed over", "emptied"])
def test_a_file_changed_behind_our_back_is_rewritten(tmp_path, change):
    config = make_site(tmp_path)
    apply(config)
    settle(tmp_path)
    host = tmp_path / "hosts" / "00095200000E"
    good = host.read_text()
    if change == "same size":
        host.write_text(good.replace("phoneprov", "phoneXrov", 1))
        assert len(host.read_text()) == len(good)
    elif change == "removed":
        host.unlink()
    elif change == "renamed over":
        (tmp_path / "other").write_text(good[:-1] + " \n")
        os.replace(tmp_path / "other", host)
    else:
        host.write_text("")
    result = apply(config)
    assert result.written == ["00095200000E"] and result.unchanged == 1
    assert host.read_text() == good
    assert apply(config).written == []


def test_a_damaged_or_foreign_manifest_only_costs_reads(tmp_path):
    config = make_site(tmp_path)
    apply(config)
    manifest = tmp_path / "hosts" / MANIFEST_NAME
    manifest.write_text(manifest.read_text()[:-20])  # torn
    (tmp_path / "opts" / "00095200001F").write_text("garbage\n")
    result = apply(config)
    assert result.written == ["00095200001F"] and result.unchanged == 1
    assert Manifest.parse(manifest.read_text(), 1).sections  # rewritten whole


def test_tombstones_are_known_from_the_manifest(tmp_path, opened):
    apply(make_site(tmp_path))
    config = make_site(tmp_path, macs=MACS[:1])
    assert apply(config).removed == ["00095200001F"]
    settle(tmp_path)
    opened.clear()
    result = apply(config)
    assert (result.removed, result.unchanged) == ([], 1)
    assert [n for n in opened if ".phoneprov" not in n] == []
    tomb = (tmp_path / "hosts" / "00095200001F").read_text()
    assert tomb == conf.tombstone("00095200001F")


def test_many_files_are_flushed_with_syncfs_not_sync(tmp_path, monkeypatch):
    flushed = []
    monkeypatch.setattr(os, "sync", lambda: pytest.fail("os.sync() flushes the whole system"))
    real = fragdir.syncfs_fd
    monkeypatch.setattr(fragdir, "syncfs_fd", lambda fd: flushed.append(fd) or real(fd))
    macs = [f"00:09:52:00:01:{i:02x}" for i in range(fragdir.SYNC_ALL_ABOVE)]
    result = apply(make_site(tmp_path, macs))
    assert len(result.written) == fragdir.SYNC_ALL_ABOVE
    assert len(flushed) == 1  # both directories on one filesystem: one flush


@pytest.fixture
def loads(monkeypatch):
    """How many times apply loaded the inventory."""
    calls = []
    real = apply_mod.full_inventory
    monkeypatch.setattr(apply_mod, "full_inventory", lambda c: calls.append(1) or real(c))
    return calls


def test_unchanged_inputs_skip_loading_the_inventory(tmp_path, loads):
    config = make_site(tmp_path)
    apply(config)
    settle(tmp_path)
    assert apply(config).unchanged == 2 and len(loads) == 1  # the second never loaded it
    assert Manifest.parse((tmp_path / "hosts" / MANIFEST_NAME).read_text(), 1).inputs


@pytest.mark.parametrize(
    "change", ["inventory", "edit undone", "secret", "enrolled", "config", "code"]
)
def test_changed_inputs_load_the_inventory_again(tmp_path, loads, change, monkeypatch):
    code = tmp_path / "code"
    code.mkdir()
    (code / "module.py").write_text("A = 1\n")
    monkeypatch.setattr(inputs, "PACKAGE", code)  # stands for phoneprov's own modules
    config = make_site(tmp_path)
    apply(config)
    settle(tmp_path)
    inventory = tmp_path / "inventory.toml"
    if change == "inventory":
        inventory.write_text(inventory.read_text().replace("00:1f", "00:2f"))
    elif change == "edit undone":  # same bytes again, but written since: not trusted
        text = inventory.read_text()
        inventory.write_text(text + "\n")
        inventory.write_text(text)
        os.utime(inventory, ns=(1, 1))
    elif change == "secret":
        (tmp_path / "secret").write_bytes(b"s" * 32)
    elif change == "enrolled":
        with State(config.state) as state:
            state.enrol("00095200003A", "D200", "default", 1.0)
    elif change == "config":
        path = tmp_path / "pp.toml"
        path.write_text(path.read_text().replace('"10.231.0.1"]', '"10.231.0.2"]'))
        config = load_config(path)
    else:  # an upgrade or an edit of phoneprov
        (code / "module.py").write_text("A = 22\n")
    result = apply(config)
    assert len(loads) == 2
    expected = {"inventory": 1, "edit undone": 0, "secret": 2, "enrolled": 1, "config": 2}
    expected["code"] = 0
    assert len(result.written) == expected[change]
    settle(tmp_path)
    assert apply(config).written == [] and len(loads) == 2  # and then the early stop again


@pytest.mark.parametrize("left", ["temp file", "settings file", "foreign name"])
def test_anything_not_as_left_runs_the_whole_apply(tmp_path, loads, left):
    config = make_site(tmp_path)
    apply(config)
    settle(tmp_path)
    hosts = tmp_path / "hosts"
    if left == "temp file":  # left by an apply killed mid-way (no such PID runs)
        (hosts / ".00095200000E.999999999.tmp").write_text("half")
    elif left == "settings file":
        (hosts / APPLIED_NAME).unlink()
    else:
        (tmp_path / "opts" / "00095200004B").write_text('tag:x,66,"http://evil"\n')
    apply(config)
    assert len(loads) == 2
    assert not (hosts / ".00095200000E.999999999.tmp").exists()
    assert (hosts / APPLIED_NAME).exists()
    assert not (tmp_path / "opts" / "00095200004B").exists()
