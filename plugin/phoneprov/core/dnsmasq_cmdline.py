"""dnsmasq's command line and config files as `phoneprov doctor` reads them: which options
take a value, what a config line sets, which files a `conf-dir` includes. Pure."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

# dnsmasq options the doctor follows or reports, with their short forms
SHORT_OPTIONS = {"C": "conf-file", "7": "conf-dir", "u": "user", "x": "pid-file"}
WITH_VALUE = frozenset(
    {"conf-file", "conf-dir", "dhcp-hostsdir", "dhcp-optsdir", "dhcp-script", "user", "pid-file"}
)
_VERSION = re.compile(r"dnsmasq version (\S+)", re.IGNORECASE)


def parse_version(text: str) -> str | None:
    """The version from `dnsmasq --version`.

    >>> parse_version("Dnsmasq version 2.90  Copyright (c) 2000-2024 Simon Kelley")
    '2.90'
    """
    match = _VERSION.search(text)
    return match.group(1) if match else None


def cmdline_directives(argv: Sequence[str]) -> list[tuple[str, str]]:
    """(key, value) for the options in a dnsmasq command line that take a value.

    >>> cmdline_directives(["dnsmasq", "-k", "--conf-file=/a", "-C", "/b", "-7/etc/d"])
    [('conf-file', '/a'), ('conf-file', '/b'), ('conf-dir', '/etc/d')]
    """
    out, args = [], list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
        elif arg.startswith("-") and len(arg) > 1 and arg[1] in SHORT_OPTIONS:
            key, value = SHORT_OPTIONS[arg[1]], arg[2:]
            sep = "=" if value else ""
        else:
            continue
        if key in WITH_VALUE:
            if not sep and args:
                value = args.pop(0)
            out.append((key, value))
    return out


def conf_directives(text: str) -> list[tuple[str, str]]:
    """(key, value) for each `key=value` line of a dnsmasq config file (comments skipped).

    >>> conf_directives("# x\\ndhcp-hostsdir = /h\\n  conf-dir=/etc/d,*.conf\\nlog-dhcp\\n")
    [('dhcp-hostsdir', '/h'), ('conf-dir', '/etc/d,*.conf'), ('log-dhcp', '')]
    """
    out = []
    for line in text.splitlines():
        if '"' not in line:  # a ` #` outside quotes starts a comment
            line = re.split(r"\s#", line)[0]
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _sep, value = line.partition("=")
        out.append((key.strip(), value.strip()))
    return out


def conf_dir_includes(spec: str, name: str) -> bool:
    """Whether `conf-dir=DIR[,pattern...]` reads file `name` (dnsmasq's rules).

    `*.conf` patterns select, other suffixes exclude; dot files and `~` files never count.
    >>> [conf_dir_includes("/d,*.conf", n) for n in ("a.conf", "a.bak", ".a.conf")]
    [True, False, False]
    >>> [conf_dir_includes("/d,.dpkg-old", n) for n in ("a", "a.dpkg-old", "a~")]
    [True, False, False]
    """
    if name.startswith(".") or name.endswith("~"):
        return False
    patterns = [p for p in spec.split(",")[1:] if p]
    wanted = [p for p in patterns if p.startswith("*")]
    excluded = [p for p in patterns if not p.startswith("*")]
    if any(name.endswith(p) for p in excluded):
        return False
    return not wanted or any(fnmatch.fnmatchcase(name, p) for p in wanted)
