"""The resolved site every adapter works from: DHCP, HTTP, SIP and the doctor ask here, and
none of them imports another adapter for it.

- `resolve_settings`: the DHCP settings with `auto` resolved to the LAN interface's address;
- `server_url` / `appliance_address`: the base URL phones are handed and the appliance's host
  (for the phones' SIP check-sync allowlist);
- `full_inventory`: the admin's inventory plus the phones auto-enrolled into the state
  database (a MAC in the file wins over an enrolled one);
- `token_secret` / `device_token_for`: per-device URL tokens (security mode `token`);
- `RUNTIME_DIR`: where `serve` keeps its worker sockets (and `setup --uninstall` looks).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .config import Config, load_inventory
from .core import dnsmasq_conf as conf
from .core.inventory import Inventory, Record
from .core.layout import device_token

RUNTIME_DIR = Path("/run/phoneprov")  # serve's: a directory per user it runs as


def resolve_settings(
    config: Config, address_of: Callable[[str], str] | None = None
) -> conf.DhcpSettings:
    """DhcpSettings from the config, `auto` resolved to the LAN interface's address
    (`address_of(ifname)`, by default the interface's IPv4 address)."""
    server_url, ntp = config.server.url, config.dhcp.ntp
    if server_url == "auto" or "auto" in ntp:
        address = (address_of or _interface_ipv4)(config.server.interface)
        port = config.server.listen.rpartition(":")[2]
        if server_url == "auto":
            server_url = f"http://{address}" + ("" if port in ("", "80") else f":{port}")
        ntp = tuple(address if n == "auto" else n for n in ntp)
    return conf.DhcpSettings(
        mode=config.dhcp.mode,
        server_url=server_url,
        layout=config.server.layout,
        ntp=tuple(dict.fromkeys(ntp)),
        force=config.dhcp.force,
        vendor_ouis=config.dhcp.vendor_ouis,
        vendor_classes=config.dhcp.vendor_classes,
        tokens=config.security.mode == "token",
    )


def _interface_ipv4(ifname: str) -> str:
    from .netif import interface_ipv4

    return interface_ipv4(ifname, "server.interface (for 'auto')")


def server_url(config: Config) -> str:
    """The base URL phones are given in option 66 (`auto` resolved as `apply` resolves it)."""
    if config.server.url != "auto":
        return config.server.url
    return resolve_settings(config).server_url


def appliance_address(url: str) -> str:
    """The appliance's host as phones reach it (for the SIP check-sync allowlist)."""
    return urlsplit(url).hostname or ""


def enrolled_records(state_path: Path, read_only: bool = False) -> list[Record]:
    """Auto-enrolled phones from the state database, as inventory records (`read_only`:
    writing nothing to it, for `plan`)."""
    if not state_path.exists():
        return []
    from .state.db import State

    with State.read_only(state_path) if read_only else State(state_path) as state:
        lines = state.enrolled_lines()  # set when the admin page enrolled the phone
        return [
            Record(
                {"mac": row["mac"], "type": row["type"], "profile": row["profile"]}
                | _lines(lines.get(row["mac"])),
                f"{state_path}: enrolled {row['mac']}",
            )
            for row in state.enrolled()
        ]


def _lines(text: str | None) -> dict[str, list[object]]:
    """An enrolled phone's `lines`, from their JSON; none when absent or not a JSON list
    (the inventory's validation checks what they say)."""
    import json

    try:
        value = json.loads(text) if text else None
    except ValueError:
        return {}
    return {"lines": value} if isinstance(value, list) else {}


def full_inventory(config: Config) -> Inventory:
    """The admin's inventory plus the auto-enrolled phones, validated as one."""
    return load_inventory(config, extra=enrolled_records(config.state))


def is_enrolled(config: Config, where: str) -> bool:
    """Whether a device record (by its `where`) came from the state database."""
    return where.startswith(f"{config.state}:")


def token_secret(config: Config, settings: conf.DhcpSettings | None = None) -> bytes | None:
    """The appliance secret when URLs carry device tokens, else None."""
    tokens = settings.tokens if settings is not None else config.security.mode == "token"
    if not tokens:
        return None
    from .secret import load_secret

    return load_secret(config.security.secret_file)


def device_token_for(config: Config, settings: conf.DhcpSettings, mac: str) -> str | None:
    secret = token_secret(config, settings)
    return None if secret is None else device_token(secret, mac)
