"""`export static` and `export redirect`: the paths a phone asks for, the atomic switch, what
is refused, file modes and validators; the CLI's exit status and messages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.cli import cli
from phoneprov.config import load_config
from phoneprov.core.errors import ConfigError, InputError
from phoneprov.core.layout import Layout, device_token, parse_request
from phoneprov.core.reference import parse_reference, resolve_reference
from phoneprov.export import export_files, export_paths, redirect_lines, write_tree
from phoneprov.export.static import MARKER
from phoneprov.render import Catalog
from phoneprov.secret import load_secret
from sample_data import TWO_PHONES_INVENTORY

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "0123456789abcdef01234567"
BASE = "https://prov.example.com"


def write_site(root: Path, style: str = "query") -> Path:
    shutil.copytree(ROOT / "conf" / "templates", root / "templates")
    (root / "inventory.toml").write_text(TWO_PHONES_INVENTORY)
    config = root / "phoneprov.toml"
    config.write_text(
        f'[server]\nurl = "http://10.0.0.1:8080"\nurl_style = "{style}"\n'
        '[security]\nmode = "token"\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return config


def site_files(config: Path, base: str = BASE) -> list[tuple[str, bytes]]:
    loaded = load_config(config)
    catalog = Catalog(loaded, server=base, log_invalid=False)
    return list(export_files(catalog, load_secret(loaded.security.secret_file)))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (following DIR's symlink), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"), key=str)
        if p.is_file()
    }


# paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["query", "path"])
def test_every_export_path_is_a_request_serve_answers_for_that_document(style: str) -> None:
    layout = Layout(style)
    docs = export_paths(layout, "D200", "00095200000E", TOKEN, ["common.xml", "device.xml"])
    assert [d.path for d in docs] == [
        f"t/{TOKEN}/prov.py",
        f"t/{TOKEN}/prov/D200/00095200000E.xml",
        f"t/{TOKEN}/prov/D200/00095200000E/common.xml",
        f"t/{TOKEN}/prov/D200/00095200000E/device.xml",
    ]
    for doc in docs:
        query = "00095200000E" if doc.path.endswith(".py") else None
        req = parse_request(layout, "/" + doc.path, query)
        assert (req.mac, req.token, req.name) == ("00095200000E", TOKEN, doc.name)
        assert doc.style in (None, req.style)


def test_the_query_path_is_the_configured_script_name() -> None:
    docs = export_paths(Layout("query", "cfg.php"), "D400", "00095200001F", TOKEN, [])
    assert docs[0].path == f"t/{TOKEN}/cfg.php"


@pytest.mark.parametrize("style", ["query", "path"])
def test_each_entry_lists_exactly_the_files_beside_it(tmp_path: Path, style: str) -> None:
    files = dict(site_files(write_site(tmp_path, style)))
    secret = load_secret(tmp_path / "secret")
    for mac, model in [("00095200000E", "D200"), ("00095200001F", "D400")]:
        token = device_token(secret, mac)
        for entry in (f"t/{token}/prov.py", f"t/{token}/prov/{model}/{mac}.xml"):
            listed = [
                resolve_reference(f"{BASE}/{entry}", ref) for ref in parse_reference(files[entry])
            ]
            names = ["common.xml", "model.xml", "office.xml", "device.xml"]
            assert listed == [f"{BASE}/t/{token}/prov/{model}/{mac}/{n}" for n in names]
    assert len(files) == 12  # two entries and four files per phone: nothing else


def test_the_files_are_what_serve_renders_with_the_base_url(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    files = dict(site_files(config, "https://cdn.example.net:8443"))
    catalog = Catalog(load_config(config), server="https://cdn.example.net:8443")
    device = catalog.inventory.device("00095200000E")
    assert device is not None
    token = device_token(load_secret(tmp_path / "secret"), device.mac)
    for name in catalog.names(device):
        rendered = catalog.file(device, name)
        assert rendered is not None
        assert files[f"t/{token}/prov/D200/00095200000E/{name}"] == rendered.body
    assert b"cdn.example.net" in files[f"t/{token}/prov/D200/00095200000E/common.xml"]


def test_redirect_lines_are_the_entry_urls_with_tokens() -> None:
    from phoneprov.core.inventory import Device, Inventory

    devices = {"00095200000E": Device("00095200000E", "D200", "p")}
    inventory = Inventory(devices, {})
    token = device_token(b"k" * 32, "00095200000E")
    assert redirect_lines(inventory, Layout("path"), BASE, b"k" * 32) == [
        f"00095200000E,{BASE}/t/{token}/prov/D200/00095200000E.xml"
    ]


# the tree and its switch --------------------------------------------------------------


def test_a_fresh_export_is_a_symlink_to_a_complete_build(tmp_path: Path) -> None:
    result = write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])
    out = tmp_path / "out"
    assert out.is_symlink() and os.readlink(out) == result.build.name
    assert tree(out) == {MARKER: (out / MARKER).read_bytes(), f"t/{TOKEN}/prov.py": b"<a/>"}
    assert (result.files, result.devices, result.previous) == (1, 1, None)
    assert "exported 1 device(s), 1 files" in result.summary()


def test_the_build_is_flushed_before_the_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power cut DIR names a complete build: its filesystem is flushed (syncfs of
    the build's, not every filesystem) before the rename, and the rename itself after."""
    from phoneprov.export import static

    log: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(static, "flush_tree", lambda path: log.append(f"flush {path.name}"))
    monkeypatch.setattr(static, "fsync_dir", lambda path: log.append(f"fsync {path.name}"))
    monkeypatch.setattr(
        static.os,
        "replace",
        lambda a, b: log.append(f"rename {Path(b).name}") or real_replace(a, b),
    )
    result = write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])
    assert log == [f"flush {result.build.name}", "rename out", f"fsync {tmp_path.name}"]


def test_an_empty_directory_becomes_the_export(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])
    assert (tmp_path / "out").is_symlink()


def test_the_old_export_stays_readable_until_the_new_one_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_tree(out, [(f"t/{TOKEN}/prov.py", b"<old/>")])
    seen_while_writing = []

    def files() -> Iterator[tuple[str, bytes]]:
        yield f"t/{TOKEN}/prov.py", b"<new/>"
        seen_while_writing.append((out / f"t/{TOKEN}/prov.py").read_bytes())
        yield f"t/{TOKEN}/prov/D200/00095200000E.xml", b"<new/>"
        seen_while_writing.append((out / f"t/{TOKEN}/prov.py").read_bytes())

    second = write_tree(out, files())
    assert seen_while_writing == [b"<old/>", b"<old/>"]
    assert (out / f"t/{TOKEN}/prov.py").read_bytes() == b"<new/>"
    assert second.previous == first.build and first.build.is_dir()  # kept one more round
    third = write_tree(out, [(f"t/{TOKEN}/prov.py", b"<third/>")])
    assert not first.build.exists() and second.build.is_dir() and third.build.is_dir()


def test_a_failed_render_leaves_the_old_export_and_no_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = write_tree(out, [(f"t/{TOKEN}/prov.py", b"<old/>")])
    before = sorted(os.listdir(tmp_path))

    def files() -> Iterator[tuple[str, bytes]]:
        yield f"t/{TOKEN}/prov.py", b"<new/>"
        raise ConfigError("template syntax: nope", "templates/device.xml.j2:3")

    with pytest.raises(ConfigError, match=r"device\.xml\.j2:3"):
        write_tree(out, files())
    assert sorted(os.listdir(tmp_path)) == before
    assert os.readlink(out) == first.build.name
    assert (out / f"t/{TOKEN}/prov.py").read_bytes() == b"<old/>"


@pytest.mark.parametrize("kind", ["directory", "symlink", "file", "fake build"])
def test_what_is_not_our_export_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    foreign = tmp_path / "www"
    foreign.mkdir()
    (foreign / "index.html").write_text("hello")
    out = tmp_path / "out"
    if kind == "directory":
        out = foreign
    elif kind == "symlink":
        out.symlink_to("www")
    elif kind == "file":
        out.write_text("hello")
    else:  # named like a build, but without the marker
        (tmp_path / ".out.export-x").mkdir()
        out.symlink_to(".out.export-x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(InputError, match=r"not a|refusing"):
        write_tree(out, [(f"t/{TOKEN}/prov.py", b"<a/>")])
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert (foreign / "index.html").read_text() == "hello"


def test_only_our_builds_are_removed(tmp_path: Path) -> None:
    look_alike = tmp_path / ".out.export-mine"  # no marker: not ours
    look_alike.mkdir()
    for _ in range(3):
        write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])
    assert look_alike.is_dir()
    builds = [p for p in tmp_path.iterdir() if (p / MARKER).is_file() and not p.is_symlink()]
    assert len(builds) == 2  # the current and the previous


def test_one_export_into_a_directory_at_a_time(tmp_path: Path) -> None:
    import fcntl

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running export holds it
        with pytest.raises(InputError, match="another export into it is running"):
            write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])
        assert os.listdir(tmp_path) == []
    finally:
        os.close(fd)
    write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov.py", b"<a/>")])  # free again


def test_a_missing_parent_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        write_tree(tmp_path / "nope" / "out", [])


def test_a_path_outside_the_token_tree_is_refused(tmp_path: Path) -> None:
    for bad in ["../escape.xml", "t/../../x", "/etc/x", "secret"]:
        with pytest.raises(InputError, match="not an export path"):
            write_tree(tmp_path / "out", [(bad, b"x")])
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "escape.xml").exists()


def test_modes_are_for_a_web_server_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_tree(tmp_path / "out", [(f"t/{TOKEN}/prov/D200/00095200000E/a.xml", b"<a/>")])
    finally:
        os.umask(old)
    build = (tmp_path / "out").resolve()
    for path in [build, *build.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        want = 0o711 if path == build / "t" else 0o755 if path.is_dir() else 0o644
        assert mode == want, path


def test_unchanged_files_keep_their_mtime_and_changed_ones_move_a_second(tmp_path: Path) -> None:
    out = tmp_path / "out"
    same, changed = f"t/{TOKEN}/prov.py", f"t/{TOKEN}/prov/D200/00095200000E/device.xml"
    write_tree(out, [(same, b"<a/>"), (changed, b"<u>201</u>")])
    before = {p: (out / p).stat().st_mtime_ns for p in (same, changed)}
    write_tree(out, [(same, b"<a/>"), (changed, b"<u>301</u>")])  # the same size
    assert (out / same).stat().st_mtime_ns == before[same]
    assert (out / changed).stat().st_mtime_ns >= before[changed] + 1_000_000_000


# the CLI ------------------------------------------------------------------------------


def test_cli_export_static_and_redirect(tmp_path: Path) -> None:
    config = write_site(tmp_path, "path")
    runner = CliRunner()
    out = tmp_path / "public" / "export"
    out.parent.mkdir()
    done = runner.invoke(cli, ["export", "static", str(out), "-c", str(config), "--url", BASE])
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"exported 2 device(s), 12 files, to {out} (-> .export.")
    assert tree(out).keys() == {MARKER} | {p for p, _ in site_files(config)}
    secret_bytes = (tmp_path / "secret").read_bytes()
    assert not any(secret_bytes in body for body in tree(out.parent).values())
    done = runner.invoke(cli, ["export", "redirect", "-c", str(config), "--url", BASE])
    assert done.exit_code == 0, done.output
    token = device_token(secret_bytes, "00095200000E")
    assert done.output.splitlines()[0] == (
        f"00095200000E,{BASE}/t/{token}/prov/D200/00095200000E.xml"
    )
    assert (out / f"t/{token}/prov/D200/00095200000E.xml").is_file()


def test_cli_default_url_is_the_configs_server_url(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    runner = CliRunner()
    done = runner.invoke(cli, ["export", "redirect", "-c", str(config)])
    assert done.exit_code == 0 and "http://10.0.0.1:8080/t/" in done.output
    out = tmp_path / "out"
    assert runner.invoke(cli, ["export", "static", str(out), "-c", str(config)]).exit_code == 0
    common = [body for path, body in tree(out).items() if path.endswith("/common.xml")]
    assert len(common) == 2 and all(b"10.0.0.1" in body for body in common)  # the allowlist


def test_auto_enrolled_phones_are_not_exported(tmp_path: Path) -> None:
    from phoneprov.state.db import State

    config = write_site(tmp_path)
    with State(tmp_path / "state.db") as state:
        state.enrol("000952000077", "D100", "default", 1.0)
    runner = CliRunner()
    done = runner.invoke(cli, ["export", "static", str(tmp_path / "out"), "-c", str(config)])
    assert done.exit_code == 0 and "exported 2 device(s)" in done.output
    assert not any("000952000077" in path for path in tree(tmp_path / "out"))
    done = runner.invoke(cli, ["export", "redirect", "-c", str(config)])
    assert "000952000077" not in done.output and len(done.output.splitlines()) == 2


def test_cli_bad_inventory_exits_2_with_file_and_line_and_dir_untouched(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "static", str(out), "-c", str(config)]).exit_code == 0
    before = tree(out)
    inventory = tmp_path / "inventory.toml"
    inventory.write_text(inventory.read_text().replace("00:09:52:00:00:1f", "00:09:52:00:00:1x"))
    done = runner.invoke(cli, ["export", "static", str(out), "-c", str(config)])
    assert done.exit_code == 2
    assert "inventory.toml:9: not a MAC address" in done.output
    assert tree(out) == before
    assert len([p for p in tmp_path.iterdir() if p.name.startswith(".out.export-")]) == 1


def test_cli_bad_template_exits_2_naming_it_and_dir_untouched(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    out = tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(cli, ["export", "static", str(out), "-c", str(config)]).exit_code == 0
    before = tree(out)
    with (tmp_path / "templates" / "device.xml.j2").open("a") as template:
        template.write("{{ broken(\n")
    done = runner.invoke(cli, ["export", "static", str(out), "-c", str(config)])
    assert done.exit_code == 2 and "device.xml.j2:" in done.output
    assert tree(out) == before


@pytest.mark.parametrize("url", ["ftp://x", "https://x/path", "x"])
def test_cli_bad_url_exits_2(tmp_path: Path, url: str) -> None:
    config = write_site(tmp_path)
    done = CliRunner().invoke(
        cli, ["export", "static", str(tmp_path / "out"), "-c", str(config), "--url", url]
    )
    assert done.exit_code == 2 and "--url: must be http(s)://host[:port]" in done.output
    assert not (tmp_path / "out").exists()


def test_cli_foreign_dir_exits_2(tmp_path: Path) -> None:
    config = write_site(tmp_path)
    done = CliRunner().invoke(
        cli, ["export", "static", str(tmp_path / "templates"), "-c", str(config)]
    )
    assert done.exit_code == 2 and "not a phoneprov export" in done.output
    assert (tmp_path / "templates" / "device.xml.j2").is_file()
