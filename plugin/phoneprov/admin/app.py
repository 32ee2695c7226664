"""The admin service's Flask app: `create_admin_app(config)`.

The JSON API (`/api/v1`, `api.blueprint`), the login routes (`auth.blueprint`) and the pages
(`pages.pages`) behind one authentication check (`auth.require_login`); `static/` is served
at /static/ without it. The session cookie is HttpOnly, SameSite=Strict, and Secure under
TLS; it is signed with a key made once into a file beside the users file (mode 0600).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from . import auth
from .service import AdminService
from .users import write_private

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger("phoneprov.admin")

HERE = Path(__file__).parent
SESSION_HOURS = 12
KEY_BYTES = 32
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def session_key_path(users_file: Path) -> Path:
    return users_file.with_name(users_file.name + ".key")


def session_key(path: Path, owner: str | None = None) -> bytes:
    """The key that signs session cookies: read from `path`, made there once (0600)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = b""
    if len(key) < KEY_BYTES:
        key = secrets.token_bytes(KEY_BYTES)
        write_private(path, key, owner)
    return key


def create_admin_app(
    config: Config | None = None,
    *,
    tls: bool = False,
    service: AdminService | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The admin app for `config` (default: $PHONEPROV_CONFIG or the default path). `tls`:
    served over HTTPS (the session cookie gets Secure)."""
    if config is None:
        from ..config import load_config

        config = load_config(follow_live=True)  # runs on: follows a sync's switch
    app = Flask(
        __name__,
        static_folder=str(HERE / "static"),
        static_url_path="/static",
        template_folder=str(HERE / "templates"),
    )
    users_file = config.admin.users_file
    app.config.update(
        SECRET_KEY=session_key(session_key_path(users_file), config.server.user),
        SESSION_COOKIE_NAME="phoneprov_admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=tls,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[auth.EXTENSION] = auth.Auth(users_file)
    if not app.extensions[auth.EXTENSION].accounts.current().users:
        log.warning(
            "no admin users in %s: add one with `phoneprov admin-user add NAME`", users_file
        )
    app.extensions[SERVICE] = service or AdminService(config, clock=clock)
    app.jinja_env.globals["csrf_token"] = auth.csrf_token
    app.before_request(auth.require_login)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.after_request(_headers)
    app.register_blueprint(auth.blueprint)

    from .api import blueprint as api_blueprint

    app.register_blueprint(api_blueprint, url_prefix="/api/v1")
    try:
        from .pages import pages
    except ImportError as e:  # the pages come with their own module; the API works without
        log.warning("admin pages not available (%s): the JSON API only", e)
        app.add_url_rule("/", "index", _no_pages)
    else:
        app.register_blueprint(pages)
    return app


SERVICE = "phoneprov_admin_service"


def _no_pages() -> str:
    return render_template("base.html")


def _http_error(e: HTTPException) -> Any:
    """The API answers errors as JSON (405, 413...); pages keep Flask's own."""
    if not request.path.startswith("/api/"):
        return e
    if e.code == 404:
        return auth.error(404, f"no such API route: {request.path}")
    return auth.error(e.code or 500, f"{e.name}: {request.method} {request.path}")


def _unexpected(e: Exception) -> Any:
    """A bug or an outage (the state database locked for too long...): logged with its
    traceback; the API still answers JSON."""
    if isinstance(e, HTTPException):
        return _http_error(e)
    log.exception("admin: %s %s failed", request.method, request.path)
    if request.path.startswith("/api/"):
        return auth.error(500, f"internal error ({type(e).__name__}); the server log has it")
    return Response("internal error; the server log has it\n", 500, content_type="text/plain")


def _headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not response.headers.get("Cache-Control"):
        response.headers["Cache-Control"] = "no-store"
    return response


def admin_service(app: Any) -> AdminService:
    found: AdminService = app.extensions[SERVICE]
    return found
