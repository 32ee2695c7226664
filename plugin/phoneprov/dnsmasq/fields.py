"""What the last apply applied, field by field: the "before" side of `phoneprov plan`.

Every apply that loads the inventory records each device's fields (`core.plan.device_fields`)
as one JSON file in the hostsdir, `.phoneprov-fields` (dnsmasq ignores dot files), rewritten
only when its text changes. Secret values (SIP passwords) are kept as keyed digests, never
as themselves: the key (`salt`) is random per site and kept in the file, so a changed
password shows as changed and nothing else about it. The file is 0600: the plan is root's.
An apply that stops early (its inputs as the last one's) leaves the file as it is: it already
says what is applied.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path

from ..core.inventory import Inventory
from ..core.plan import Fields, device_fields
from ..durable import write_atomic

FIELDS_NAME = ".phoneprov-fields"
FIELDS_MODE = 0o600
VERSION = 1
SALT_BYTES = 16


def secret_digest(salt: bytes) -> Callable[[str, str], str]:
    """`secret(path, value)` for `device_fields`: a digest keyed with the record's salt."""

    def secret(path: str, value: str) -> str:
        keyed = hashlib.blake2b(f"{path}\0{value}".encode(), key=salt, digest_size=16)
        return "digest:" + keyed.hexdigest()

    return secret


def fields_text(inventory: Inventory, salt: bytes) -> str:
    secret = secret_digest(salt)
    devices = {mac: device_fields(d, secret) for mac, d in inventory.devices.items()}
    record = {"version": VERSION, "salt": salt.hex(), "devices": devices}
    return json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n"


def load_fields(hostsdir: Path) -> tuple[dict[str, Fields] | None, bytes]:
    """The recorded fields by MAC (None: no usable record) and the salt of the record."""
    try:
        return parse_fields((hostsdir / FIELDS_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None, b""


def parse_fields(text: str) -> tuple[dict[str, Fields] | None, bytes]:
    try:
        record = json.loads(text)
        if record.get("version") != VERSION:
            return None, b""
        return dict(record["devices"]), bytes.fromhex(record["salt"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None, b""


def record_fields(hostsdir: Path, inventory: Inventory | None) -> None:
    """Make the record say `inventory` (None: not known, so no record is kept: a stale one
    would make `plan` wrong). Written atomically, only when its text changed."""
    path = hostsdir / FIELDS_NAME
    if inventory is None:
        path.unlink(missing_ok=True)
        return
    try:
        old = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        old = ""
    _fields, salt = parse_fields(old) if old else (None, b"")
    text = fields_text(inventory, salt or secrets.token_bytes(SALT_BYTES))
    if text == old:
        return
    # not flushed: apply's flushes stay a few per run, and a record a power cut lost only
    # makes `plan` say the fields are unknown; its temp file is swept if we are killed
    write_atomic(path, text.encode(), FIELDS_MODE, flush=False)
