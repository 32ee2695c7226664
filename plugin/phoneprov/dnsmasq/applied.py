"""What `apply` leaves for the dnsmasq hook: the resolved settings, one small text file.

The hook runs once per DHCP event and must stay cheap (at most 2x `python3 -c pass`); tomllib
alone (it compiles regular expressions at import) would double that. So `apply`, after the
configuration passed the schema, writes the few values the hook needs as `key=value` lines
into `<hostsdir>/.phoneprov-applied` (dnsmasq ignores dot files), and the hook reads them.
Lists are tab-separated; the schema refuses control characters in every value.

Standard library only, and not even `re` or `typing`: the hook imports this module.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not from typing: importing typing alone costs ~5 ms per event
if TYPE_CHECKING:
    from typing import Any

APPLIED_NAME = ".phoneprov-applied"
DEFAULT_PATH = "/var/lib/phoneprov/dnsmasq/hosts/" + APPLIED_NAME
ENV = "PHONEPROV_HOOK_SETTINGS"  # where the hook looks instead of DEFAULT_PATH
HEADER = "# written by `phoneprov apply` for the dnsmasq hook; edit phoneprov.toml instead\n"
LISTS = ("vendor_ouis", "vendor_classes", "ntp")
FIELDS = ("config", "mode", "state", "auto_enrol", "server_url", *LISTS)


def dump_applied(values: dict[str, object]) -> str:
    """The file's text for `values` (every name in FIELDS; lists as tuples or lists)."""
    lines = [HEADER]
    for name in FIELDS:
        value = values[name]
        if isinstance(value, (list, tuple)):
            value = "\t".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "1" if value else "0"
        lines.append(f"{name}={value}\n")
    return "".join(lines)


def load_applied(path: str) -> dict[str, Any]:
    """The values in the file at `path`; OSError, or ValueError when it is not ours."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    values: dict[str, Any] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            if not sep or name not in FIELDS:
                raise ValueError(f"{path}: not a line `phoneprov apply` writes: {line[:60]!r}")
            values[name] = [v for v in value.split("\t") if v] if name in LISTS else value
    missing = [name for name in FIELDS if name not in values]
    if missing:
        raise ValueError(f"{path}: lacks {', '.join(missing)}; run `phoneprov apply` again")
    values["auto_enrol"] = values["auto_enrol"] == "1"
    return values
