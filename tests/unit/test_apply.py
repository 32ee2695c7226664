import errno
import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import replace

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.config import load_config
from phoneprov.core import dnsmasq_conf as conf
from phoneprov.core.errors import ConfigError
from phoneprov.core.layout import Layout
from phoneprov.dnsmasq import apply as apply_mod
from phoneprov.dnsmasq.apply import apply, dnsmasq_started_at
from phoneprov.dnsmasq.options import options_for
from phoneprov.site import resolve_settings
from phoneprov.state.db import Discovered, State

PROFILE = '[profiles.default]\ntemplates = ["office.xml"]\n'


def device(mac, model="D200"):
    return f'\n[[devices]]\nmac = "{mac}"\ntype = "{model}"\nprofile = "default"\n'


def make_site(
    tmp_path, devices=("00:09:52:00:00:0e", "00:09:52:00:00:1f"), security="token", **dhcp
):
    settings = {"mode": '"both"', "ntp": '["10.231.0.1"]', **dhcp}
    (tmp_path / "inventory.toml").write_text(PROFILE + "".join(device(m) for m in devices))
    (tmp_path / "pp.toml").write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\n[dhcp]\n'
        + "".join(f"{k} = {v}\n" for k, v in settings.items())
        + 'hostsdir = "hosts"\noptsdir = "opts"\ndnsmasq_pidfile = "dnsmasq.pid"\n'
        '[security]\nsecret_file = "secret"\n'
        f'mode = "{security}"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return load_config(tmp_path / "pp.toml")


def snapshot(directory):
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_text()) for p in directory.iterdir()
    }


def test_apply_writes_readable_files_once(tmp_path):
    config = make_site(tmp_path)
    result = apply(config)
    assert sorted(result.written) == ["00095200000E", "00095200001F"]
    for name in ("hosts/00095200000E", "opts/00095200000E"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644  # dnsmasq is nobody
    assert not [p for p in (tmp_path / "hosts").iterdir() if p.name.endswith(".tmp")]
    before = snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts")
    again = apply(config)
    assert (again.written, again.unchanged, again.files_touched) == ([], 2, 0)
    after = snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts")
    assert {k: v for k, v in after.items() if not k.startswith(".")} == {
        k: v for k, v in before.items() if not k.startswith(".")
    }


def test_secret_is_created_private(tmp_path):
    apply(make_site(tmp_path))
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert len((tmp_path / "secret").read_bytes()) == 32


def test_a_changed_device_touches_its_two_files_opts_first(tmp_path, monkeypatch):
    config = make_site(tmp_path)
    apply(config)
    old_tag = (tmp_path / "hosts" / "00095200000E").read_text()
    config = make_site(tmp_path, ntp='["10.231.0.2"]')
    renamed = []
    real_replace = os.replace

    def replace(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        directory = os.readlink(f"/proc/self/fd/{dst_dir_fd}")
        renamed.append(f"{os.path.basename(directory)}/{dst}")
        real_replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    monkeypatch.setattr(os, "replace", replace)
    result = apply(config)
    assert result.files_touched == 4 and len(result.written) == 2
    assert [p.split("/")[0] for p in renamed if "/0009" in p] == ["opts", "opts", "hosts", "hosts"]
    assert (tmp_path / "hosts" / "00095200000E").read_text() != old_tag


def test_removed_device_gets_a_tombstone_until_dnsmasq_restarts(tmp_path, monkeypatch):
    config = make_site(tmp_path)
    apply(config)
    config = make_site(tmp_path, devices=("00:09:52:00:00:1f",))
    result = apply(config)
    assert result.removed == ["00095200000E"]
    assert conf.is_tombstone((tmp_path / "hosts" / "00095200000E").read_text())
    assert not (tmp_path / "opts" / "00095200000E").exists()
    assert apply(config).dropped == []  # dnsmasq not known to have restarted
    later = (tmp_path / "hosts" / "00095200000E").stat().st_mtime + 60
    monkeypatch.setattr(apply_mod, "dnsmasq_started_at", lambda _pidfile: later)
    assert apply(config).dropped == ["00095200000E"]
    assert not (tmp_path / "hosts" / "00095200000E").exists()


def test_a_broken_inventory_changes_nothing(tmp_path):
    config = make_site(tmp_path)
    apply(config)
    before = snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts")
    (tmp_path / "inventory.toml").write_text(PROFILE + device("00:09:52:00:00:0e", "X9"))
    with pytest.raises(ConfigError):
        apply(config)
    assert snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts") == before


def test_files_that_are_not_ours_are_left_alone(tmp_path):
    config = make_site(tmp_path)
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts" / "printer").write_text("02:00:00:00:00:01,set:printer\n")
    apply(config)
    assert (tmp_path / "hosts" / "printer").read_text() == "02:00:00:00:00:01,set:printer\n"


def test_vendor_mode_writes_no_per_device_files_and_tombstones_old_ones(tmp_path):
    apply(make_site(tmp_path))
    config = make_site(tmp_path, mode='"vendor"', security="lease")
    result = apply(config)
    assert sorted(result.removed) == ["00095200000E", "00095200001F"]
    assert os.listdir(tmp_path / "opts") == []


def test_auto_enrolled_devices_are_applied_and_the_file_wins(tmp_path):
    config = make_site(tmp_path)
    with State(config.state) as state:
        state.enrol("000952000077", "D100", "default", 1.0)
        state.enrol("00095200000E", "D100", "default", 1.0)  # also in the file: file wins
    assert sorted(apply(config).written) == ["00095200000E", "00095200001F", "000952000077"]
    assert options_for(config, resolve_settings(config), "000952000077")["source"] == (
        "auto-enrolled (D100)"
    )
    assert options_for(config, resolve_settings(config), "00095200000E")["source"] == (
        "inventory (D200)"
    )


def test_options_are_exactly_what_apply_wrote(tmp_path):
    config = make_site(tmp_path)
    apply(config)
    report = options_for(config, resolve_settings(config), "0009.5200.000e")
    tag, written = conf.parse_opts_file((tmp_path / "opts" / "00095200000E").read_text())
    assert report["applied"] is True and report["tag"] == tag
    assert {k: report[k] for k in ("42", "43", "66", "67")} == written.as_json()
    assert report["url"].startswith("http://10.231.0.1:8080/t/")
    assert report["url"].endswith("/prov.py?mac=00095200000E")
    unknown = options_for(config, resolve_settings(config), "02:00:00:00:00:01")
    assert [unknown[k] for k in ("42", "43", "66", "67", "applied")] == [None] * 5


def test_option43_only_url_has_the_model_filled_in(tmp_path):
    config = make_site(tmp_path, security="lease", mode='"43"')
    config = replace(config, server=replace(config.server, layout=Layout("path")))
    report = options_for(config, resolve_settings(config), "00:09:52:00:00:1f")
    assert report["66"] is None and report["43"] is not None
    assert report["url"] == "http://10.231.0.1:8080/prov/D200/00095200001F.xml"


def test_auto_url_and_ntp_come_from_the_interface(tmp_path):
    config = make_site(tmp_path, ntp='["auto", "10.0.0.9"]')
    text = (tmp_path / "pp.toml").read_text().replace('"http://10.231.0.1:8080"', '"auto"')
    (tmp_path / "pp.toml").write_text(text)
    config = load_config(tmp_path / "pp.toml")
    settings = resolve_settings(config, address_of=lambda ifname: "10.231.0.7")
    assert settings.server_url == "http://10.231.0.7:8080"
    assert settings.ntp == ("10.231.0.7", "10.0.0.9")


def test_auto_on_a_missing_interface_is_a_config_error(tmp_path):
    make_site(tmp_path)
    text = (
        (tmp_path / "pp.toml").read_text().replace("[server]\n", '[server]\ninterface = "nope0"\n')
    )
    (tmp_path / "pp.toml").write_text(text.replace('"http://10.231.0.1:8080"', '"auto"'))
    with pytest.raises(ConfigError, match="nope0"):
        resolve_settings(load_config(tmp_path / "pp.toml"))


def test_dnsmasq_start_time_only_for_a_running_dnsmasq(tmp_path):
    assert dnsmasq_started_at(tmp_path / "missing.pid") is None
    (tmp_path / "me.pid").write_text(f"{os.getpid()}\n")
    assert dnsmasq_started_at(tmp_path / "me.pid") is None  # alive, but not dnsmasq


def test_cli_apply_options_leases_discovered(tmp_path):
    make_site(tmp_path)
    runner = CliRunner()
    config = str(tmp_path / "pp.toml")
    result = runner.invoke(cli, ["apply", "-c", config])
    assert result.exit_code == 0 and result.output.startswith("ok: 2 written")
    shown = json.loads(
        runner.invoke(cli, ["options", "00:09:52:00:00:0e", "-c", config, "--json"]).output
    )
    assert set(shown) >= {"42", "43", "66", "67"} and shown["applied"] is True
    text = runner.invoke(cli, ["options", "00:09:52:00:00:0e", "-c", config]).output
    assert "66: http://10.231.0.1:8080" in text
    assert runner.invoke(cli, ["leases", "-c", config]).output == "(no leases)\n"
    with State(tmp_path / "state.db") as state:
        state.record_discovered(Discovered("000952000077", "10.231.0.5", None, "oui", 1, 2))
    table = runner.invoke(cli, ["discovered", "-c", config]).output
    assert table.splitlines()[0].split()[:4] == ["MAC", "IP", "VENDOR_CLASS", "REASON"]
    bad = runner.invoke(cli, ["options", "not-a-mac", "-c", config])
    assert bad.exit_code == 2 and "error: not a MAC address" in bad.output


def test_cli_snippet_can_write_a_bound_hook(tmp_path):
    make_site(tmp_path)
    hook = tmp_path / "bin" / "hook"
    result = CliRunner().invoke(
        cli, ["dnsmasq-snippet", "-c", str(tmp_path / "pp.toml"), "--hook", str(hook)]
    )
    assert result.exit_code == 0, result.output
    assert f"dhcp-script={hook}" in result.output
    assert f"dhcp-hostsdir={tmp_path / 'hosts'}" in result.output
    assert hook.read_text().startswith("#!") and os.access(hook, os.X_OK)


def test_the_hook_reuses_the_address_the_last_apply_resolved(tmp_path):
    make_site(tmp_path)
    text = (tmp_path / "pp.toml").read_text().replace('"http://10.231.0.1:8080"', '"auto"')
    (tmp_path / "pp.toml").write_text(text.replace('["10.231.0.1"]', '["auto"]'))
    config = load_config(tmp_path / "pp.toml")
    assert apply_mod.applied_settings(config) is None  # never applied: nothing to reuse
    apply(config, resolve_settings(config, address_of=lambda _ifname: "10.231.0.7"))
    reused = apply_mod.applied_settings(config)
    assert (reused.server_url, reused.ntp) == ("http://10.231.0.7:8080", ("10.231.0.7",))


# removing files, temp files, disk full, modes (issue 11 items 10, 13, 14) ----------------


def test_removed_files_are_renamed_to_a_dot_name_before_unlink(tmp_path, monkeypatch):
    """dnsmasq's inotify reads a deleted name and logs `cannot read`; dot names it skips."""
    config = make_site(tmp_path)
    apply(config)
    unlinked = []
    real_unlink = os.unlink

    def unlink(name, *, dir_fd=None):
        unlinked.append(os.path.basename(name))
        real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)
    config = make_site(tmp_path, devices=("00:09:52:00:00:1f",))
    assert apply(config).removed == ["00095200000E"]  # its opts file goes
    later = (tmp_path / "hosts" / "00095200000E").stat().st_mtime + 60
    monkeypatch.setattr(apply_mod, "dnsmasq_started_at", lambda _pidfile: later)
    assert apply(config).dropped == ["00095200000E"]  # then its tombstone
    assert len(unlinked) == 2 and all(name.startswith(".") for name in unlinked), unlinked
    assert not (tmp_path / "opts" / "00095200000E").exists()
    assert not (tmp_path / "hosts" / "00095200000E").exists()
    assert not [
        p for d in ("hosts", "opts") for p in (tmp_path / d).iterdir() if "00095200000E" in p.name
    ]


def temp_files(tmp_path):
    return sorted(p.name for d in ("hosts", "opts") for p in (tmp_path / d).glob(".*.tmp"))


def test_disk_full_leaves_no_temp_file_names_the_path_and_keeps_the_old_files(
    tmp_path, monkeypatch
):
    config = make_site(tmp_path)
    apply(config)
    before = snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts")
    config = make_site(tmp_path, ntp='["10.231.0.2"]')  # both devices change
    real_write, writes = os.write, []

    def write(fd, data):
        writes.append(fd)
        if len(writes) == 3:  # the third file: the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(ConfigError) as failed:
        apply(config)
    assert "No space left on device" in str(failed.value)
    assert str(tmp_path / "hosts") in failed.value.where or str(tmp_path / "opts") in (
        failed.value.where
    )
    assert temp_files(tmp_path) == []
    assert snapshot(tmp_path / "hosts") | snapshot(tmp_path / "opts") == before
    monkeypatch.setattr(os, "write", real_write)
    assert len(apply(config).written) == 2


KILLED_APPLY = """
import os, signal, sys
from phoneprov.config import load_config
from phoneprov.dnsmasq import apply as apply_mod

def commit(self, temps):  # every temp file is written: die before the first rename
    os.kill(os.getpid(), signal.SIGKILL)

apply_mod._Dir.commit = commit
apply_mod.apply(load_config(sys.argv[1]))
"""


def test_temp_files_of_a_killed_apply_are_removed_by_the_next(tmp_path):
    devices = [f"00:09:52:00:{i >> 8:02x}:{i & 255:02x}" for i in range(50)]
    apply(make_site(tmp_path, devices=devices, ntp='["10.231.0.9"]'))  # files to replace
    config = make_site(tmp_path, devices=devices)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_APPLY, str(config.path)], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(temp_files(tmp_path)) == 100  # kill -9 during apply: its temp files stay
    with subprocess.Popen(["sleep", "60"]) as alive:  # a process that still runs
        try:
            (tmp_path / "hosts" / f".00095200000E.{alive.pid}.tmp").write_text("in progress")
            result = apply(config)
            assert temp_files(tmp_path) == [f".00095200000E.{alive.pid}.tmp"]
        finally:
            alive.kill()
    assert len(result.written) == 50
    assert len(list((tmp_path / "hosts").glob("0*"))) == 50


def test_modes_are_set_whatever_the_umask(tmp_path):
    config = make_site(tmp_path)
    config = replace(
        config,
        dhcp=replace(
            config.dhcp, hostsdir=tmp_path / "new" / "hosts", optsdir=tmp_path / "new" / "opts"
        ),
    )
    old = os.umask(0o077)
    try:
        apply(config)
    finally:
        os.umask(old)
    for directory in ("new", "new/hosts", "new/opts"):  # dnsmasq reads them as nobody
        assert stat.S_IMODE((tmp_path / directory).stat().st_mode) == 0o755, directory
    for name in ("hosts/00095200000E", "opts/00095200000E", "hosts/.phoneprov-applied"):
        assert stat.S_IMODE((tmp_path / "new" / name).stat().st_mode) == 0o644, name
