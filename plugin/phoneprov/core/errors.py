"""One error base for the project, split by whose fault it is (as h11 splits Local/Remote).

- `InputError`: a value that came from outside (a phone, a DHCP packet, a CLI argument,
  an HTTP request) is malformed. Adapters answer it: HTTP 4xx, hook logs, CLI exit 2.
- `SyncError`: `phoneprov sync` could not fetch, verify or take a revision (its reason
  says which: git's own message, a bad signature, a missing site directory).
- `ConfigError`: our own configuration (config file, inventory, templates) is wrong.
  It carries where: `file:line` when known, so an admin can go straight there.
"""

from __future__ import annotations


class PhoneprovError(Exception):
    """Base class of every error phoneprov raises on purpose."""


class InputError(PhoneprovError, ValueError):
    """A value from outside is malformed."""


class ConfigError(PhoneprovError):
    """Our configuration is wrong; `where` is `file:line` or `file` or empty."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.message = message
        self.where = where


class ConfigErrors(ConfigError):
    """Several configuration errors found in one pass (validation reports them all)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


class SyncError(PhoneprovError):
    """`phoneprov sync` could not get or take a revision; the message says why."""


class RevisionRefused(SyncError):
    """The revision itself cannot be taken (its check, its signature, its tree): `sync`
    records it as refused. A plain SyncError (git failed, a full disk) is not recorded."""
