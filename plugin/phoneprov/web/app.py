"""The Flask app: `create_app(config)` + the provisioning blueprint, and the fast path.

Every provisioning URL is answered by `Provisioning.handle` (web/service.py), which parses
it with `core.layout.parse_request` — the same module `phoneprov options` builds URLs with.

The fast path is WSGI middleware in front of Flask (`app.wsgi_app`): a request that is a
cache hit for an allowed device is answered straight from `Provisioning.cached_reply`,
with the very bytes and headers the blueprint would send. Everything else — misses,
refusals, errors, other URLs — goes through Flask. Measured here, Flask's own per-request
work (~120 µs) alone caps a process below the throughput goal (DESIGN §5).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .access import client_ip
from .service import Provisioning, Reply

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
    from flask import Flask

    from ..config import load_config
    from .routes import blueprint

    if service is None:
        config = config or load_config()
        service = Provisioning.from_config(config, server)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 0  # phones send no bodies
    app.extensions[EXTENSION] = service
    app.register_blueprint(blueprint)
    if fast_path:
        app.wsgi_app = FastPath(app.wsgi_app, service)  # type: ignore[method-assign]
    if service.mode == "open":
        log.warning("security mode OPEN: any client gets any device's files (labs only)")
    return app


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


STATUS_LINES = {200: "200 OK", 304: "304 Not Modified"}


class FastPath:
    """Answer cache hits for allowed devices without Flask; pass everything else on."""

    def __init__(self, app: WsgiApp, service: Provisioning) -> None:
        self.app = app
        self.service = service
        self.trusted_proxies = service.trusted_proxies

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method in METHODS and not environ.get("CONTENT_LENGTH", "0").strip("0"):
            query = environ.get("QUERY_STRING", "")
            query_mac = _query_mac(query) if query else None
            if query_mac is not False:
                reply = self.service.cached_reply(
                    environ.get("PATH_INFO", ""),
                    query_mac,
                    client_ip(environ, self.trusted_proxies),
                    environ.get("HTTP_IF_NONE_MATCH"),
                )
                if reply is not None:
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
