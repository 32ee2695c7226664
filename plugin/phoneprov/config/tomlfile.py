"""Reading a TOML file for error messages that name `file:line`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

_HEADER = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text and the parsed data; ConfigError with the line of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text: {e}", str(path)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise ConfigError(
            f"TOML syntax: {e}", f"{path}:{line.group(1)}" if line else str(path)
        ) from None


class Locator:
    """Finds the line of `key` (inside `[section]`) in TOML text: `file:line`, else `file`."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.lines = path, text.splitlines()

    def __call__(self, key: str, section: str = "") -> str:
        in_section = not section
        for n, line in enumerate(self.lines, 1):
            header = _HEADER.match(line)
            if header:
                name = header.group(1).replace('"', "")
                if name == key and not section:
                    return f"{self.path}:{n}"
                in_section = name == section if section else False
            elif in_section and re.match(rf"^\s*\"?{re.escape(key)}\"?\s*=", line):
                return f"{self.path}:{n}"
        return str(self.path)
