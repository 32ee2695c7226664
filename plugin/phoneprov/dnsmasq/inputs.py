"""What `phoneprov apply`'s files are computed from, as one digest, so that an apply whose
inputs did not change can stop before loading (and validating) the inventory again.

The inputs: phoneprov's own code (every module's size and mtime: any upgrade or edit), the
config file's bytes and the settings resolved from it (an `auto` address), the inventory
file(s) by bytes and by identity (inode, mtime, size: an edit and its undo differ), the
token secret and the auto-enrolled phones. The manifest keeps the digest of the last apply;
it is computed before the inventory is loaded, so an edit made meanwhile only makes the next
apply do the whole work again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .. import __file__ as _package_init
from ..config import Config
from ..core import dnsmasq_conf as conf
from ..site import enrolled_records

PACKAGE = Path(_package_init).parent


def inputs_digest(config: Config, settings: conf.DhcpSettings, secret: bytes | None) -> str:
    digest = hashlib.blake2b(digest_size=16)

    def add(*parts: object) -> None:
        for part in parts:
            data = part if isinstance(part, bytes) else repr(part).encode()
            digest.update(b"%d:" % len(data) + data)

    add(*_code_identity(), repr(settings))
    for path in (config.path, *inventory_files(config)):
        add(*_file(path))
    add(secret or b"", *(r.fields for r in enrolled_records(config.state)))
    return digest.hexdigest()


def inventory_files(config: Config) -> list[Path]:
    """The files `load_inventory` reads: the inventory, and for a CSV the TOML beside it."""
    path = config.inventory_path
    return [path, path.with_suffix(".toml")] if path.suffix.lower() == ".csv" else [path]


def _code_identity() -> list[tuple[str, int, int]]:
    out = []
    for directory, _dirs, names in sorted(os.walk(PACKAGE)):
        for name in sorted(names):
            if name.endswith((".py", ".json")):
                st = os.stat(os.path.join(directory, name))
                out.append((name, st.st_size, st.st_mtime_ns))
    return out


def _file(path: Path) -> tuple[object, ...]:
    try:
        with open(path, "rb") as handle:
            st = os.fstat(handle.fileno())
            return (str(path), st.st_ino, st.st_mtime_ns, st.st_size, handle.read())
    except OSError as e:  # loading it will say what is wrong
        return (str(path), e.errno)
