"""The uWSGI command line `phoneprov serve` runs."""

from __future__ import annotations

import os

from phoneprov.web.launcher import ServeOptions, server_env, uwsgi_argv


def test_the_router_reaches_the_worker_over_an_abstract_unix_socket() -> None:
    argv = uwsgi_argv(ServeOptions(listen="127.0.0.1:8080"))
    sockets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--socket"]
    # not uWSGI's default loopback TCP port: half the router's and the worker's CPU per request
    assert sockets == [f"@phoneprov-serve-{os.getpid()}"]
    assert argv[argv.index("--http") + 1] == "127.0.0.1:8080"


def test_one_malloc_arena_unless_the_environment_says_otherwise() -> None:
    options = ServeOptions(listen="127.0.0.1:8080", http="socket", pnp=True)
    env = server_env(options, "pp.toml", None, {"PATH": "/bin"})
    assert env["MALLOC_ARENA_MAX"] == "1"  # glibc: one arena, not one per request thread
    assert (env["PHONEPROV_PNP"], env["PHONEPROV_ONE_PROCESS"], env["PATH"]) == ("1", "1", "/bin")
    assert env["PHONEPROV_CONFIG"].endswith("/pp.toml") and "PHONEPROV_SERVER_URL" not in env
    env = server_env(options, None, "http://h", {"MALLOC_ARENA_MAX": "4"})
    assert (env["MALLOC_ARENA_MAX"], env["PHONEPROV_SERVER_URL"]) == ("4", "http://h")
