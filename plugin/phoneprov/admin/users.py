"""Admin users and API tokens: one small text file beside the config (`[admin] users_file`).

    # phoneprov admin users and API tokens: phoneprov admin-user / admin-token
    user alice scrypt$16384$8$1$<salt>$<hash>
    token ci sha256$<hex> 1767225600

Passwords are kept as scrypt hashes (a salt per user, the parameters stored with the hash);
tokens as the SHA-256 of the token (a token is 256 random bits: no stretching needed), shown
once when created. The file is mode 0600, written atomically (temp file + rename), and keeps
its owner; a new one is given to `owner` (the user the admin service runs as).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import ConfigError, InputError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB for ~50 ms, once per login
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD = 8
TOKEN_PREFIX = "ppa_"
HEADER = "# phoneprov admin users and API tokens: phoneprov admin-user / admin-token\n"
# what a login of an unknown user is checked against, so it costs what a known one costs
_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


@dataclass
class Accounts:
    users: dict[str, str] = field(default_factory=dict)  # name -> encoded scrypt hash
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # name -> (digest, created)


def check_name(name: str, what: str = "user name") -> str:
    if not NAME.fullmatch(name):
        raise InputError(f"{what} must be 1-64 letters, digits, '_', '.', '@', '-': {name!r}")
    return name


# passwords ----------------------------------------------------------------------------------
def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64), a fresh 16-byte salt unless one is given."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches an encoded hash (constant-time compare); False when the
    hash is malformed."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt, validate=True),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except ValueError:  # also binascii.Error
        return False
    return hmac.compare_digest(got, expected)


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    if password != password.strip() or "\n" in password:
        raise InputError("the password must not begin or end with blanks")
    return password


# the file -----------------------------------------------------------------------------------
def load(path: Path) -> Accounts:
    """The users and tokens in `path` (none when it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Accounts()
    except OSError as e:
        raise ConfigError(f"cannot read the admin users file: {e.strerror}", str(path)) from None
    accounts = Accounts()
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "user" and len(fields) == 3:
            accounts.users[fields[1]] = fields[2]
        elif fields[0] == "token" and len(fields) == 4:
            accounts.tokens[fields[1]] = (fields[2], float(fields[3]))
        else:
            raise ConfigError(
                "not a `user NAME HASH` or `token NAME DIGEST TIME` line", f"{path}:{number}"
            )
    return accounts


def save(path: Path, accounts: Accounts, owner: str | None = None) -> None:
    """Write atomically, mode 0600; keep the file's owner, or give a new one to `owner`."""
    lines = [HEADER]
    lines += [f"user {name} {encoded}\n" for name, encoded in sorted(accounts.users.items())]
    lines += [
        f"token {name} {digest} {created:.0f}\n"
        for name, (digest, created) in sorted(accounts.tokens.items())
    ]
    write_private(path, "".join(lines).encode(), owner)


def write_private(path: Path, data: bytes, owner: str | None = None) -> None:
    """`data` into `path` atomically, mode 0600, owned as before (or by `owner` when new and
    we are root)."""
    uid_gid = _owner_of(path) or _user_ids(owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        if uid_gid is not None and os.geteuid() == 0:
            os.chown(temp, *uid_gid)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _owner_of(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_uid, st.st_gid


def _user_ids(name: str | None) -> tuple[int, int] | None:
    if not name:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


# users ----------------------------------------------------------------------------------------
def add_user(path: Path, name: str, password: str, owner: str | None = None) -> bool:
    """Add a user or set a user's password; True when the user is new."""
    accounts = load(path)
    new = check_name(name) not in accounts.users
    accounts.users[name] = hash_password(check_password(password))
    save(path, accounts, owner)
    return new


def remove_user(path: Path, name: str) -> None:
    accounts = load(path)
    if accounts.users.pop(name, None) is None:
        raise InputError(f"no admin user {name!r} in {path}")
    save(path, accounts)


def one_time_password(path: Path, name: str = "admin", owner: str | None = None) -> str:
    """A fresh random password for `name` (added, or its password replaced): the demo's."""
    password = secrets.token_urlsafe(12)
    add_user(path, name, password, owner)
    return password


def check_login(accounts: Accounts, name: str, password: str) -> bool:
    """Whether the name and password match; an unknown name costs the same work."""
    encoded = accounts.users.get(name)
    ok = verify_password(password, encoded or _DUMMY)
    return ok and encoded is not None


# tokens ---------------------------------------------------------------------------------------
def token_digest(token: str) -> str:
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def create_token(path: Path, name: str, now: float, owner: str | None = None) -> str:
    """A new API token named `name` (replacing one of that name); returned once, only its
    digest is stored."""
    accounts = load(path)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    accounts.tokens[check_name(name, "token name")] = (token_digest(token), now)
    save(path, accounts, owner)
    return token


def revoke_token(path: Path, name: str) -> None:
    accounts = load(path)
    if accounts.tokens.pop(name, None) is None:
        raise InputError(f"no API token {name!r} in {path}")
    save(path, accounts)


def token_name(accounts: Accounts, token: str) -> str | None:
    """The name of the token, or None; every stored digest is compared (constant time each)."""
    digest = token_digest(token)
    found = None
    for name, (stored, _created) in accounts.tokens.items():
        if hmac.compare_digest(stored, digest):
            found = name
    return found
