"""`phoneprov plan`: what is applied against what an apply would write, compared; pure.

Each side comes in as plain mappings (the adapter `phoneprov.plan` gathers them):
- fields: MAC → {field path: value}, a device's inventory fields flattened by
  `device_fields` (secret values already replaced by a digest: the core never sees which);
  the applied side as the last apply recorded it, or None when it recorded none;
- files: MAC → {served file name: digest} ("" = the entry/reference file), the applied side
  as the last `apply --resync` recorded it (None: never);
- dhcp: MAC → `DhcpFiles`, the applied side as the files on disk say (the truth for DHCP), the
  new side as `apply` would write it (None: not computable, e.g. no token secret yet);
- digests: MAC → the one digest `apply --resync` compares (`core.changes`), and the MACs that
  hold a lease: together they say who would get a check-sync.
`Plan` renders as text (`text()`) and as JSON (`as_json()`); SIP passwords never appear in
either: a changed secret shows as `***` → `***`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass

from .changes import changed_devices
from .dnsmasq_conf import is_tombstone, tombstone
from .inventory import Device

JSON_VERSION = 1
MASK = "***"
ENTRY = ""  # the name of the entry (reference) file among a device's served files
HIDDEN = ("where",)  # dataclass fields that say where a value came from, not what it is
PART_LABELS = {
    ENTRY: "entry",
    "dhcp-host": "dhcp-hostsdir lines",
    "dhcp-opts": "dhcp-optsdir lines",
}

Fields = Mapping[str, str]


@dataclass(frozen=True)
class DhcpFiles:
    """A device's two dnsmasq files as text (None: no such file)."""

    host: str | None
    opts: str | None


@dataclass(frozen=True)
class FieldChange:
    path: str  # `lines[0].display_name`
    old: str | None  # None: not set before
    new: str | None  # None: not set any more


@dataclass(frozen=True)
class LineChange:
    directory: str  # "dhcp-hostsdir" | "dhcp-optsdir"
    old: tuple[str, ...]
    new: tuple[str, ...]


@dataclass(frozen=True)
class DeviceChange:
    mac: str
    fields: tuple[FieldChange, ...] | None  # None: unknown (no record of the applied fields)
    files: tuple[str, ...] | None  # changed served files; None: unknown
    dhcp: tuple[LineChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.fields or self.files or self.dhcp)


@dataclass(frozen=True)
class Plan:
    added: tuple[DeviceChange, ...]
    removed: tuple[DeviceChange, ...]
    updated: tuple[DeviceChange, ...]  # "changed" in the renderings
    check_sync: tuple[str, ...]  # changed devices holding a lease: `apply --resync` notifies
    no_lease: tuple[str, ...]  # changed devices without a lease: nothing is sent
    problems: tuple[str, ...] = ()  # what `check` reports (warnings; errors stop before)
    notes: tuple[str, ...] = ()  # what the plan cannot know, said plainly
    summary: Mapping[str, str] = field(default_factory=dict)  # MAC → "D200, profile x"

    @property
    def changed(self) -> bool:
        """Whether an apply (and `apply --resync`) would change anything."""
        return bool(self.added or self.removed or self.updated)

    def as_json(self) -> dict[str, object]:
        """The stable JSON form (README: "Plan: what an apply would change")."""
        return {
            "version": JSON_VERSION,
            "changed": self.changed,
            "added": [self._device_json(d) for d in self.added],
            "removed": [self._device_json(d) for d in self.removed],
            "changes": [self._device_json(d) for d in self.updated],
            "check_sync": list(self.check_sync),
            "no_lease": list(self.no_lease),
            "problems": list(self.problems),
            "notes": list(self.notes),
        }

    def _device_json(self, d: DeviceChange) -> dict[str, object]:
        return {
            "mac": d.mac,
            "device": self.summary.get(d.mac, ""),
            "fields": None
            if d.fields is None
            else [{"field": f.path, "old": f.old, "new": f.new} for f in d.fields],
            "files": None if d.files is None else [file_label(n) for n in d.files],
            "dhcp": [
                {"directory": c.directory, "old": list(c.old), "new": list(c.new)} for c in d.dhcp
            ],
        }

    def text(self) -> str:
        """For the admin: one block per device, then check-sync, problems and notes."""
        out: list[str] = []
        for sign, title, devices in (
            ("+", "added", self.added),
            ("-", "removed", self.removed),
            ("~", "changed", self.updated),
        ):
            for d in devices:
                what = self.summary.get(d.mac, "")
                out.append(f"{sign} {d.mac} {title}" + (f" ({what})" if what else ""))
                out.extend(_device_lines(d, details=sign == "~"))
        if not self.changed:
            out.append("no change")
        if self.check_sync:
            out.append(f"check-sync (apply --resync): {' '.join(self.check_sync)}")
        if self.no_lease:
            out.append(f"changed, no lease, so no check-sync: {' '.join(self.no_lease)}")
        out.extend(f"problem: {p}" for p in self.problems)
        out.extend(f"note: {n}" for n in self.notes)
        out.append(
            f"plan: {len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.updated)} changed, {len(self.check_sync)} to check-sync"
        )
        return "\n".join(out)


def file_label(name: str) -> str:
    """How a part of a device's digest is named: the entry file, a layered file by its name,
    or its dnsmasq lines (as the last `apply --resync` recorded them)."""
    return PART_LABELS.get(name, name)


def _device_lines(d: DeviceChange, details: bool) -> list[str]:
    out = []
    if details:
        if d.fields is None:
            out.append("    fields: unknown (the last apply recorded none)")
        for f in d.fields or ():
            out.append(f"    {f.path}: {_shown(f.old)} -> {_shown(f.new)}")
        if d.files is None:
            out.append("    files: unknown (no `apply --resync` recorded them)")
        elif d.files:
            out.append(f"    files: {', '.join(file_label(n) for n in d.files)}")
    for c in d.dhcp:
        out.extend(f"    {c.directory} - {line}" for line in c.old)
        out.extend(f"    {c.directory} + {line}" for line in c.new)
    return out


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else value


# the sides' building blocks -----------------------------------------------------------


def is_secret(path: str) -> bool:
    """A field whose value is never shown (SIP passwords, the admin password's hash).

    >>> is_secret("lines[0].password"), is_secret("admin_password_hash"), is_secret("type")
    (True, True, False)
    """
    return "password" in path.rpartition(".")[2]


def device_fields(device: Device, secret: Callable[[str, str], str]) -> dict[str, str]:
    """The device's inventory fields (its effective settings: own over its profile's), flat;
    `secret(path, value)` stands in for each secret value (a digest, so a change shows).

    >>> from .inventory import Device
    >>> device_fields(Device("00095200000E", "D200", "office"), lambda p, v: "x")
    {'type': 'D200', 'profile': 'office'}
    """
    out: dict[str, str] = {"type": device.type, "profile": device.profile}
    if device.serial is not None:
        out["serial"] = device.serial
    for name, value in sorted(device.vars.items()):
        out[f"vars.{name}"] = _value(value)
    settings = device.settings
    for i, line in enumerate(settings.lines):
        _flatten(f"lines[{i}]", line, out)
    for key in settings.keys:
        _flatten(f"keys[{key.module}.{key.number}]", key, out)
    _flatten("provisioning", settings.provisioning, out)
    if settings.firmware is not None:
        _flatten("firmware", settings.firmware, out)
    if settings.admin_password_hash:
        out["admin_password_hash"] = settings.admin_password_hash
    return {p: secret(p, v) if is_secret(p) and v else v for p, v in out.items()}


def _flatten(prefix: str, value: object, out: dict[str, str]) -> None:
    assert is_dataclass(value)
    for f in fields(value):
        item = getattr(value, f.name)
        if f.name not in HIDDEN and item is not None:
            out[f"{prefix}.{f.name}"] = _value(item)


def _value(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


# the comparison -----------------------------------------------------------------------


def compare_fields(old: Fields, new: Fields) -> tuple[FieldChange, ...]:
    """Changed fields in path order; secrets masked on both sides.

    >>> old, new = {"a": "1", "x.password": "d1"}, {"a": "2", "x.password": "d2"}
    >>> for change in compare_fields(old, new):
    ...     print(change)
    FieldChange(path='a', old='1', new='2')
    FieldChange(path='x.password', old='***', new='***')
    """
    changes = []
    for path in sorted(old.keys() | new.keys()):
        before, after = old.get(path), new.get(path)
        if before != after:
            if is_secret(path):
                before = None if before is None else MASK
                after = None if after is None else MASK
            changes.append(FieldChange(path, before, after))
    return tuple(changes)


def compare_files(old: Fields, new: Fields) -> tuple[str, ...]:
    """Served files whose digest differs (or that came or went): new ones in their order,
    then the gone ones."""
    changed = [name for name, digest in new.items() if old.get(name) != digest]
    return tuple(changed + sorted(name for name in old if name not in new))


def compare_dhcp(mac: str, old: DhcpFiles, new: DhcpFiles | None) -> tuple[LineChange, ...]:
    """The lines of the device's two files that `apply` would change. `new` None: the device
    gets no files (removed, or no per-MAC mode): a live host file becomes a tombstone and
    the opts file goes, as `apply` does."""
    if new is None:
        live = old.host is not None and not is_tombstone(old.host)
        new = DhcpFiles(tombstone(mac) if live else old.host, None)
    changes = []
    for directory, before, after in (
        ("dhcp-hostsdir", old.host, new.host),
        ("dhcp-optsdir", old.opts, new.opts),
    ):
        if before != after:
            changes.append(LineChange(directory, _lines(before), _lines(after)))
    return tuple(changes)


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(text.splitlines()) if text else ()


def live_on_disk(dhcp: Mapping[str, DhcpFiles]) -> set[str]:
    """The devices dnsmasq has host lines for (a tombstone is a removed device)."""
    return {mac for mac, f in dhcp.items() if f.host is not None and not is_tombstone(f.host)}


NO_FILES = DhcpFiles(None, None)


def make_plan(
    *,
    fields_before: Mapping[str, Fields] | None,
    fields_after: Mapping[str, Fields],
    files_before: Mapping[str, Fields] | None,
    files_after: Mapping[str, Fields],
    dhcp_before: Mapping[str, DhcpFiles],
    dhcp_after: Mapping[str, DhcpFiles] | None,
    digests_before: Mapping[str, str],
    digests_after: Mapping[str, str],
    leased: Iterable[str],
    problems: Iterable[str] = (),
    notes: Iterable[str] = (),
    summary: Mapping[str, str] | None = None,
) -> Plan:
    """The plan: devices added, removed and changed (fields, files, DHCP lines); who would get
    a check-sync from `apply --resync` (by its own rule, `core.changes.changed_devices`: a
    device it would notify counts as changed even when nothing else shows it)."""
    said = list(notes)
    if fields_before is not None:
        before = set(fields_before)
    else:
        before = live_on_disk(dhcp_before)
        said.append(
            "the last apply recorded no inventory fields: field changes unknown"
            if before
            else "never applied: every device is new"
        )
    if dhcp_after is None:
        said.append("DHCP lines unknown: the token secret does not exist yet (apply makes it)")

    def dhcp(mac: str) -> tuple[LineChange, ...]:
        if dhcp_after is None and mac in fields_after:
            return ()
        return compare_dhcp(mac, dhcp_before.get(mac, NO_FILES), (dhcp_after or {}).get(mac))

    kept = [mac for mac in fields_after if mac in before]
    dhcp_changes = {mac: dhcp(mac) for mac in kept}
    added = [mac for mac in fields_after if mac not in before]
    written = {mac for mac, lines in dhcp_changes.items() if lines} | set(added)
    resync = changed_devices(digests_before, digests_after, written)
    if resync.first_run:
        said.append("`apply --resync` has recorded nothing yet: its first run only records")
    notified = set(resync.macs)
    updated = []
    for mac in kept:
        old_fields = None if fields_before is None else fields_before.get(mac)
        old_files = None if files_before is None else files_before.get(mac)
        d = DeviceChange(
            mac,
            None if old_fields is None else compare_fields(old_fields, fields_after[mac]),
            None if old_files is None else compare_files(old_files, files_after.get(mac, {})),
            dhcp_changes[mac],
        )
        if not d.empty or mac in notified:
            updated.append(d)
    has_lease = set(leased)
    return Plan(
        tuple(DeviceChange(mac, (), (), dhcp(mac)) for mac in added),
        tuple(DeviceChange(mac, (), (), dhcp(mac)) for mac in sorted(before - set(fields_after))),
        tuple(updated),
        tuple(m for m in resync.macs if m in has_lease),
        tuple(m for m in resync.macs if m not in has_lease),
        tuple(problems),
        tuple(said),
        dict(summary or {}),
    )
