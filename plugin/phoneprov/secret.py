"""The appliance secret (per-device tokens are HMACs under it): read it, or create it once."""

from __future__ import annotations

import os
from pathlib import Path

SECRET_BYTES = 32


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """The secret in `path`; created 0600 from os.urandom when missing (race-safe)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it just now
            return load_secret(path)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
        data = path.read_bytes()
    if len(data) < 16:
        raise OSError(f"{path}: the secret is shorter than 16 bytes; delete it to make a new one")
    return data
