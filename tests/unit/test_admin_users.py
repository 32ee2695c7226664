"""admin.users (scrypt hashes, API tokens, the users file) and the admin-user/admin-token CLI."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from phoneprov.admin import users
from phoneprov.cli import cli
from phoneprov.core.errors import ConfigError, InputError


def test_hash_round_trip_and_salt() -> None:
    encoded = users.hash_password("correct horse")
    assert encoded.startswith("scrypt$16384$8$1$")
    assert users.verify_password("correct horse", encoded)
    assert not users.verify_password("correct horsE", encoded)
    assert users.hash_password("correct horse") != encoded  # a fresh salt each time


@pytest.mark.parametrize("bad", ["", "scrypt$1$2", "md5$1$1$1$AA==$AA==", "scrypt$x$8$1$A$A"])
def test_malformed_hash_verifies_nothing(bad: str) -> None:
    assert not users.verify_password("anything", bad)


def test_users_file_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "admin-users"
    assert users.add_user(path, "alice", "s3cret-password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-password" not in path.read_text()
    assert not users.add_user(path, "alice", "another-password")  # a password change
    accounts = users.load(path)
    assert users.check_login(accounts, "alice", "another-password")
    assert not users.check_login(accounts, "alice", "s3cret-password")
    assert not users.check_login(accounts, "bob", "another-password")
    assert [p.name for p in tmp_path.iterdir()] == ["admin-users"]  # no temp file left
    users.remove_user(path, "alice")
    assert users.load(path).users == {}
    with pytest.raises(InputError, match="no admin user 'alice'"):
        users.remove_user(path, "alice")


@pytest.mark.parametrize(("name", "password"), [("a b", "long-enough"), ("alice", "short")])
def test_bad_name_or_password_is_refused(tmp_path: Path, name: str, password: str) -> None:
    with pytest.raises(InputError):
        users.add_user(tmp_path / "u", name, password)


def test_a_broken_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "u"
    path.write_text("# comment\nuser alice\n")
    with pytest.raises(ConfigError, match=f"{path}:2"):
        users.load(path)


def test_tokens_stored_as_digests(tmp_path: Path) -> None:
    path = tmp_path / "u"
    token = users.create_token(path, "ci", 1000.0)
    assert token.startswith(users.TOKEN_PREFIX) and token not in path.read_text()
    accounts = users.load(path)
    assert users.token_name(accounts, token) == "ci"
    assert users.token_name(accounts, token + "x") is None
    assert accounts.tokens["ci"][1] == 1000.0
    users.revoke_token(path, "ci")
    assert users.token_name(users.load(path), token) is None


def test_one_time_password_logs_in(tmp_path: Path) -> None:
    path = tmp_path / "u"
    password = users.one_time_password(path)
    assert users.check_login(users.load(path), "admin", password)
    assert users.one_time_password(path) != password


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "phoneprov.toml"
    config.write_text('[paths]\nstate = "state.db"\n')
    return config


def test_cli_user_password_from_stdin_never_argv(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["admin-user", "add", "-c", str(config), "alice"], input="pw-123456\n"
    )
    assert result.exit_code == 0, result.output
    assert "added alice" in result.output
    accounts = users.load(tmp_path / "admin-users")
    assert users.check_login(accounts, "alice", "pw-123456")
    listed = runner.invoke(cli, ["admin-user", "list", "-c", str(config)])
    assert listed.output.split() == ["USER", "alice"]
    short = runner.invoke(cli, ["admin-user", "add", "-c", str(config), "bob"], input="x\n")
    assert short.exit_code == 2 and "at least 8 characters" in short.stderr
    removed = runner.invoke(cli, ["admin-user", "remove", "-c", str(config), "alice"])
    assert removed.exit_code == 0 and users.load(tmp_path / "admin-users").users == {}


def test_cli_token_create_list_revoke(tmp_path: Path) -> None:
    config = _config(tmp_path)
    runner = CliRunner()
    token = runner.invoke(cli, ["admin-token", "create", "-c", str(config), "ci"]).output.strip()
    assert users.token_name(users.load(tmp_path / "admin-users"), token) == "ci"
    listed = runner.invoke(cli, ["admin-token", "list", "-c", str(config), "--json"])
    assert '"name": "ci"' in listed.output and token not in listed.output
    revoked = runner.invoke(cli, ["admin-token", "revoke", "-c", str(config), "ci"])
    assert revoked.exit_code == 0
    again = runner.invoke(cli, ["admin-token", "revoke", "-c", str(config), "ci"])
    assert again.exit_code == 2 and "no API token 'ci'" in again.stderr


def test_cli_password_prompt_twice_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal the password is asked twice, hidden (a pty is the child's terminal)."""
    import os
    import pty
    import sys

    config = _config(tmp_path)
    phoneprov = Path(sys.executable).parent / "phoneprov"
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        try:
            os.execv(
                str(phoneprov), [str(phoneprov), "admin-user", "add", "-c", str(config), "bob"]
            )
        finally:
            os._exit(127)  # never back into pytest
    seen = b""

    def until(text: bytes) -> None:
        nonlocal seen
        while text not in seen:
            chunk = os.read(fd, 1024)
            assert chunk, seen
            seen += chunk

    try:
        until(b"Password: ")
        os.write(fd, b"tty-password-1\n")
        until(b"Repeat for confirmation: ")
        os.write(fd, b"tty-password-1\n")
        until(b"added bob")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"tty-password-1" not in seen  # not echoed
    assert users.check_login(users.load(tmp_path / "admin-users"), "bob", "tty-password-1")
