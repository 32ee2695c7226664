"""Render a device's files from Jinja2 templates, checked and cached; usable without Flask.

- Templates run in Jinja2's immutable sandbox with StrictUndefined (a missing variable is an
  error, not an empty string) and XML autoescaping of every value.
- Every rendered file is parsed with the hardened XML parser before anyone gets it: a
  template error or broken XML raises `TemplateProblem` naming `template:line`, never a
  partial file.
- Every rendered file is also validated against the phone's settings schema (shipped +
  learned, `settings_schema`): `check_templates` fails naming `template:line` and the XPath
  of what the phone would drop or refuse; serving logs such a file as an error once.
- `Catalog` holds the inventory and the rendered bytes (+ ETag). It looks at the inventory's
  and the templates' mtimes at most every `check_every` seconds and starts afresh when one
  changed, so an edit is live within a second without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from .config import Config, load_inventory
from .core import layering
from .core.errors import ConfigError, InputError
from .core.inventory import Device, Inventory, Record
from .core.layout import Layout
from .core.phoneschema import PhoneSchema
from .core.phonexml import Problem, validate_settings
from .core.reference import build_reference, parse_xml
from .settings_schema import learned_path, load_phone_schema, shipped_schema
from .site import appliance_address, server_url

log = logging.getLogger("phoneprov.render")

MAX_CACHE_BYTES = 16 * 1024 * 1024
CHECK_EVERY_S = 1.0
_INDEX = re.compile(r"\[[0-9]+\]")  # identity[2] in an XPath
_COMMENT = re.compile(r"\{#.*?#\}", re.S)  # a Jinja comment


class TemplateProblem(ConfigError):
    """A template failed to render or rendered something that is not well-formed XML."""


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str  # quoted, as sent in the ETag header

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')


class Renderer:
    """Jinja2 sandbox over one templates directory."""

    def __init__(self, templates: Path) -> None:
        from jinja2 import FileSystemLoader, StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self.templates = templates
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(templates)),
            undefined=StrictUndefined,
            autoescape=True,
            auto_reload=True,
            keep_trailing_newline=True,
        )

    def render(self, device_type: str, name: str, variables: dict[str, Any]) -> bytes:
        """The checked bytes of one served file; TemplateProblem when it cannot be made."""
        from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError

        candidates = layering.template_candidates(device_type, name)
        where = str(self.templates / candidates[0])
        try:
            template = self.env.select_template(list(candidates))
            where = template.filename or where
            text = template.render(variables)
        except TemplateNotFound:
            raise TemplateProblem(
                f"no template for {name} (looked for {', '.join(candidates)})", str(self.templates)
            ) from None
        except TemplateSyntaxError as e:
            raise TemplateProblem(
                f"template syntax: {e.message}", f"{e.filename}:{e.lineno}"
            ) from None
        except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:
            raise TemplateProblem(
                f"rendering {name}: {type(e).__name__}: {e}", _template_line(e.__traceback__, where)
            ) from None
        body = text.encode("utf-8")
        try:
            parse_xml(body)
        except InputError as e:
            raise TemplateProblem(f"{name} renders to bad XML: {e}", where) from None
        return body

    def source(self, device_type: str, name: str) -> tuple[str, str]:
        """(file name, text) of the template that renders `name` (after a successful render)."""
        template = self.env.select_template(list(layering.template_candidates(device_type, name)))
        assert self.env.loader is not None and template.name is not None
        text, filename, _ = self.env.loader.get_source(self.env, template.name)
        return filename or template.name, text


def template_line(problem: Problem, body: bytes, source: str) -> int:
    """The template line that most likely wrote the element or attribute of `problem` (0 if
    none): the n-th template line naming it, n counted in the rendered output up to the
    problem's line (exact unless a loop or a variable writes the name)."""
    last = re.sub(r"\[[0-9]+\]$", "", problem.xpath.rsplit("/", 1)[-1])
    if not last:
        return 0
    name = re.escape(last.lstrip("@").split(":")[-1])
    pattern = re.compile(rf"\b{name}\s*=" if last.startswith("@") else rf"<{name}[\s/>]|<{name}$")
    rendered = body.decode("utf-8", "replace").splitlines()[: max(problem.line, 1)]
    nth = max(1, sum(1 for text in rendered if pattern.search(text)))
    source = _COMMENT.sub(lambda m: "\n" * m.group().count("\n"), source)  # keeps line numbers
    candidates = [n for n, text in enumerate(source.splitlines(), 1) if pattern.search(text)]
    return candidates[min(nth, len(candidates)) - 1] if candidates else 0


def _template_line(tb: TracebackType | None, filename: str) -> str:
    """`template:line` of the innermost template frame (Jinja maps frames to template lines)."""
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{filename}:{line}" if line else filename


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
        self.schema = self._load_schema()

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
            if stamp[3] != self._gen.stamp[3]:
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


def check_templates(
    config: Config, inventory: Inventory | None = None, warnings: list[str] | None = None
) -> int:
    """Render every device's files once and validate each against the phone's schema; raise
    ConfigErrors naming each broken template (`template:line`, the XPath, why).

    Returns the number of files rendered; schema warnings are appended to `warnings`.
    Used by `phoneprov check`.
    """
    from .core.errors import ConfigErrors

    schema = load_phone_schema(config.path)
    catalog = Catalog(config, server=_check_server(config), log_invalid=False)
    if inventory is not None:
        catalog._gen.inventory = inventory
    problems: dict[str, ConfigError] = {}
    notes: dict[str, str] = {}
    count = 0
    for device in catalog.inventory.devices.values():
        try:
            names = catalog.names(device)
        except ConfigError as e:
            problems.setdefault(str(e), e)
            continue
        for name in names:
            try:
                rendered = catalog.file(device, name)
                count += 1
            except ConfigError as e:
                problems.setdefault(
                    str(e), ConfigError(f"{e.message} (device {device.mac})", e.where)
                )
                continue
            assert rendered is not None
            found = validate_settings(rendered.body, schema)
            if not found:
                continue
            filename, source = catalog.renderer.source(device.type, name)
            for problem in found:
                line = template_line(problem, rendered.body, source)
                where = f"{filename}:{line}" if line else filename
                what = f"{problem.xpath}: {problem.message}"
                same = where + _INDEX.sub("", what)  # once per template line and path
                context = f"(device {device.mac}, {name} line {problem.line})"
                if problem.level == "error":
                    problems.setdefault(same, ConfigError(f"{what} {context}", where))
                else:
                    notes.setdefault(same, f"{where}: warning: {what} {context}")
    if warnings is not None:
        warnings.extend(notes.values())
    if problems:
        raise ConfigErrors(list(problems.values()))
    return count


def _check_server(config: Config) -> str:
    try:
        return server_url(config)
    except ConfigError:
        return "http://192.0.2.1:8080"  # `check` on a machine without the LAN interface


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


def check_installation(config_file: str | None) -> str:
    """`phoneprov check`: load everything an installation is made of; raise ConfigError(s)
    naming file:line for each problem, else return a one-line summary."""
    from .config import load_config

    config = load_config(config_file)
    inventory = load_inventory(config)
    if not config.templates.is_dir():
        raise ConfigError("templates directory does not exist", str(config.templates))
    warnings: list[str] = []
    files = check_templates(config, inventory, warnings)  # renders every device's files once
    summary = (
        f"ok: {config.path}: {len(inventory.devices)} devices, "
        f"{len(inventory.profiles)} profiles, dhcp mode {config.dhcp.mode}, "
        f"security {config.security.mode}, {files} files rendered, valid against the phone schema"
    )
    return "\n".join([summary, *warnings])
