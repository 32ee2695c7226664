"""The Flask app: `create_app(config)` + the provisioning blueprint, and the fast path.

Every provisioning URL is answered by `Provisioning.handle` (web/service.py), which parses
it with `core.layout.parse_request` — the same module `phoneprov options` builds URLs with.

The fast path is WSGI middleware in front of Flask (`app.wsgi_app`): a plain GET or HEAD
(no body, a query without escapes) is answered straight from `Provisioning` — a cache hit
for an allowed device from `cached_reply`, anything else from `handle` — with the very
bytes and headers the blueprint would send. Everything else (other methods, bodies, escaped
queries) goes through Flask. Measured here, Flask's own per-request work (~120 µs) alone
caps a process below the throughput goal, and importing it costs ~8 MB per process
(DESIGN §5): `create_wsgi` — what `phoneprov serve` runs — makes the Flask app only when
the first request the fast path does not take arrives, which phones never send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .access import client_ip
from .endpoint import Provisioning, Reply

if TYPE_CHECKING:
    from flask import Flask

    from ..config import Config

log = logging.getLogger("phoneprov.web")

EXTENSION = "phoneprov"
METHODS = ("GET", "HEAD")
MAX_QUERY = 256

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def create_app(
    config: Config | None = None,
    *,
    service: Provisioning | None = None,
    server: str | None = None,
    fast_path: bool = True,
) -> Flask:
    """The HTTP endpoint for `config` (default: $PHONEPROV_CONFIG or the default path)."""
    if service is None:
        from ..config import load_config

        config = config or load_config()
        service = Provisioning.from_config(config, server)
    app = _flask_app(service)
    if fast_path:
        app.wsgi_app = FastPath(app.wsgi_app, service)  # type: ignore[method-assign]
    _warn_if_open(service)
    return app


def create_wsgi(service: Provisioning) -> WsgiApp:
    """The fast path over a Flask app made at its first use: what `phoneprov serve` runs."""
    _warn_if_open(service)
    return FastPath(LazyApp(lambda: _flask_app(service)), service)


def _flask_app(service: Provisioning) -> Flask:
    from flask import Flask

    from .routes import blueprint

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 0  # phones send no bodies
    app.extensions[EXTENSION] = service
    app.register_blueprint(blueprint)
    return app


def _warn_if_open(service: Provisioning) -> None:
    if service.mode == "open":
        log.warning("security mode OPEN: any client gets any device's files (labs only)")


class LazyApp:
    """A WSGI app made by `make` when its first request arrives (once, thread-safe)."""

    def __init__(self, make: Callable[[], WsgiApp]) -> None:
        self.make = make
        self.app: WsgiApp | None = None
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if self.app is None:
            with self.lock:
                if self.app is None:
                    log.info("loading Flask for a %r request", environ.get("REQUEST_METHOD"))
                    self.app = self.make()
        return self.app(environ, start_response)


def provisioning(app: Flask) -> Provisioning:
    service: Provisioning = app.extensions[EXTENSION]
    return service


def reply_headers(reply: Reply) -> list[tuple[str, str]]:
    """The response headers for a reply (shared by the blueprint and the fast path)."""
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
    if reply.etag is not None:
        headers += [("ETag", reply.etag), ("Cache-Control", "no-cache")]
    if reply.status == 304:
        headers = headers[2:]
    return headers


STATUS_LINES = {
    200: "200 OK",
    304: "304 Not Modified",
    403: "403 Forbidden",
    404: "404 Not Found",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
}


class FastPath:
    """Answer plain GET/HEAD requests from `Provisioning` without Flask; pass the rest on."""

    def __init__(self, app: WsgiApp, service: Provisioning) -> None:
        self.app = app
        self.service = service
        self.trusted_proxies = service.trusted_proxies

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if (
            method in METHODS
            and not environ.get("CONTENT_LENGTH", "0").strip("0")
            and "HTTP_TRANSFER_ENCODING" not in environ
            and path.isascii()
        ):
            query = environ.get("QUERY_STRING", "")
            query_mac = _query_mac(query) if query else None
            if query_mac is not False:
                service = self.service
                ip = client_ip(environ, self.trusted_proxies)
                if_none_match = environ.get("HTTP_IF_NONE_MATCH")
                reply = service.cached_reply(path, query_mac, ip, if_none_match)
                if reply is None:
                    reply = service.handle(path, query_mac, ip, if_none_match)
                start_response(STATUS_LINES[reply.status], reply_headers(reply))
                return [b""] if method == "HEAD" else [reply.body]
        return self.app(environ, start_response)


def _query_mac(query: str) -> str | bool | None:
    """The `mac` argument of a plain query string; False when it needs the full parser."""
    if len(query) > MAX_QUERY or "%" in query or "+" in query:
        return False
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == "mac":
            return value
    return None
