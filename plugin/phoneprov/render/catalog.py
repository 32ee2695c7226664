"""`Catalog`: the inventory and every device's rendered files (+ ETag), cached, thread-safe.

It looks at the inventory's and the templates' mtimes at most every `check_every` seconds and
starts afresh when one changed, so an edit is live within a second without a restart. Each
rendered file is validated against the phone's settings schema once per content when
`log_invalid` (serving logs a file that does not fit as an error; `phoneprov check` names the
template lines). Without it, the schema is never loaded, nor lxml with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, load_inventory
from ..core import layering
from ..core.errors import ConfigError
from ..core.inventory import Device, Inventory, Record
from ..core.layout import Layout
from ..core.reference import build_reference
from ..settings_schema import learned_path
from ..site import appliance_address, server_url
from .templates import Rendered, Renderer

if TYPE_CHECKING:
    from ..core.phoneschema import PhoneSchema

log = logging.getLogger("phoneprov.render")

MAX_CACHE_BYTES = 16 * 1024 * 1024
CHECK_EVERY_S = 1.0


@dataclass
class _Generation:
    """One consistent view: an inventory and the bytes rendered from it."""

    stamp: tuple[Any, ...]
    inventory: Inventory
    cache: dict[tuple[str, str, str], Rendered]
    cached_bytes: int = 0
    reported: set[tuple[str, str]] = field(default_factory=set)  # (name, etag) validated


class Catalog:
    """The inventory and every device's rendered files, cached; thread-safe."""

    def __init__(
        self,
        config: Config,
        *,
        server: str | None = None,
        extra: Callable[[], list[Record]] | None = None,
        check_every: float = CHECK_EVERY_S,
        max_cache_bytes: int = MAX_CACHE_BYTES,
        clock: Callable[[], float] = time.monotonic,
        log_invalid: bool = True,
    ) -> None:
        self.config = config
        self.log_invalid = log_invalid
        self._schema_file = learned_path(config.path)
        self.layout: Layout = config.server.layout
        self.server_url = server or server_url(config)
        self.appliance = appliance_address(self.server_url)
        self.renderer = Renderer(config.templates)
        self.extra = extra or (lambda: [])
        self.check_every = check_every
        self.max_cache_bytes = max_cache_bytes
        self.clock = clock
        self._lock = threading.Lock()
        path = config.inventory_path  # a CSV inventory takes its profiles from the TOML beside
        self._inventory_files = tuple(dict.fromkeys([str(path), str(path.with_suffix(".toml"))]))
        self._checked_at = clock()
        extra_records = self.extra()
        self._gen = _Generation(
            self._stamp(extra_records), load_inventory(config, extra_records), {}
        )
        self.schema = self._load_schema() if log_invalid else None

    # inventory ------------------------------------------------------------------------
    @property
    def inventory(self) -> Inventory:
        return self._gen.inventory

    def device(self, mac: str, refreshed: bool = False) -> Device | None:
        """The device for `mac`; an unknown MAC looks again at everything (an auto-enrolled
        phone may have been added a moment ago). `refreshed`: the caller just refreshed."""
        if not refreshed:
            self.refresh()
        device = self._gen.inventory.device(mac)
        if device is None and self.refresh(force=True):
            device = self._gen.inventory.device(mac)
        return device

    def names(self, device: Device) -> tuple[str, ...]:
        return layering.served_files(self._gen.inventory.profiles[device.profile])

    def refresh(self, force: bool = False) -> bool:
        """Start afresh when the inventory or a template changed; True when it did.

        The inventory file is looked at on every call (one stat: an `apply` + check-sync
        must find the new files at once); the templates and the auto-enrolled phones at
        most every `check_every` seconds, or when `force`d.
        """
        now = self.clock()
        if (
            not force
            and now - self._checked_at < self.check_every
            and self._inventory_stamp() == self._gen.stamp[0]
        ):
            return False
        with self._lock:
            self._checked_at = now
            extra_records = self.extra()
            stamp = self._stamp(extra_records)
            if stamp == self._gen.stamp:
                return False
            self.renderer.env.cache.clear()  # type: ignore[union-attr]
            if self.log_invalid and stamp[3] != self._gen.stamp[3]:
                self.schema = self._load_schema()
            try:
                inventory = load_inventory(self.config, extra_records)
            except ConfigError as e:
                log.error("inventory changed but is invalid, still serving the previous: %s", e)
                self._gen.stamp = stamp  # report once per change
                self._gen.cache = {}  # templates may have changed too
                return True
            self._gen = _Generation(stamp, inventory, {})
            log.info("inventory or templates changed: %d devices", len(inventory.devices))
            return True

    def _inventory_stamp(self) -> tuple[tuple[str, int, int], ...]:
        return tuple(_file_stamp(p) for p in self._inventory_files)

    def _stamp(self, extra_records: list[Record]) -> tuple[Any, ...]:
        return (
            self._inventory_stamp(),
            tuple(_file_stamp(p) for p in _walk(self.config.templates)),
            tuple(sorted(str(sorted(r.fields.items())) for r in extra_records)),
            _file_stamp(self._schema_file),
        )

    def _load_schema(self) -> PhoneSchema:
        """The phone schema for validation; a broken learned file is logged, not fatal."""
        from ..settings_schema import load_phone_schema, shipped_schema

        try:
            return load_phone_schema(self.config.path)
        except ConfigError as e:
            log.error("phone schema: %s; validating with the shipped schema only", e)
            return shipped_schema()

    # rendered bytes -------------------------------------------------------------------
    def cached(self, mac: str, name: str, style: str = "") -> Rendered | None:
        """A cache hit or None; never renders (the cheap path for every request)."""
        return self._gen.cache.get((mac, name, style))

    def entry(self, device: Device, style: str) -> Rendered:
        """The device's reference file for an entry URL of `style` ("query" | "path")."""
        gen = self._gen
        key = (device.mac, "", style)
        hit = gen.cache.get(key)
        if hit is None:
            layout = Layout(style, self.layout.query_path)
            refs = layout.file_refs(device.type, device.mac, list(self.names(device)))
            hit = self._store(gen, key, Rendered.of(build_reference(refs)))
        return hit

    def file(self, device: Device, name: str) -> Rendered | None:
        """One of the device's files; None when `name` is not one of them."""
        gen = self._gen
        key = (device.mac, name, "")
        hit = gen.cache.get(key)
        if hit is not None:
            return hit
        profile = gen.inventory.profiles[device.profile]
        if name not in layering.served_files(profile):
            return None
        version = self.config.phone.version_for(device.type)
        variables = layering.template_vars(
            device, profile, self.server_url, self.appliance, version
        )
        rendered = Rendered.of(self.renderer.render(device.type, name, variables))
        if self.log_invalid and (name, rendered.etag) not in gen.reported:
            gen.reported.add((name, rendered.etag))
            self._log_problems(device, name, rendered.body)
        return self._store(gen, key, rendered)

    def _log_problems(self, device: Device, name: str, body: bytes) -> None:
        from ..core.phonexml import validate_settings

        assert self.schema is not None  # loaded when log_invalid
        errors = [p for p in validate_settings(body, self.schema) if p.level == "error"]
        if errors:
            log.error(
                "%s for %s does not fit the phone's settings schema (`phoneprov check` "
                "names the template lines): %s",
                name,
                device.mac,
                "; ".join(f"line {p.line}: {p.xpath}: {p.message}" for p in errors),
            )

    def _store(self, gen: _Generation, key: tuple[str, str, str], value: Rendered) -> Rendered:
        if gen.cached_bytes + len(value.body) > self.max_cache_bytes:
            gen.cache.clear()  # simple and bounded; phones poll rarely
            gen.cached_bytes = 0
        gen.cache[key] = value
        gen.cached_bytes += len(value.body)
        return value

    # whole installation ---------------------------------------------------------------
    def render_all(self) -> Iterator[tuple[Device, str, Rendered]]:
        """Every file of every device (for `check` and the benchmark); raises on the first error."""
        for device in self._gen.inventory.devices.values():
            for name in self.names(device):
                rendered = self.file(device, name)
                assert rendered is not None
                yield device, name, rendered


def _file_stamp(path: str | Path) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), 0, 0)
    return (str(path), st.st_mtime_ns, st.st_size)


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, _dirs, files in os.walk(root):
        found.extend(Path(directory, f) for f in files)
    return sorted(found)
