"""`apply --resync`: apply, then tell which devices now get something new.

Each device's digest (`core.changes.files_digest`) covers its dnsmasq lines and every file it
downloads — the reference file in the configured entry style and each layered file, rendered
with the current inventory and templates. The digests of the last `apply --resync` are kept
in the state database (`rendered` table), each part's too (`rendered_files`: `plan` names
the files that changed). Rendering happens before anything is written, so a
broken template stops the run with dnsmasq's files untouched. Plain `apply` renders nothing
and records nothing (rendering costs ~0.5 ms per device).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..core import dnsmasq_conf as conf
from ..core.changes import Changes, changed_devices, files_digest
from ..core.inventory import Inventory
from ..dnsmasq.apply import ApplyResult, apply, plan
from ..render import Catalog
from ..site import enrolled_records, resolve_settings, token_secret
from ..state.db import open_state


@dataclass(frozen=True)
class Applied:
    result: ApplyResult
    changes: Changes
    inventory: Inventory
    recorded: int  # devices whose digests were recorded


@dataclass(frozen=True)
class Digests:
    devices: dict[str, str]  # MAC → the one digest `apply --resync` compares
    parts: dict[str, dict[str, str]]  # MAC → each part's digest, by its name (for `plan`)


def device_digests(
    catalog: Catalog, dhcp: dict[str, conf.DeviceFiles], style: str
) -> dict[str, str]:
    """MAC → digest of what the device gets, for every device of the catalog's inventory."""
    return rendered_digests(catalog, dhcp, style).devices


def rendered_digests(catalog: Catalog, dhcp: dict[str, conf.DeviceFiles], style: str) -> Digests:
    """Each device's digest and its parts': the dnsmasq lines (`dhcp-host`, `dhcp-opts`),
    the entry file (named "") and each layered file by name."""
    devices, parts_by_mac = {}, {}
    for mac, device in catalog.inventory.devices.items():
        parts: list[tuple[str, bytes]] = []
        if mac in dhcp:  # no per-device lines in `vendor` mode
            parts += [
                ("dhcp-host", dhcp[mac].host.encode()),
                ("dhcp-opts", dhcp[mac].opts.encode()),
            ]
        parts.append(("", catalog.entry(device, style).body))
        for name in catalog.names(device):
            rendered = catalog.file(device, name)
            assert rendered is not None  # `names` lists only the device's files
            parts.append((name, rendered.body))
        devices[mac] = files_digest(parts)
        parts_by_mac[mac] = {name: files_digest([(name, body)]) for name, body in parts}
    return Digests(devices, parts_by_mac)


def apply_with_changes(config: Config, now: float) -> Applied:
    """Render and digest every device, apply, compare with the last run and record."""

    settings = resolve_settings(config)
    catalog = Catalog(
        config,
        server=settings.server_url,
        extra=lambda: enrolled_records(config.state),
        max_cache_bytes=0,  # each file is rendered once: keep nothing
    )
    inventory = catalog.inventory
    dhcp = plan(settings, list(inventory.devices), token_secret(config, settings))
    digests = rendered_digests(catalog, dhcp, settings.layout.style)
    # opened before apply: a database we cannot use changes nothing
    with open_state(config.state) as state:
        previous = state.rendered()
        result = apply(config, settings, inventory, desired=dhcp)
        state.record_rendered(digests.devices, now, digests.parts)
    return Applied(
        result,
        changed_devices(previous, digests.devices, result.written),
        inventory,
        len(digests.devices),
    )
