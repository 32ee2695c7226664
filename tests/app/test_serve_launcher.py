"""The uWSGI command line `phoneprov serve` runs."""

from __future__ import annotations

import grp
import os
import pwd
from pathlib import Path

import pytest

from phoneprov.core.errors import ConfigError
from phoneprov.web.launcher import (
    ServeOptions,
    prepare_socket_dir,
    server_env,
    uwsgi_argv,
    worker_socket,
)


def test_the_router_reaches_the_worker_over_a_socket_only_serves_user_may_use() -> None:
    argv = uwsgi_argv(ServeOptions(listen="127.0.0.1:8080"))
    sockets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--socket"]
    # not uWSGI's default loopback TCP port: half the router's and the worker's CPU per request
    assert sockets == [str(worker_socket(""))]
    assert sockets[0].endswith(f"/serve-{os.getpid()}.sock")
    assert "--chmod-socket=600" in argv and "--vacuum" in argv and "--chown-socket" not in argv
    assert argv[argv.index("--http") + 1] == "127.0.0.1:8080"
    nobody = pwd.getpwnam("nobody")
    argv = uwsgi_argv(ServeOptions(listen="127.0.0.1:8080", user="nobody"))
    assert argv[argv.index("--socket") + 1] == str(worker_socket("nobody"))
    group = grp.getgrgid(nobody.pw_gid).gr_name
    assert argv[argv.index("--chown-socket") + 1] == f"nobody:{group}"  # the router's user


@pytest.mark.skipif(os.geteuid() != 0, reason="hands the directory to another user")
def test_the_socket_directory_is_the_users_alone_and_swept(tmp_path: Path) -> None:
    directory = tmp_path / "nobody"
    directory.mkdir(mode=0o755)
    stale, live = directory / "serve-999999999.sock", directory / f"serve-{os.getpid()}.sock"
    for kept in (stale, live, directory / "notes"):
        kept.write_text("")
    prepare_socket_dir(directory, "nobody")
    st = directory.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (pwd.getpwnam("nobody").pw_uid, 0o700)
    assert sorted(p.name for p in directory.iterdir()) == sorted(["notes", live.name])
    (tmp_path / "link").symlink_to(directory)
    with pytest.raises(ConfigError, match=r"socket directory .*link: Not a directory"):
        prepare_socket_dir(tmp_path / "link", "nobody")


def test_one_malloc_arena_unless_the_environment_says_otherwise() -> None:
    options = ServeOptions(listen="127.0.0.1:8080", http="socket", pnp=True)
    env = server_env(options, "pp.toml", None, {"PATH": "/bin"})
    assert env["MALLOC_ARENA_MAX"] == "1"  # glibc: one arena, not one per request thread
    assert (env["PHONEPROV_PNP"], env["PHONEPROV_ONE_PROCESS"], env["PATH"]) == ("1", "1", "/bin")
    assert env["PHONEPROV_CONFIG"].endswith("/pp.toml") and "PHONEPROV_SERVER_URL" not in env
    env = server_env(options, None, "http://h", {"MALLOC_ARENA_MAX": "4"})
    assert (env["MALLOC_ARENA_MAX"], env["PHONEPROV_SERVER_URL"]) == ("4", "http://h")
