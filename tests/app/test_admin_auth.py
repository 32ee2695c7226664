"""The admin app's authentication through Flask's test client: login, session cookie, CSRF,
cross-site refusals, login rate limit, API tokens; every negative the issue names."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from admin_sample import PASSWORD, USER, admin_config, csrf_of, logged_in
from phoneprov.admin import auth
from phoneprov.admin.app import create_admin_app, session_key_path
from phoneprov.admin.users import add_user, create_token, remove_user


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_admin_app(admin_config(tmp_path))


@pytest.mark.parametrize("path", ["/api/v1/phones", "/api/v1/doctor", "/api/v1/fetches"])
def test_api_without_credentials_is_401_json(app: Flask, path: str) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 401
    assert response.get_json() == {
        "error": "authentication required: log in or send Authorization: Bearer"
    }
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_pages_without_a_session_redirect_to_login(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/phones/00095200000E?a=1&b=2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fphones%2F00095200000E%3Fa%3D1%26b%3D2"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'name="next" value="/phones/00095200000E?a=1&amp;b=2"' in page


def test_login_page_and_static_need_nothing(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/login").status_code == 200
    with client.get("/static/admin.js") as response:
        assert response.status_code == 200


def test_login_sets_a_strict_httponly_cookie(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    response = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert client.get("/api/v1/phones").status_code == 200


def test_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    app = create_admin_app(admin_config(tmp_path), tls=True)
    client = app.test_client()
    token = csrf_of(client)
    response = client.post(
        "/login",
        base_url="https://localhost",
        data={"username": USER, "password": PASSWORD, "csrf_token": token},
    )
    assert "Secure" in response.headers["Set-Cookie"]


def test_session_key_made_once_private(tmp_path: Path) -> None:
    config = admin_config(tmp_path)
    create_admin_app(config)
    key_file = session_key_path(config.admin.users_file)
    key = key_file.read_bytes()
    assert len(key) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    create_admin_app(config)
    assert key_file.read_bytes() == key


@pytest.mark.parametrize(
    "form",
    [
        {"username": USER, "password": "wrong password"},
        {"username": "mallory", "password": PASSWORD},
    ],
)
def test_wrong_login_is_401_and_no_session(app: Flask, form: dict[str, str]) -> None:
    client = app.test_client()
    response = client.post("/login", data=form | {"csrf_token": csrf_of(client)})
    assert response.status_code == 401
    assert "Wrong user name or password" in response.get_data(as_text=True)
    assert client.get("/api/v1/phones").status_code == 401


def test_login_without_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": USER, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/api/v1/phones").status_code == 401


def test_login_rate_limited_per_source(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    bad = {"username": USER, "password": "nope-nope", "csrf_token": token}
    for _ in range(auth.LOGIN_FAILURES):
        assert client.post("/login", data=bad).status_code == 401
    good = {"username": USER, "password": PASSWORD, "csrf_token": token}
    limited = client.post("/login", data=good)  # even the right password waits
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= auth.LOGIN_WINDOW_S
    other = app.test_client()  # another source address is not limited
    other_token = csrf_of(other)
    response = other.post(
        "/login",
        data=good | {"csrf_token": other_token},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert response.status_code == 302


def test_limiter_window_and_bound() -> None:
    now = [0.0]
    limiter = auth.LoginLimiter(failures=2, window=60, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after("a") == 0
    limiter.failed("a")
    assert limiter.retry_after("a") == 60
    now[0] = 59.5
    assert limiter.retry_after("a") == 1
    now[0] = 60.0
    assert limiter.retry_after("a") == 0
    for n in range(auth.MAX_TRACKED + 10):
        limiter.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._seen) <= auth.MAX_TRACKED


def test_state_change_needs_the_csrf_token(app: Flask) -> None:
    client, token = logged_in(app)
    url = "/api/v1/phones/00095200000E/resync"
    missing = client.post(url)
    assert missing.status_code == 403
    assert missing.get_json() == {"error": "missing or wrong CSRF token"}
    wrong = client.post(url, headers={"X-CSRF-Token": token + "x"})
    assert wrong.status_code == 403
    logout = client.post("/logout")  # a form without its field
    assert logout.status_code == 403
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/phones").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "https://localhost"},  # another scheme is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_cross_site_post_is_403_even_with_the_token(app: Flask, headers: dict[str, str]) -> None:
    client, token = logged_in(app)
    response = client.post(
        "/api/v1/discovered/000952ABCDEF/enrol",
        json={"model": "D200", "profile": "default"},
        headers=headers | {"X-CSRF-Token": token},
    )
    assert response.status_code == 403
    assert response.get_json() == {"error": "cross-site request refused"}


def test_cross_site_login_is_refused(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={"username": USER, "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403


def test_same_origin_post_with_token_passes(app: Flask) -> None:
    client, token = logged_in(app)
    response = client.post(
        "/api/v1/discovered/000952ABCDEF/enrol",
        json={"model": "D200", "profile": "default"},
        headers={
            "X-CSRF-Token": token,
            "Origin": "http://localhost",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    assert response.status_code == 404  # past auth: not discovered


def test_bearer_token(tmp_path: Path) -> None:
    config = admin_config(tmp_path)
    app = create_admin_app(config)
    token = create_token(config.admin.users_file, "ci", 0.0)
    client = app.test_client()
    ok = client.get("/api/v1/phones", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and len(ok.get_json()["phones"]) == 3
    # a state change without CSRF token: a Bearer request carries no cookie
    resync = client.post(
        "/api/v1/phones/00095200000E/resync", headers={"Authorization": f"Bearer {token}"}
    )
    assert resync.status_code == 200
    for wrong in (f"Bearer {token}x", f"Basic {token}", "Bearer "):
        response = client.get("/api/v1/phones", headers={"Authorization": wrong})
        assert response.status_code == 401
        assert response.get_json() == {"error": "wrong or revoked API token"}


def test_removed_user_loses_the_session(tmp_path: Path) -> None:
    config = admin_config(tmp_path)
    app = create_admin_app(config)
    client, _token = logged_in(app)
    assert client.get("/api/v1/phones").status_code == 200
    remove_user(config.admin.users_file, USER)
    assert client.get("/api/v1/phones").status_code == 401


def test_a_new_password_ends_the_other_sessions(tmp_path: Path) -> None:
    config = admin_config(tmp_path)
    app = create_admin_app(config)
    client, _token = logged_in(app)
    add_user(config.admin.users_file, USER, "a new password")
    assert client.get("/api/v1/phones").status_code == 401


@pytest.mark.parametrize(
    ("target", "expected"),
    [("//evil.example/", "/"), ("http://evil.example/", "/"), ("/doctor", "/doctor")],
)
def test_next_never_leaves_the_site(app: Flask, target: str, expected: str) -> None:
    client = app.test_client()
    response = client.post(
        "/login",
        data={
            "username": USER,
            "password": PASSWORD,
            "csrf_token": csrf_of(client),
            "next": target,
        },
    )
    assert response.headers["Location"] == expected


def test_security_headers(app: Flask) -> None:
    response = app.test_client().get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_no_users_is_said_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = admin_config(tmp_path)
    remove_user(config.admin.users_file, USER)
    with caplog.at_level("WARNING", "phoneprov.admin"):
        create_admin_app(config)
    assert "no admin users in" in caplog.text and "phoneprov admin-user add NAME" in caplog.text
