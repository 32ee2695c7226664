"""`phoneprov check`: load everything an installation is made of and report every problem."""

from __future__ import annotations

from .config import load_config, load_inventory
from .core.errors import ConfigError


def check_installation(config_file: str | None) -> str:
    """Raise ConfigError(s) naming file:line for each problem; return a one-line summary."""
    config = load_config(config_file)
    inventory = load_inventory(config)
    if not config.templates.is_dir():
        raise ConfigError("templates directory does not exist", str(config.templates))
    from .render import check_templates  # renders every device's files once

    files = check_templates(config, inventory)
    return (
        f"ok: {config.path}: {len(inventory.devices)} devices, "
        f"{len(inventory.profiles)} profiles, dhcp mode {config.dhcp.mode}, "
        f"security {config.security.mode}, {files} files rendered"
    )
