"""The Flask app: `create_app(config)` + the provisioning blueprint, behind a thin dispatch.

Every provisioning GET/HEAD is answered by `endpoint.respond` — the one request path, whose
URL grammar is `core.layout.parse_request` (the same module `phoneprov options` builds URLs
with). `FastPath` hands plain GET/HEAD requests to it directly and everything else to
Flask, whose view calls the same `respond`: the bytes, headers and access decision come
from one piece of code either way. Flask's own per-request work (~120 µs) alone would cap
a process below the throughput goal, and importing it costs ~8 MB per process (DESIGN §5):
`create_wsgi` — what `phoneprov serve` runs — makes the Flask app only when the first
request the dispatch does not take arrives, which phones never send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .endpoint import METHODS, Provisioning, has_body, respond

if TYPE_CHECKING:
    from flask import Flask

    from ..config import Config

log = logging.getLogger("phoneprov.web")

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

        config = config or load_config(follow_live=True)
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

    from .routes import EXTENSION, blueprint

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


class FastPath:
    """GET and HEAD without a body go straight to `respond`; the rest (other methods, bodies)
    to Flask, which answers them 405/413 with `endpoint.rejection`. A dispatch, not a second
    implementation."""

    def __init__(self, app: WsgiApp, service: Provisioning) -> None:
        self.app = app
        self.service = service

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in METHODS and not has_body(environ):
            status, headers, body = respond(self.service, environ)
            start_response(status, headers)
            return [body]
        return self.app(environ, start_response)
