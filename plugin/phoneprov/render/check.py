"""`phoneprov check`: render every file of every device and validate each against the phone's
settings schema (shipped + learned); every problem is named with `template:line` and XPath."""

from __future__ import annotations

import stat

from ..config import Config, load_inventory
from ..core.errors import ConfigError
from ..core.inventory import Inventory
from ..core.phonexml import validate_settings
from ..settings_schema import load_phone_schema
from ..site import server_url
from .catalog import Catalog
from .templates import INDEX, template_line


def check_templates(
    config: Config,
    inventory: Inventory | None = None,
    warnings: list[str] | None = None,
    catalog: Catalog | None = None,
) -> int:
    """Render every device's files once and validate each against the phone's schema; raise
    ConfigErrors naming each broken template (`template:line`, the XPath, why).

    Returns the number of files rendered; schema warnings are appended to `warnings`.
    Used by `phoneprov check`, and by `plan` with its own `catalog` (which then holds the
    rendered files in its cache).
    """
    from ..core.errors import ConfigErrors

    schema = load_phone_schema(config.path)
    if catalog is None:
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
                same = where + INDEX.sub("", what)  # once per template line and path
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


def check_installation(config_file: str | None) -> str:
    """`phoneprov check`: load everything an installation is made of; raise ConfigError(s)
    naming file:line for each problem, else return a one-line summary."""
    from ..config import load_config

    return check_config(load_config(config_file))


def check_config(config: Config) -> str:
    """`check_installation` of a loaded config (`phoneprov sync` checks a new revision so)."""
    inventory = load_inventory(config)
    warnings = site_warnings(config)
    files = check_templates(config, inventory, warnings)  # renders every device's files once
    summary = (
        f"ok: {config.path}: {len(inventory.devices)} devices, "
        f"{len(inventory.profiles)} profiles, dhcp mode {config.dhcp.mode}, "
        f"security {config.security.mode}, {files} files rendered, valid against the phone schema"
    )
    return "\n".join([summary, *warnings])


def site_warnings(config: Config) -> list[str]:
    """What `check` (and `plan`) says before rendering: no templates directory is an error
    (raised); an inventory file every user may read, a warning each."""
    if not config.templates.is_dir():
        raise ConfigError("templates directory does not exist", str(config.templates))
    return [
        f"{path}: warning: readable by every user, and it holds SIP passwords "
        f"(fix: chmod o-rwx {path})"
        for path in world_readable_inventory(config)
    ]


def world_readable_inventory(config: Config) -> list[str]:
    """The inventory files (a CSV's profiles beside it too) that every local user may read:
    they hold SIP passwords, for root and the service user only."""
    path = config.inventory_path
    files = [path, path.with_suffix(".toml")] if path.suffix.lower() == ".csv" else [path]
    exposed = []
    for file in files:
        try:
            if file.stat().st_mode & stat.S_IROTH:
                exposed.append(str(file))
        except OSError:  # a CSV without profiles beside it
            continue
    return exposed
