"""`phoneprov plan`: both sides gathered from a Config, compared by `core.plan`; writes nothing.

The applied side: the DHCP lines from the files in dhcp-hostsdir / dhcp-optsdir (what dnsmasq
reads: the truth for DHCP); each device's fields as the last apply recorded them
(`dnsmasq.fields`); each file's digest and the leases from the state database, opened
read-only (`State.read_only`), as the last `apply --resync` recorded them.
The new side: the inventory (and enrolled phones) validated and checked as `check` does
(a broken one raises: exit 2 naming file:line), every device's files rendered, its dnsmasq
lines computed as `apply` computes them. No directory, database, lock or secret is written:
a missing token secret is not created (the lines are then unknown, and the plan says so).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from .config import Config
from .core import dnsmasq_conf as conf
from .core.errors import ConfigError
from .core.plan import DhcpFiles, Fields, Plan, device_fields
from .core.plan import make_plan as compare
from .dnsmasq.apply import plan as dhcp_plan
from .dnsmasq.fields import load_fields, secret_digest
from .dnsmasq.fragdir import managed_names
from .render import Catalog
from .render.check import check_templates, site_warnings
from .sip.changes import rendered_digests
from .site import enrolled_records, resolve_settings
from .state.db import State


def make_plan(config: Config, now: float | None = None) -> Plan:
    """What `apply` (and `apply --resync`) would change now; raises ConfigError(s) like
    `check` for a broken inventory or template. `now`: for which leases are live."""
    settings = resolve_settings(config)
    enrolled = enrolled_records(config.state, read_only=True)
    problems = site_warnings(config)  # the warnings `check` prints, in its words
    # the inventory with the enrolled phones, validated; its files rendered once, for both
    # the check and the digests (as far as the catalog's bounded cache holds them)
    catalog = Catalog(config, server=settings.server_url, extra=lambda: enrolled, log_invalid=False)
    inventory = catalog.inventory
    check_templates(config, inventory, problems, catalog)  # raises for what `check` calls an error

    known, secret = _token_secret(config, settings)
    dhcp = dhcp_plan(settings, list(inventory.devices), secret) if known else {}
    digests = rendered_digests(catalog, dhcp, settings.layout.style)
    fields_before, salt = load_fields(config.dhcp.hostsdir)
    secret_of = secret_digest(salt)
    fields_after = {mac: device_fields(d, secret_of) for mac, d in inventory.devices.items()}

    when = time.time() if now is None else now
    digests_before, files_before, leased = _recorded(config, set(inventory.devices), when)
    summary = {mac: f"{d.type}, profile {d.profile}" for mac, d in inventory.devices.items()}
    for mac, fields in (fields_before or {}).items():
        summary.setdefault(mac, _described(fields))
    return compare(
        fields_before=fields_before,
        fields_after=fields_after,
        files_before=files_before,
        files_after=digests.parts,
        dhcp_before=on_disk(config),
        dhcp_after={m: DhcpFiles(f.host, f.opts) for m, f in dhcp.items()} if known else None,
        digests_before=digests_before,
        digests_after=digests.devices if known else {},
        leased=leased,
        problems=problems,
        summary=summary,
    )


Recorded = tuple[dict[str, str], dict[str, dict[str, str]] | None, set[str]]


def _recorded(config: Config, macs: set[str], when: float) -> Recorded:
    """From the state database (read-only): each device's digest and each file's digest as
    the last `apply --resync` recorded them, and the MACs holding a lease at `when`."""
    if not config.state.exists():
        return {}, None, set()
    try:
        return _read_state(config.state, macs, when)
    except sqlite3.DatabaseError:
        pass  # without a WAL it is read as immutable: a writer changed it meanwhile
    try:
        return _read_state(config.state, macs, when)
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"cannot read the state database ({e}); try again") from None


def _read_state(path: Path, macs: set[str], when: float) -> Recorded:
    with State.read_only(path) as state:
        digests = state.rendered()
        files = state.rendered_files() if digests else None
        return digests, files, {m for m in macs if state.lease_for(m, when)}


def on_disk(config: Config) -> dict[str, DhcpFiles]:
    """MAC → the device's files as they are in the two directories (names apply manages)."""
    found: dict[str, list[str | None]] = {}
    for index, directory in enumerate((config.dhcp.hostsdir, config.dhcp.optsdir)):
        for name, text in _files(directory).items():
            found.setdefault(name, [None, None])[index] = text
    return {name: DhcpFiles(host, opts) for name, (host, opts) in found.items()}


def _files(directory: Path) -> dict[str, str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    out = {}
    for name in managed_names(names):
        try:
            out[name] = (directory / name).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # removed meanwhile by an apply
            continue
    return out


def _token_secret(config: Config, settings: conf.DhcpSettings) -> tuple[bool, bytes | None]:
    """(known, the token secret): (True, None) without tokens; (False, None) when the
    secret is not made yet (the first apply makes it; we do not)."""
    if not settings.tokens:
        return True, None
    from .secret import load_secret

    if not config.security.secret_file.exists():
        return False, None
    return True, load_secret(config.security.secret_file)  # it exists: only read


def _described(fields: Fields) -> str:
    return f"{fields.get('type', '?')}, profile {fields.get('profile', '?')}"
