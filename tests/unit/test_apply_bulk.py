"""Many new files at once: created in place (no temp file, no rename), opts before hosts per
device, flushed with one syncfs; a name that appears meanwhile and a full disk."""

import errno
import os

import pytest

from phoneprov.config import load_config
from phoneprov.core.errors import ConfigError
from phoneprov.dnsmasq import bulk, fragdir
from phoneprov.dnsmasq.apply import apply, plan
from phoneprov.site import full_inventory, resolve_settings, token_secret

COUNT = 600  # more than bulk.CHUNK: the host thread follows the opts thread chunk by chunk


def make_site(tmp_path, count=COUNT):
    devices = "".join(
        f'[[devices]]\nmac = "00:09:52:00:{i >> 8:02x}:{i & 255:02x}"\ntype = "D200"\n'
        'profile = "default"\n'
        for i in range(count)
    )
    (tmp_path / "inventory.toml").write_text(
        '[profiles.default]\ntemplates = ["office.xml"]\n' + devices
    )
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n[dhcp]\nmode = "both"\n'
        'hostsdir = "hosts"\noptsdir = "opts"\n[security]\nsecret_file = "secret"\n'
        'mode = "token"\n[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return load_config(tmp_path / "pp.toml")


def expected(config):
    settings = resolve_settings(config)
    inventory = full_inventory(config)
    return plan(settings, list(inventory.devices), token_secret(config, settings))


@pytest.fixture
def calls(monkeypatch):
    """Device files created in place (directory, name), renames, and flushes, in order."""
    log = []
    real_create, real_replace = fragdir.Dir.create, os.replace
    real_syncfs, real_fsync = fragdir.syncfs_fd, os.fsync

    def create(self, name, text):
        made = real_create(self, name, text)
        if made:
            log.append(("create", self.path.name, name))
        return made

    monkeypatch.setattr(fragdir.Dir, "create", create)
    monkeypatch.setattr(
        os, "replace", lambda *a, **k: log.append(("rename",)) or real_replace(*a, **k)
    )
    monkeypatch.setattr(fragdir, "syncfs_fd", lambda fd: log.append(("syncfs",)) or real_syncfs(fd))
    monkeypatch.setattr(os, "fsync", lambda fd: log.append(("fsync",)) or real_fsync(fd))
    return log


def test_new_files_are_created_in_place_opts_first_and_flushed_once(tmp_path, calls):
    config = make_site(tmp_path)
    result = apply(config)
    assert len(result.written) == COUNT
    created = [c for c in calls if c[0] == "create"]
    assert len(created) == 2 * COUNT
    order = {c[1:]: i for i, c in enumerate(calls) if c[0] == "create"}
    for name in result.written:
        assert order["opts", name] < order["hosts", name]  # a tag never before its options
    assert calls.count(("syncfs",)) == 1
    assert calls.index(("syncfs",)) > max(order.values())  # after every file
    renames = [i for i, c in enumerate(calls) if c == ("rename",)]
    assert len(renames) <= 3  # the hook's settings, the manifest, the fields record: no device
    assert calls.count(("fsync",)) <= 3  # directories and the settings file, never per device
    for name, files in expected(config).items():
        assert (tmp_path / "hosts" / name).read_text() == files.host
        assert (tmp_path / "opts" / name).read_text() == files.opts
        assert (tmp_path / "hosts" / name).stat().st_mode & 0o777 == 0o644
    assert not [p for p in (tmp_path / "hosts").iterdir() if p.name.endswith(".tmp")]


def test_a_name_that_appears_meanwhile_is_written_the_atomic_way(tmp_path, monkeypatch):
    config = make_site(tmp_path)
    real = fragdir.Dir.create
    stray = "000952000105"

    def create(self, name, text):
        if name == stray and self.path.name == "opts":
            (tmp_path / "opts" / name).write_text('tag:someone-else,66,"x"\n')
        return real(self, name, text)

    monkeypatch.setattr(fragdir.Dir, "create", create)
    apply(config)
    files = expected(config)[stray]
    assert (tmp_path / "opts" / stray).read_text() == files.opts
    assert (tmp_path / "hosts" / stray).read_text() == files.host


@pytest.mark.parametrize("failing", ["opts", "hosts"])
def test_a_full_disk_leaves_whole_files_and_no_tag_without_its_options(
    tmp_path, monkeypatch, failing
):
    config = make_site(tmp_path)
    real, count = fragdir.Dir._fill, [0]

    def fill(self, fd, data, fsync):
        if self.path.name == failing:
            count[0] += 1
            if count[0] == 300:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, fd, data, fsync)

    monkeypatch.setattr(fragdir.Dir, "_fill", fill)
    with pytest.raises(ConfigError, match="No space left"):
        apply(config)
    files = expected(config)
    hosts = {p.name for p in (tmp_path / "hosts").iterdir() if len(p.name) == 12}
    opts = {p.name for p in (tmp_path / "opts").iterdir() if len(p.name) == 12}
    assert hosts <= opts and 0 < len(hosts) < COUNT
    for name in opts:
        assert (tmp_path / "opts" / name).read_text() == files[name].opts
    for name in hosts:
        assert (tmp_path / "hosts" / name).read_text() == files[name].host
    monkeypatch.setattr(fragdir.Dir, "_fill", real)
    assert len(apply(config).written) == COUNT - len(hosts & opts)  # the rest, next time


def test_few_new_files_still_go_the_atomic_way(tmp_path, calls):
    apply(make_site(tmp_path, count=fragdir.SYNC_ALL_ABOVE // 2))
    assert not [c for c in calls if c[0] == "create"]
    assert bulk.CHUNK > fragdir.SYNC_ALL_ABOVE
