"""Who may use the admin service: a session cookie (login page) or an API token (Bearer).

- Every request but the login page and static files needs one; without it `/api/v1` gets
  401 JSON and a page a redirect to /login.
- State-changing requests (anything but GET/HEAD/OPTIONS) made with the session cookie need
  the session's CSRF token, in the header `X-CSRF-Token` (the page's scripts) or the form
  field `csrf_token`; a cross-site one (Origin of another site, Sec-Fetch-Site cross-site or
  same-site) is refused first. Bearer requests carry no cookie: no CSRF token needed.
- Failed logins are counted per source address: `LOGIN_FAILURES` within `LOGIN_WINDOW_S`
  and the next attempts get 429 with Retry-After until the window ends (in memory, bounded).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from werkzeug.wrappers import Response as BaseResponse

from . import users

log = logging.getLogger("phoneprov.admin")

blueprint = Blueprint("auth", __name__)
EXTENSION = "phoneprov_admin_auth"
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 60.0
MAX_TRACKED = 4096
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_ENDPOINTS = ("auth.login", "static")
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class LoginLimiter:
    """Failed logins per source address in a fixed window; at most MAX_TRACKED addresses."""

    def __init__(
        self,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures, self.window, self.clock = failures, window, clock
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def retry_after(self, source: str) -> int:
        """Seconds until `source` may try again; 0: now."""
        start, count = self._seen.get(source, (0.0, 0))
        left = start + self.window - self.clock()
        return max(1, int(left + 0.999)) if count >= self.failures and left > 0 else 0

    def failed(self, source: str) -> None:
        with self._lock:
            now = self.clock()
            start, count = self._seen.get(source, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            if len(self._seen) >= MAX_TRACKED and source not in self._seen:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window}
                if len(self._seen) >= MAX_TRACKED:  # all recent: drop the oldest half
                    kept = sorted(self._seen.items(), key=lambda kv: kv[1][0])[MAX_TRACKED // 2 :]
                    self._seen = dict(kept)
            self._seen[source] = (start, count + 1)

    def succeeded(self, source: str) -> None:
        with self._lock:
            self._seen.pop(source, None)


class Accounts:
    """The users file, read again when it changes (one stat per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._accounts = users.Accounts()
        self._lock = threading.Lock()

    def current(self) -> users.Accounts:
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        with self._lock:
            if stamp != self._stamp:
                self._accounts = users.load(self.path)
                self._stamp = stamp
            return self._accounts


class Auth:
    """The app's accounts and login limiter (in `app.extensions[EXTENSION]`)."""

    def __init__(self, users_file: Path, limiter: LoginLimiter | None = None) -> None:
        self.accounts = Accounts(users_file)
        self.limiter = limiter or LoginLimiter()


def _auth() -> Auth:
    auth: Auth = current_app.extensions[EXTENSION]
    return auth


def csrf_token() -> str:
    """The session's CSRF token (made at first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def error(status: int, message: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    return response


def _refuse(status: int, message: str) -> Response:
    """JSON for the API, plain text for pages."""
    if request.path.startswith("/api/"):
        return error(status, message)
    return Response(message + "\n", status, content_type="text/plain; charset=utf-8")


def _cross_site() -> str | None:
    """Why the request comes from another site, or None."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is not None:
        ours = urlsplit(request.host_url)
        theirs = urlsplit(origin)
        if (theirs.scheme, theirs.netloc) != (ours.scheme, ours.netloc):
            return f"Origin: {origin[:100]}"
    return None


def _csrf_ok() -> bool:
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    expected = session.get("csrf")
    return isinstance(expected, str) and hmac.compare_digest(sent.encode(), expected.encode())


def _check_state_change() -> BaseResponse | None:
    if request.method in SAFE_METHODS:
        return None
    why = _cross_site()
    if why is not None:
        log.warning(
            "refused a cross-site %s %s from %s (%s)",
            request.method,
            request.path,
            request.remote_addr,
            why,
        )
        return _refuse(403, "cross-site request refused")
    if not _csrf_ok():
        return _refuse(403, "missing or wrong CSRF token")
    return None


def require_login() -> BaseResponse | None:
    """`before_request`: authenticate every request but the open endpoints."""
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        name = (
            users.token_name(_auth().accounts.current(), token.strip())
            if scheme.lower() == "bearer"
            else None
        )
        if name is None:
            log.warning(
                "refused %s %s from %s: wrong API token",
                request.method,
                request.path,
                request.remote_addr,
            )
            response = _refuse(401, "wrong or revoked API token")
            response.headers["WWW-Authenticate"] = 'Bearer realm="phoneprov"'
            return response
        g.user, g.via = f"token:{name}", "token"
        return None
    user = session.get("user")
    if not isinstance(user, str) or session.get("pw") != _password_stamp(user):
        session.pop("user", None)
        if request.path.startswith("/api/"):
            response = error(401, "authentication required: log in or send Authorization: Bearer")
            response.headers["WWW-Authenticate"] = 'Bearer realm="phoneprov"'
            return response
        return redirect("/login?" + urlencode({"next": _safe_next(request.full_path.rstrip("?"))}))
    g.user, g.via = user, "session"
    return _check_state_change()


def _password_stamp(user: str) -> str | None:
    """A short digest of the user's password hash (None: no such user)."""
    encoded = _auth().accounts.current().users.get(user)
    return None if encoded is None else hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _safe_next(target: str | None) -> str:
    """A local path to go to after login (never another host)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if isinstance(session.get("user"), str):
            return redirect(_safe_next(request.args.get("next")))
        return render_template("login.html", next=_safe_next(request.args.get("next")))
    refused = _check_state_change()
    if refused is not None:
        return refused
    source = request.remote_addr or "-"
    auth = _auth()
    wait = auth.limiter.retry_after(source)
    if wait:
        log.warning("login rate limit: %s must wait %d s", source, wait)
        response = Response(
            render_template(
                "login.html", error="Too many failed logins: try again later.", next="/"
            ),
            429,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    name = request.form.get("username", "")
    password = request.form.get("password", "")
    target = _safe_next(request.form.get("next"))
    if not users.check_login(auth.accounts.current(), name, password):
        auth.limiter.failed(source)
        log.warning("failed admin login for %.64r from %s", name, source)
        page = render_template("login.html", error="Wrong user name or password.", next=target)
        return Response(page, 401)
    auth.limiter.succeeded(source)
    session.clear()  # a new session: nothing from before the login carries over
    session["user"] = name
    session["pw"] = _password_stamp(name)  # a new password (or removal) ends the session
    session.permanent = True
    csrf_token()
    log.info("admin %s logged in from %s", name, source)
    return redirect(target)


@blueprint.route("/logout", methods=["POST"])
def logout() -> Any:
    log.info("admin %s logged out", g.get("user"))
    session.clear()
    return redirect("/login")
