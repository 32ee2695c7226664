"""What an admin's answer is computed from: the state database's facts, read once per
answer (`Facts`), when the site's files were last edited (`edited_at`), and line 1 of an
enrolment as the inventory writes lines (`line_table`)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import InputError
from ..core.inventory import Profile
from ..state.db import Fetch, Lease, State

if TYPE_CHECKING:
    from ..config import Config

HISTORY = 200  # fetch-log rows per phone its state is computed from


class Facts:
    """What the state database says, read once per answer."""

    def __init__(self, state: State | None, now: float) -> None:
        self.state = state
        self.now = now
        self._leases: dict[str, Lease | None] = {}
        self._fetches: dict[str, list[Fetch]] = {}
        self._changed: dict[str, float] = {}
        self.discovered = state.discovered() if state is not None else []
        self.recorded = state.rendered() if state is not None else {}  # at `apply --resync`
        if state is not None:
            self._changed = state.rendered_at()
            for row in state.enrolled():
                at = float(row["enrolled_at"])
                self._changed[row["mac"]] = max(at, self._changed.get(row["mac"], at))

    def lease(self, mac: str) -> Lease | None:
        if mac not in self._leases:
            self._leases[mac] = self.state.lease_for(mac, self.now) if self.state else None
        return self._leases[mac]

    def fetches(self, mac: str) -> list[Fetch]:
        if mac not in self._fetches:
            self._fetches[mac] = self.state.fetches(mac, HISTORY) if self.state else []
        return self._fetches[mac]

    def note_edits(self, macs: list[str], edited_at: float) -> None:
        """`macs` changed after the last `apply --resync`: at the latest edit of the files."""
        for mac in macs:
            self._changed[mac] = max(edited_at, self._changed.get(mac, edited_at))

    def changed_at(self, mac: str) -> float | None:
        """When the phone's files last changed, as far as known: its digest at the last
        `apply --resync` changed, it was enrolled, or (not recorded yet) the inventory or
        a template was edited since."""
        return self._changed.get(mac)


def edited_at(config: Config) -> float:
    """When the inventory or a template was last modified (their newest mtime)."""
    paths = [config.inventory_path, config.inventory_path.with_suffix(".toml")]
    paths += [Path(d, f) for d, _dirs, files in os.walk(config.templates) for f in files]
    newest = 0.0
    for path in paths:
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest


def line_table(line1: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Line 1 as the inventory writes it, from the enrol form's {user, password,
    display_name, registrar}; what it leaves out comes from the profile's line 1."""
    unknown = set(line1) - {"user", "password", "display_name", "registrar"}
    if unknown:
        raise InputError(
            f"line1 takes user, password, display_name, registrar; not {sorted(unknown)}"
        )
    if not all(isinstance(v, str) for v in line1.values()):
        raise InputError("line1's values must be strings")
    base = profile.settings.lines[0] if profile.settings.lines else None
    table: dict[str, Any] = {}
    if base is not None:
        table = {
            "registrar": base.registrar,
            "port": base.port,
            "domain": base.domain,
            "dtmf": base.dtmf,
            "register_interval": base.register_interval,
        }
    table |= {
        "username": line1.get("user", ""),
        "password": line1.get("password", ""),
        "display_name": line1.get("display_name", ""),
    }
    if line1.get("registrar"):
        table["registrar"] = line1["registrar"]
    if not table["username"]:
        raise InputError("line1 needs a user")
    if not table.get("registrar"):
        raise InputError(f"line1 needs a registrar (profile {profile.name} has no line 1)")
    return table
