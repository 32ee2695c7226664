"""What the admin's pages and API show and do, free of Flask: phone rows, a phone's detail,
fetches, discovered phones, enrolment, resync, the doctor. Built on the modules behind the
CLI (`options_for`, `Catalog`, `render.backup`, `State`, `sip.resync`, `doctor`): one place
computes each answer, whether a command or the page asks.

Values are JSON-ready dicts as the API's contract has them: MACs in lower-case colon form,
times as Unix seconds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core.errors import ConfigError, InputError
from ..core.inventory import Device, Inventory, Record
from ..core.mac import colon_mac, norm_mac
from ..core.phonestate import ENTRY, FetchSeen, fetched_name, phone_state, refusal_reason
from ..core.reference import resolve_reference
from ..state.db import Fetch, State, open_state
from .facts import Facts, edited_at, line_table

if TYPE_CHECKING:
    from ..config import Config
    from ..render import Catalog
    from ..sip.resync import Result

log = logging.getLogger("phoneprov.admin")

MAX_LIMIT = 1000
MASK = "********"
PASSWORD = re.compile(r"(<password>)([^<]+)(</password>)")
RESYNC_VERDICTS = ("accepted", "refused", "no answer", "no lease")

CheckSync = Callable[["Config", Inventory, list[str]], list["Result"]]


class NotFound(Exception):
    """404: no such phone (or not discovered)."""


class Conflict(Exception):
    """409: the phone is in the inventory or enrolled already."""


class ApplyFailed(Exception):
    """500: the phone was enrolled, but its dnsmasq files could not be written."""


def mask_passwords(body: bytes) -> bytes:
    """Every `<password>` value masked (SIP identities; the admin's hash too).

    >>> mask_passwords(b"<password>s3cret</password><password></password>")
    b'<password>********</password><password></password>'
    """
    text = body.decode("utf-8", "replace")
    return PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text).encode()


def _url_path(url: str) -> str:
    """The path (and query) of a URL, as the fetch log shows it."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _check_sync(config: Config, inventory: Inventory, macs: list[str]) -> list[Result]:
    from ..sip.resync import check_sync

    return check_sync(config, inventory, macs, signals=False)


class AdminService:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        check_sync: CheckSync = _check_sync,
    ) -> None:
        self.config = config
        self.clock = clock
        self.check_sync = check_sync
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    # inputs -------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        """The inventory (auto-enrolled phones included) and the rendered files, current."""
        with self._lock:
            if self._catalog is None:
                from ..render import Catalog
                from ..site import enrolled_records

                state = self.config.state
                self._catalog = Catalog(
                    self.config, extra=lambda: enrolled_records(state), log_invalid=False
                )
            else:
                self._catalog.refresh(force=True)
            return self._catalog

    @contextmanager
    def state(self) -> Iterator[State | None]:
        """The state database, or None when there is none yet."""
        if not self.config.state.exists():
            yield None
            return
        with open_state(self.config.state) as state:
            yield state

    # phones -------------------------------------------------------------------------------
    def phones(self) -> list[dict[str, Any]]:
        """One row per phone: the inventory's, the enrolled and the discovered ones."""
        catalog = self.catalog()
        now = self.clock()
        with self.state() as state:
            facts = self._facts(state, catalog, now)
            rows = [self._row(catalog, d, facts) for d in catalog.inventory.devices.values()]
            known = catalog.inventory.devices
            for found in facts.discovered:
                if found.mac not in known:
                    rows.append(self._discovered_row(found.mac, facts))
        return rows

    def phone(self, mac_text: str, *, reveal: bool = False, who: str = "") -> dict[str, Any]:
        """A phone's row plus its options, entry URL, files (passwords masked unless
        `reveal`, which is logged) and fetch history; NotFound when not in the inventory."""
        from ..dnsmasq.options import options_for
        from ..site import device_token_for, resolve_settings

        catalog = self.catalog()
        device = self._device(catalog, mac_text)
        settings = resolve_settings(self.config)
        token = device_token_for(self.config, settings, device.mac)
        entry_url = settings.layout.entry_url(settings.server_url, device.type, device.mac, token)
        with self.state() as state:
            facts = self._facts(state, catalog, self.clock())
            row = self._row(catalog, device, facts)
            history = facts.fetches(device.mac)
        if reveal:
            log.warning("admin %s revealed the SIP passwords of %s", who or "?", device.mac)
        refs = settings.layout.file_refs(device.type, device.mac, list(catalog.names(device)))
        files = []
        for name, url in zip(
            (ENTRY, *catalog.names(device)),
            (entry_url, *(resolve_reference(entry_url, ref) for ref in refs)),
            strict=True,
        ):
            if name == ENTRY:
                rendered = catalog.entry(device, settings.layout.style)
            else:
                found = catalog.file(device, name)
                assert found is not None  # a listed name
                rendered = found
            body = rendered.body if reveal else mask_passwords(rendered.body)
            files.append(
                {
                    "name": name or "entry",
                    "url": url,
                    "path": _url_path(url),
                    "body": body.decode("utf-8", "replace"),
                }
            )
        options = options_for(self.config, settings, device.mac, catalog.inventory)
        options["mac"] = colon_mac(options["mac"])
        return row | {
            "options": options,
            "entry_url": entry_url,
            "files": files,
            "fetches": [self._fetch(f, facts) for f in history],
            "revealed": reveal,
        }

    def backup(self, mac_text: str, who: str = "") -> tuple[str, bytes]:
        """(file name, the merged backup & restore document) of a phone. It holds the SIP
        passwords (a restore needs them): handed out like a reveal, and logged as one."""
        from ..render.backup import merged_files
        from ..settings_schema import load_phone_schema

        catalog = self.catalog()
        device = self._device(catalog, mac_text)
        merged, _stripped = merged_files(catalog, device, load_phone_schema(self.config.path))
        log.warning(
            "admin %s downloaded the backup of %s (its SIP passwords included)",
            who or "?",
            device.mac,
        )
        return f"{device.mac}-backup.xml", merged

    def fetches(self, mac_text: str | None, limit: int) -> list[dict[str, Any]]:
        mac = norm_mac(mac_text) if mac_text else None
        limit = max(1, min(limit, MAX_LIMIT))
        self.catalog()  # the inventory, for the reasons of refusals
        with self.state() as state:
            facts = Facts(state, self.clock())
            rows = state.fetches(mac, limit) if state is not None else []
            return [self._fetch(f, facts) for f in rows]

    # discovered and enrolment ------------------------------------------------------------------
    def discovered(self) -> list[dict[str, Any]]:
        known = self.catalog().inventory.devices
        with self.state() as state:
            found = state.discovered() if state is not None else []
        return [
            {
                "mac": colon_mac(d.mac),
                "vendor_class": d.vendor_class,
                "address": d.ip,
                "reason": d.reason,
                "first_seen": d.first_seen,
                "last_seen": d.last_seen,
            }
            for d in found
            if d.mac not in known
        ]

    def models(self) -> dict[str, Any]:
        return {
            "models": list(self.config.models),
            "profiles": sorted(self.catalog().inventory.profiles),
            "default_model": self.config.dhcp.default_type,
            "default_profile": self.config.dhcp.default_profile,
        }

    def enrol(
        self,
        mac_text: str,
        model: str,
        profile: str,
        line1: dict[str, Any] | None = None,
        who: str = "",
    ) -> dict[str, Any]:
        """Enrol a discovered phone as the hook's auto_enrol does, then apply: the phone gets
        its options at its next DHCP exchange. `line1`: {user, password, display_name,
        registrar (default: the profile's line 1's)}. InputError (400), NotFound, Conflict."""
        from ..config import load_inventory
        from ..dnsmasq.apply import apply
        from ..site import enrolled_records, resolve_settings

        mac = norm_mac(mac_text)
        catalog = self.catalog()
        if mac in catalog.inventory.devices:
            raise Conflict(f"{colon_mac(mac)} is in the inventory already")
        with self.state() as state:
            if state is None or all(d.mac != mac for d in state.discovered()):
                raise NotFound(f"{colon_mac(mac)} was not discovered")
        model = model.strip().upper()
        if model not in self.config.models:
            raise InputError(f"unknown model {model!r}; known: {', '.join(self.config.models)}")
        if profile not in catalog.inventory.profiles:
            known = ", ".join(sorted(catalog.inventory.profiles))
            raise InputError(f"unknown profile {profile!r}; known: {known}")
        fields: dict[str, Any] = {"mac": mac, "type": model, "profile": profile}
        if line1:
            fields["lines"] = [line_table(line1, catalog.inventory.profiles[profile])]
        record = Record(fields, f"enrolment of {colon_mac(mac)}")
        try:  # the phone with everything else, validated before anything is written
            inventory = load_inventory(self.config, [*enrolled_records(self.config.state), record])
        except ConfigError as e:
            raise InputError(f"{colon_mac(mac)} cannot be enrolled so: {e}") from None
        with open_state(self.config.state) as state:
            if not state.enrol(mac, model, profile, self.clock()):
                raise Conflict(f"{colon_mac(mac)} is enrolled already")
            if "lines" in fields:
                state.set_enrolled_lines(mac, json.dumps(fields["lines"]))
        try:
            result = apply(self.config, resolve_settings(self.config), inventory)
        except (OSError, ConfigError) as e:
            log.error("admin %s enrolled %s, but apply failed: %s", who or "?", mac, e)
            raise ApplyFailed(
                f"{colon_mac(mac)} is enrolled, but its dnsmasq files were not written ({e}): "
                "run `phoneprov apply` as root"
            ) from None
        log.info(
            "admin %s enrolled %s (%s, %s): %s", who or "?", mac, model, profile, result.summary()
        )
        catalog = self.catalog()
        with self.state() as state:
            facts = self._facts(state, catalog, self.clock())
            row = self._row(catalog, catalog.inventory.devices[mac], facts)
        return {"phone": row, "applied": result.summary()}

    # resync -------------------------------------------------------------------------------------
    def resync(self, mac_text: str, who: str = "") -> dict[str, str]:
        """check-sync NOTIFY to the phone's leased address: accepted / refused / no answer /
        no lease, with a detail line."""
        catalog = self.catalog()
        device = self._device(catalog, mac_text)
        result = self.check_sync(self.config, catalog.inventory, [device.mac])[0]
        verdict = result.verdict if result.verdict in RESYNC_VERDICTS else "no answer"
        log.info("admin %s resync %s: %s", who or "?", device.mac, result.line())
        return {"result": verdict, "detail": result.line()}

    # doctor ---------------------------------------------------------------------------------------
    def doctor(self) -> list[dict[str, str]]:
        from ..core.findings import diagnose
        from ..doctor import gather

        return [
            {"level": f.level, "title": f.topic, "detail": f.message, "fix": f.fix}
            for f in diagnose(gather(self.config))
        ]

    # rows -----------------------------------------------------------------------------------------
    def _facts(self, state: State | None, catalog: Catalog, now: float) -> Facts:
        """The state database's facts, and the changes `apply --resync` has not recorded."""
        facts = Facts(state, now)
        if facts.recorded:
            facts.note_edits(self._unrecorded(catalog, facts.recorded), edited_at(self.config))
        return facts

    def _unrecorded(self, catalog: Catalog, recorded: dict[str, str]) -> list[str]:
        """The devices whose files (or options) differ from what the last `apply --resync`
        recorded: edited since, computed as `apply --resync` computes it."""
        from ..dnsmasq.apply import plan
        from ..sip.changes import device_digests
        from ..site import resolve_settings, token_secret

        settings = resolve_settings(self.config)
        macs = list(catalog.inventory.devices)
        dhcp = plan(settings, macs, token_secret(self.config, settings))
        digests = device_digests(catalog, dhcp, settings.layout.style)
        return [mac for mac, digest in digests.items() if recorded.get(mac, digest) != digest]

    def _device(self, catalog: Catalog, mac_text: str) -> Device:
        device = catalog.inventory.devices.get(norm_mac(mac_text))
        if device is None:
            raise NotFound(f"{mac_text} is not in the inventory")
        return device

    def _row(self, catalog: Catalog, device: Device, facts: Facts) -> dict[str, Any]:
        from ..site import is_enrolled

        chain = (ENTRY, *catalog.names(device))
        line1 = device.settings.lines[0] if device.settings.lines else None
        source = "enrolled" if is_enrolled(self.config, device.where) else "inventory"
        changed = facts.changed_at(device.mac)
        return {
            "mac": colon_mac(device.mac),
            "source": source,
            "model": device.type,
            "profile": device.profile,
            "name": (line1.display_name or None) if line1 else None,
        } | self._status(device.mac, chain, changed, facts)

    def _discovered_row(self, mac: str, facts: Facts) -> dict[str, Any]:
        return {
            "mac": colon_mac(mac),
            "source": "discovered",
            "model": None,
            "profile": None,
            "name": None,
        } | self._status(mac, (), None, facts)

    def _status(
        self, mac: str, chain: tuple[str, ...], changed_at: float | None, facts: Facts
    ) -> dict[str, Any]:
        lease = facts.lease(mac)
        # the phone's own fetches: `doctor` fetches every phone's files from the appliance
        # itself (logged under the phone's MAC), which says nothing of the phone
        appliance = self._catalog.appliance if self._catalog is not None else None
        history = [f for f in facts.fetches(mac) if f.ip != appliance]
        seen = [FetchSeen(f.time, f.path, f.status, f.ip) for f in history]
        layout = self.config.server.layout
        names = [fetched_name(layout, f.path) for f in seen]
        last = self._fetch(history[0], facts) if history else None
        state = phone_state(
            chain,
            seen,
            names,
            changed_at=changed_at,
            has_lease=lease is not None,
            refusal=last["reason"] if last else None,
        )
        return {
            "lease": {"address": lease.ip, "expires": lease.expires} if lease else None,
            "last_fetch": {k: last[k] for k in ("time", "path", "status", "reason")}
            if last
            else None,
            "state": state.state,
            "state_detail": state.detail,
        }

    def _fetch(self, fetch: Fetch, facts: Facts) -> dict[str, Any]:
        reason = None
        if fetch.status not in (200, 304):
            known = (
                fetch.mac is not None
                and self._catalog is not None
                and fetch.mac in self._catalog.inventory.devices
            )
            lease = facts.lease(fetch.mac) if fetch.mac else None
            reason = refusal_reason(
                fetch.status,
                fetch.path,
                fetch.ip,
                known=known,
                mode=self.config.security.mode,
                lease_ip=lease.ip if lease else None,
            )
        return {
            "time": fetch.time,
            "mac": colon_mac(fetch.mac) if fetch.mac else None,
            "ip": fetch.ip,
            "path": fetch.path,
            "status": fetch.status,
            "bytes": fetch.bytes,
            "reason": reason,
        }
