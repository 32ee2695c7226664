"""`phoneprov serve`: the app under uWSGI — its C HTTP router, a lean master, one worker.

- The HTTP(S) router (a small C process, event driven) owns the phones' connections:
  keep-alive, TLS, slow or stalled clients (dropped after HTTP_TIMEOUT_S) and oversized
  headers never tie up the Python worker; it hands complete requests to the worker.
- The worker runs the Flask app with a few threads; the master loads no app (`lazy-apps`).
- With `pnp` (`--pnp` or `sip.pnp = true`) the first worker also runs the SIP PnP
  responder in a thread: HTTP and PnP in one Python process (DESIGN §5 memory budget).
- SIGTERM: the worker finishes its requests, stops the PnP responder, the fetch log is
  drained (uWSGI skips exit hooks in a worker killed while busy, hence the graceful hook),
  then exit 0.
`serve` replaces itself with the uWSGI binary (same PID for systemd and tests).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import ConfigError

APP_MODULE = "phoneprov.web.wsgi:application"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_HEADER_BYTES = 65535  # uWSGI buffer-size (its maximum): larger requests are dropped
SOCKET_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 5  # the router drops a client that sends nothing for this long
GRACEFUL_ON_SIGTERM = "unix_signal:15 gracefully_kill_them_all"


@dataclass(frozen=True)
class ServeOptions:
    listen: str  # host:port
    processes: int = 1
    threads: int = 4
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "INFO"
    pnp: bool = False  # the first worker runs the PnP responder too


def setup_logging(level: str) -> None:
    """Greppable lines on stderr: `time LEVEL logger: key=value ...`."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format=LOG_FORMAT, force=True)


def uwsgi_binary() -> str:
    beside = Path(sys.executable).parent / "uwsgi"
    found = str(beside) if beside.exists() else shutil.which("uwsgi")
    if not found:
        raise ConfigError("uWSGI is not installed (pip install uwsgi, built with OpenSSL)")
    return found


def uwsgi_argv(options: ServeOptions) -> list[str]:
    """The uWSGI command line for `options`."""
    _host, sep, port = options.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"listen must be host:port, not {options.listen!r}")
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ConfigError("TLS needs both a certificate and a key file")
    argv = [uwsgi_binary(), "--strict", "--need-app", "--enable-threads"]
    if options.tls_cert and options.tls_key:
        argv += ["--https", f"{options.listen},{options.tls_cert},{options.tls_key}"]
    else:
        argv += ["--http", options.listen]
    argv += ["--http-keepalive", "--http-timeout", str(HTTP_TIMEOUT_S)]
    argv += ["--home", sys.prefix, "--wsgi", APP_MODULE]
    argv += ["--processes", str(max(1, options.processes)), "--threads", str(options.threads)]
    argv += ["--master", "--lazy-apps", "--hook-master-start", GRACEFUL_ON_SIGTERM]
    argv += ["--listen", str(_backlog())]
    argv += ["--buffer-size", str(MAX_HEADER_BYTES), "--socket-timeout", str(SOCKET_TIMEOUT_S)]
    argv += ["--disable-logging", "--ignore-sigpipe", "--ignore-write-errors"]
    argv += ["--disable-write-exception", "--log-date"]
    return argv


def _backlog() -> int:
    try:
        return min(1024, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    except (OSError, ValueError):
        return 100


def exec_server(config_file: str | None, options: ServeOptions, server_url: str | None) -> None:
    """Replace this process with uWSGI serving the app for `config_file`."""
    argv = uwsgi_argv(options)
    env = dict(os.environ, PHONEPROV_LOG_LEVEL=options.log_level)
    env["PHONEPROV_PNP"] = "1" if options.pnp else "0"
    if config_file:
        env["PHONEPROV_CONFIG"] = str(Path(config_file).resolve())
    if server_url:
        env["PHONEPROV_SERVER_URL"] = server_url
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)
