"""The uWSGI command line `phoneprov serve` runs."""

from __future__ import annotations

import os

from phoneprov.web.launcher import ServeOptions, uwsgi_argv


def test_the_router_reaches_the_worker_over_an_abstract_unix_socket() -> None:
    argv = uwsgi_argv(ServeOptions(listen="127.0.0.1:8080"))
    sockets = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--socket"]
    # not uWSGI's default loopback TCP port: half the router's and the worker's CPU per request
    assert sockets == [f"@phoneprov-serve-{os.getpid()}"]
    assert argv[argv.index("--http") + 1] == "127.0.0.1:8080"
