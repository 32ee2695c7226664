"""`phoneprov serve`: the app under uWSGI — its C HTTP router, a lean master, one worker.

- The HTTP(S) router (a small C process, event driven) owns the phones' connections:
  keep-alive, TLS, stalled clients and oversized headers never tie up the Python worker; it
  hands complete requests to the worker over a Unix socket (`worker_socket`). A connection
  that sends nothing for HTTP_TIMEOUT_S (before its request, inside its headers, between
  keep-alive requests) is dropped; no deferred accept, so that holds from the connect on.
  uWSGI restarts that timer at every byte it reads and has no total deadline: a client
  trickling a byte at a time is bounded only by the 64 KB header limit (it holds a router
  socket, never a worker).
- With a service user (`server.user`, the install's `phoneprov`) `serve` starts as root,
  hands that user the state database (and makes the secret readable by its group), and
  uWSGI binds the port and then drops to the user (`--uid/--gid`, supplementary groups
  from the user's) before it reads any request or loads the app; nothing it runs keeps
  root or a capability.
- The worker runs the Flask app with a few threads; the master loads no app (`lazy-apps`).
- With `pnp` (`--pnp` or `sip.pnp = true`) the first worker also runs the SIP PnP
  responder in a thread: HTTP and PnP in one Python process (DESIGN §5 memory budget).
- SIGTERM: the worker finishes its requests, stops the PnP responder, the fetch log is
  drained (uWSGI skips exit hooks in a worker killed while busy, hence the graceful hook),
  then exit 0.
`serve` replaces itself with the uWSGI binary (same PID for systemd and tests).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from ..site import RUNTIME_DIR

if TYPE_CHECKING:
    from ..config import Config

APP_MODULE = "phoneprov.web.wsgi:application"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MAX_HEADER_BYTES = 65535  # uWSGI buffer-size (its maximum): larger requests are dropped
SOCKET_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 5  # the router drops a client that sends nothing for this long
GRACEFUL_ON_SIGTERM = "unix_signal:15 gracefully_kill_them_all"
# router -> worker: a Unix socket file (named after serve's PID, which uWSGI keeps). Half the
# CPU of uWSGI's default loopback TCP socket per request in the router and in the worker (no
# handshake, no TIME_WAIT). A file, not the abstract namespace: in a directory only serve's
# user and root may enter, no other local process can hand the worker a request that claims
# a client address (lease mode decides by it). Root's serve: RUNTIME_DIR/USER.
DEBIAN_PLUGINS = Path("/usr/lib/uwsgi/plugins")  # uwsgi-core's http, uwsgi-plugin-python3's
OPENWRT_PLUGIN = Path("/usr/lib/uwsgi/python_plugin.so")  # uwsgi-python3-plugin (no router)
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # where `phoneprov` is imported from


@dataclass(frozen=True)
class ServeOptions:
    listen: str  # host:port
    processes: int = 1
    threads: int = 4
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "INFO"
    pnp: bool = False  # the first worker runs the PnP responder too
    http: str = "router"  # "socket": one process, the worker speaks HTTP (server.http)
    user: str | None = None  # uWSGI drops to this user once bound; None: server.user


def setup_logging(level: str) -> None:
    """Greppable lines on stderr: `time LEVEL logger: key=value ...`."""
    logging.basicConfig(stream=sys.stderr, level=level.upper(), format=LOG_FORMAT, force=True)


def uwsgi_binary() -> list[str]:
    """uWSGI with Python: the PyPI build beside this interpreter (Python built in), else
    Debian's `uwsgi-core` with its HTTP router plugin and the plugin for this very Python
    version (`python311`), else a `uwsgi` on PATH (with OpenWrt's Python plugin if there)."""
    beside = Path(sys.executable).parent / "uwsgi"
    if beside.exists() and Path(os.path.realpath(beside)).name != "uwsgi-core":
        return [str(beside)]  # (Debian's /usr/bin/uwsgi is its uwsgi-core: no Python in it)
    core = shutil.which("uwsgi-core")
    plugin = f"python{sys.version_info.major}{sys.version_info.minor}"
    if core and (DEBIAN_PLUGINS / f"{plugin}_plugin.so").exists():
        return [core, "--plugin", f"http,{plugin}"]
    found = shutil.which("uwsgi")
    if found and OPENWRT_PLUGIN.exists():  # OpenWrt's uwsgi: Python only as this plugin
        return [found, "--plugin", str(OPENWRT_PLUGIN)]
    if found:
        return [found]
    raise ConfigError(
        f"uWSGI for Python {sys.version_info.major}.{sys.version_info.minor} is not installed: "
        "on Debian `apt install uwsgi-core uwsgi-plugin-python3`, elsewhere "
        "`pip install 'phoneprov[server]'` (builds it: gcc, Python headers, OpenSSL headers)"
    )


def uwsgi_argv(options: ServeOptions) -> list[str]:
    """The uWSGI command line for `options`."""
    _host, sep, port = options.listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"listen must be host:port, not {options.listen!r}")
    if (options.tls_cert is None) != (options.tls_key is None):
        raise ConfigError("TLS needs both a certificate and a key file")
    argv = uwsgi_base(APP_MODULE, options.threads)
    if options.http == "socket":  # one process: no router, no master (the lean appliance)
        if options.tls_cert:
            raise ConfigError("TLS needs uWSGI's HTTP router", "server.http = 'socket'")
        if options.processes > 1:
            raise ConfigError("one process only: --processes", "server.http = 'socket'")
        argv += ["--http-socket", options.listen]
    else:
        if options.tls_cert and options.tls_key:
            argv += ["--https", f"{options.listen},{options.tls_cert},{options.tls_key}"]
        else:
            argv += ["--http", options.listen]
        worker = worker_socket(options.user or "")
        argv += ["--socket", str(worker), "--chmod-socket=600", "--vacuum"]
        if options.user:  # the router connects to it as that user
            account = _account(options.user)
            argv += ["--chown-socket", f"{options.user}:{_group_name(account.pw_gid)}"]
        argv += ["--http-keepalive", "--http-timeout", str(HTTP_TIMEOUT_S)]
        argv += ["--http-headers-timeout", str(HTTP_TIMEOUT_S), "--no-defer-accept"]
        argv += ["--processes", str(max(1, options.processes))]
        argv += ["--master", "--lazy-apps", "--hook-master-start", GRACEFUL_ON_SIGTERM]
    argv += ["--listen", str(_backlog())]
    return argv + uwsgi_limits(options.user)


def uwsgi_base(app_module: str, threads: int) -> list[str]:
    """The start of each of our uWSGI command lines (`serve`, `admin`): the binary, the app
    and its threads."""
    argv = [*uwsgi_binary(), "--strict", "--need-app", "--enable-threads"]
    argv += ["--home", sys.prefix, "--pythonpath", str(PACKAGE_PARENT), "--wsgi", app_module]
    return [*argv, "--threads", str(threads)]


def uwsgi_limits(user: str | None) -> list[str]:
    """The end of them: header and socket limits, no request log, and the user (if any)
    uWSGI drops to once its sockets are bound."""
    argv = ["--buffer-size", str(MAX_HEADER_BYTES), "--socket-timeout", str(SOCKET_TIMEOUT_S)]
    argv += ["--disable-logging", "--ignore-sigpipe", "--ignore-write-errors"]
    argv += ["--disable-write-exception", "--log-date"]
    if user:
        account = _account(user)
        argv += ["--uid", str(account.pw_uid), "--gid", str(account.pw_gid)]
    return argv


def worker_socket(user: str) -> Path:
    """Where the router reaches the worker when serve runs as `user` ("": stays who it is):
    /run/phoneprov/USER/ for root, else $TMPDIR/phoneprov-UID/ (see RUNTIME_DIR)."""
    euid = os.geteuid()
    if euid == 0:
        directory = RUNTIME_DIR / (user or "root")
    else:
        directory = Path(tempfile.gettempdir()) / f"phoneprov-{euid}"
    return directory / f"serve-{os.getpid()}.sock"


def prepare_socket_dir(directory: Path, user: str) -> None:
    """Make `directory` mode 0700 and `user`'s ("": ours), refusing a link or a directory
    another user owns; remove the sockets of serves no longer running there."""
    try:
        if os.geteuid() == 0:
            RUNTIME_DIR.mkdir(mode=0o755, exist_ok=True)
        directory.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        raise ConfigError(f"serve's socket directory {directory}: {e.strerror}") from None
    try:
        if os.geteuid() == 0:
            account = _account(user) if user else pwd.getpwuid(0)
            os.fchown(fd, account.pw_uid, account.pw_gid)
        elif os.fstat(fd).st_uid != os.geteuid():
            raise ConfigError(f"{directory} belongs to another user: remove it")
        os.fchmod(fd, 0o700)
        for name in os.listdir(fd):
            pid = name.removeprefix("serve-").removesuffix(".sock")
            if pid.isdigit() and not _running(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _account(user: str) -> pwd.struct_passwd:
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(
            f"no such user: {user!r} (the install creates it)", "server.user"
        ) from None
    if account.pw_uid == 0:
        raise ConfigError(f"{user!r} is root: name an unprivileged user", "server.user")
    return account


def prepare_for_user(config: Config, user: str) -> None:
    """As root, before uWSGI drops to `user`: the state database's directory must be the
    user's to write (SQLite adds -wal/-shm files beside it); a database the hook created as
    root is handed over; the secret is created if missing and made readable by the user's
    group. Paths are opened without following links, and a file with a second name is
    left alone, so nothing outside those files changes owner."""
    account = _account(user)
    groups = set(os.getgrouplist(user, account.pw_gid))
    state_dir = config.state.parent
    if not _may(state_dir, account.pw_uid, groups, write=True):
        group = _group_name(account.pw_gid)
        raise ConfigError(
            f"{state_dir} is not writable by {user}, who serve runs as: keep the state database "
            f"in a directory of its own (install -d -o {user} -g {group} -m 0750 {state_dir})",
            "paths.state",
        )
    for readable in (config.path, config.inventory_path, config.templates):
        if not _may(readable, account.pw_uid, groups):
            raise ConfigError(f"{readable} is not readable by {user}, who serve runs as")
    for name in ("", "-wal", "-shm"):
        _hand_over(config.state.with_name(config.state.name + name), account.pw_uid, account.pw_gid)
    if config.security.mode != "open":
        from ..secret import load_secret

        load_secret(config.security.secret_file)
        _share_with_group(config.security.secret_file, account.pw_gid)


def _may(path: Path, uid: int, groups: set[int], write: bool = False) -> bool:
    """Whether `uid` (in `groups`) may read (and search) or write `path`, by its mode bits."""
    try:
        st = path.stat()
    except OSError:
        return False
    want = (0o2 if write else 0o4) | (0o1 if stat.S_ISDIR(st.st_mode) else 0)
    shift = 6 if st.st_uid == uid else 3 if st.st_gid in groups else 0
    return (st.st_mode >> shift) & want == want


def _owned_by_root(path: Path) -> int | None:
    """An fd of `path` when it is a root-owned regular file with one name, else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid == 0 and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return fd
    os.close(fd)
    return None


def _hand_over(path: Path, uid: int, gid: int) -> None:
    fd = _owned_by_root(path)
    if fd is not None:
        try:
            os.fchown(fd, uid, gid)
        finally:
            os.close(fd)


def _share_with_group(path: Path, gid: int) -> None:
    fd = _owned_by_root(path)
    if fd is not None:
        try:
            os.fchown(fd, -1, gid)
            os.fchmod(fd, 0o640)
        finally:
            os.close(fd)


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _backlog() -> int:
    try:
        return min(1024, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    except (OSError, ValueError):
        return 100


def server_env(
    options: ServeOptions,
    config_file: str | None,
    server_url: str | None,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """uWSGI's environment: `environ` and what the WSGI module (wsgi.py) reads."""
    env = dict(environ, PHONEPROV_LOG_LEVEL=options.log_level)
    env["PHONEPROV_PNP"] = "1" if options.pnp else "0"
    env["PHONEPROV_ONE_PROCESS"] = "1" if options.http == "socket" else "0"
    # glibc gives each thread that allocates under contention its own arena, each keeping
    # what it once held: with 4 request threads ~2.4 MB more after 10 s of load. The GIL
    # serialises Python's allocations anyway (bench_memory.py).
    env.setdefault("MALLOC_ARENA_MAX", "1")
    if config_file:
        env["PHONEPROV_CONFIG"] = str(Path(config_file).resolve())
    if server_url:
        env["PHONEPROV_SERVER_URL"] = server_url
    return env


def exec_server(config_file: str | None, options: ServeOptions, server_url: str | None) -> None:
    """Replace this process with uWSGI serving the app for `config_file`."""
    from ..config import load_config

    config = load_config(config_file)
    user = config.server.user if options.user is None else options.user
    if user and os.geteuid() != 0:
        if pwd.getpwuid(os.geteuid()).pw_name != user:
            raise ConfigError(f"serve must start as root to run as {user!r}", "server.user")
        user = ""  # already that user
    elif user:
        prepare_for_user(config, user)
    elif os.geteuid() == 0:
        sys.stderr.write("phoneprov serve: warning: running as root; set server.user\n")
    argv = uwsgi_argv(replace(options, user=user))
    if options.http != "socket":
        prepare_socket_dir(worker_socket(user).parent, user)
    env = server_env(options, config_file, server_url, os.environ)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], argv, env)
