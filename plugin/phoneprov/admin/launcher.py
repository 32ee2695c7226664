"""`phoneprov admin`: the admin app under uWSGI, the server `serve` uses (`web.launcher`).

One process with a few threads that speaks HTTP(S) itself (`--http-socket`/`--https-socket`):
admins are few, no router is needed. Under systemd socket activation (`LISTEN_FDS` for this
PID) uWSGI takes the inherited socket (matched by its address; `--protocol http` makes it
speak HTTP; not HTTPS: uWSGI 2.0 gives an inherited socket no TLS context), and with
`idle_exit` a master ends everything after that many seconds without a
request (`--idle --die-on-idle`, exit 0): systemd starts it again at the next connection, so
the admin's window costs no memory while nobody looks. Without systemd (OpenWrt, the demo)
it simply runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError
from ..web.launcher import uwsgi_base, uwsgi_limits

APP_MODULE = "phoneprov.admin.wsgi:application"
THREADS = 4  # a resync waits for the phone's answer (up to timer F): others go on meanwhile


@dataclass(frozen=True)
class AdminOptions:
    listen: str  # host:port
    tls_cert: Path | None = None
    tls_key: Path | None = None
    idle_exit: float = 0.0  # with an inherited socket: exit after this many idle seconds
    log_level: str = "INFO"
    user: str = ""  # drop to this user once bound ("" stays)


def socket_activated(environ: Mapping[str, str], pid: int) -> bool:
    """Whether systemd handed this process its listening socket (sd_listen_fds' rule)."""
    return environ.get("LISTEN_PID") == str(pid) and environ.get("LISTEN_FDS", "0") != "0"


def admin_argv(options: AdminOptions, activated: bool) -> list[str]:
    """The uWSGI command line; `activated`: the socket is inherited from systemd."""
    _host, sep, port = options.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"listen must be host:port, not {options.listen!r}", "admin.listen")
    argv = uwsgi_base(APP_MODULE, THREADS)
    if options.tls_cert and options.tls_key:
        argv += ["--https-socket", f"{options.listen},{options.tls_cert},{options.tls_key}"]
    else:
        argv += ["--http-socket", options.listen]
    if activated:
        if options.tls_cert:  # uWSGI 2.0 gives an inherited socket no TLS context
            raise ConfigError(
                "TLS does not work on a socket systemd hands over: run phoneprov-admin.service "
                "without its socket unit (it then listens itself and stays resident), or put "
                "a TLS proxy in front"
            )
        argv += ["--protocol", "http"]
        if options.idle_exit > 0:
            argv += ["--master", "--die-on-term", "--idle", str(max(1, round(options.idle_exit)))]
            argv += ["--die-on-idle"]
    return argv + uwsgi_limits(options.user)


def exec_admin(config_file: str, options: AdminOptions) -> None:
    """Replace this process with uWSGI serving the admin app for `config_file`."""
    activated = socket_activated(os.environ, os.getpid())
    argv = admin_argv(options, activated)
    env = dict(os.environ, PHONEPROV_LOG_LEVEL=options.log_level)
    env["PHONEPROV_CONFIG"] = str(Path(config_file).resolve())
    env["PHONEPROV_ADMIN_TLS"] = "1" if options.tls_cert else "0"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)
