"""dnsmasq configuration as text: per-device host and option lines, the vendor-wide snippet.

Pure: values in, lines out. The adapter `phoneprov.dnsmasq.apply` writes them.

Per device (modes "66+67", "43", "both") two one-line files, both named by the MAC:
- `dhcp-hostsdir/<MAC>`: `00:09:52:00:00:0e,set:phoneprov-00095200000e-<gen>`
- `dhcp-optsdir/<MAC>`:  `tag:phoneprov-00095200000e-<gen>,66,"http://..."` and friends.
`<gen>` is a hash of the option lines, so a device whose options change gets a new tag:
dnsmasq only ADDS what it reads from a changed file, and for one MAC the newest host line
wins, so the new tag (and with it only the new options) takes over without a reload.
A removed device keeps a tombstone host file (`set:phoneprov-removed`, a tag no option
uses) because dnsmasq forgets deleted files only on SIGHUP, which crashes 2.90 (DESIGN §3).

`force`: dnsmasq sends 42/43/66/67 only to clients that list them in option 55 (unasked 66/67
go into the BOOTP sname/file fields instead). It cannot force options read from an optsdir,
and an optsdir line for an option beats a forced snippet line for it. So with `force` every
option (all devices share them: no tokens) is forced once in the snippet for tag `phoneprov`,
which each device's host line sets, and the opts files stay empty.

Every line we emit passes `check_line`: one line as dnsmasq reads it, nothing cut or split.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NoReturn

from .dhcp import encode_option43
from .errors import ConfigError, InputError
from .layout import Layout
from .mac import colon_mac, norm_mac, norm_oui

MODES = ("66+67", "43", "both", "vendor")
PER_MAC_MODES = ("66+67", "43", "both")
TAG_PREFIX = "phoneprov"
COMMON_TAG = "phoneprov"  # set on every live per-device host line when force is on
VENDOR_TAG = "phoneprov-vendor"
REMOVED_TAG = "phoneprov-removed"  # no option line uses it
GEN_LEN = 8
START_SLACK = 0.1  # seconds: how exactly the adapter knows when dnsmasq started
OPTION_ORDER = ("42", "43", "66", "67")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")  # use with fullmatch: `$` passes a final "\n"
_SERVER_URL = re.compile(r"https?://[^/\s\"\\]+/?")
# dnsmasq reads config, hostsdir and optsdir files with fgets(buf, MAXDNAME = 1025): a longer
# line is read as two (verified on 2.90: 1024 bytes read as one line, 1025 as two).
MAX_LINE_BYTES = 1024
# One line as dnsmasq's reader takes it: words of printable ASCII (a `#` only inside a word:
# after a space, a quote or at the start it begins a comment), double-quoted strings with
# only `\\` and `\"` escapes (`\t`, `\n`... would become control characters), spaces between.
# No possessive quantifiers (`*+`): Debian 12's Python 3.11.2 matches them wrongly (fixed in
# 3.11.3); the lookahead keeps a word from being split, so nothing backtracks far.
_WORD = r"[\x21\x24-\x7e][\x21\x23-\x7e]*(?![\x21\x23-\x7e])"
_QUOTED = r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\\"])*"'
_LINE = re.compile(rf"(?:{_WORD}|{_QUOTED})(?: *(?:{_WORD}|{_QUOTED}))*")


class DnsmasqLineError(ConfigError):
    """A line we were about to write would not be read by dnsmasq as exactly this one line."""


@dataclass(frozen=True)
class DhcpSettings:
    """Everything options are computed from, with `auto` already resolved by the adapter."""

    mode: str
    server_url: str  # option 66, e.g. http://10.231.0.1:8080
    layout: Layout
    ntp: tuple[str, ...] = ()  # IPv4 addresses for option 42; () = none
    force: bool = False
    vendor_ouis: tuple[str, ...] = ("000952",)
    vendor_classes: tuple[str, ...] = ()
    tokens: bool = False  # a per-device token in option 67 (security mode "token")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"dhcp.mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        try:
            check_server_url(self.server_url)
        except InputError as e:
            raise ConfigError(f"server URL {e}") from None
        try:
            for address in self.ntp:
                check_ipv4(address)
        except InputError as e:
            raise ConfigError(f"dhcp.ntp entries {e}") from None
        if self.mode == "vendor" and self.tokens:
            raise ConfigError(
                "dhcp.mode 'vendor' gives every phone the same options, so it cannot carry "
                "per-device tokens: use security.mode 'lease' or a per-MAC dhcp.mode"
            )
        if self.force and self.tokens and self.mode in PER_MAC_MODES:
            raise ConfigError(
                "dhcp.force cannot send per-device tokens: a token is per device, so it is in "
                "options 43/67 read from dhcp-optsdir, and dnsmasq cannot force those. Use "
                "security.mode 'lease' with dhcp.force, or dhcp.force = false (phones that "
                "ask for 43/66/67 get them)"
            )
        if self.mode == "vendor" and not (self.vendor_ouis or self.vendor_classes):
            raise ConfigError("dhcp.mode 'vendor' needs dhcp.vendor_ouis or dhcp.vendor_classes")


@dataclass(frozen=True)
class DhcpOptions:
    """The options one phone gets; None = not sent."""

    option42: tuple[str, ...] | None = None
    option43: str | None = None  # colon hex
    option66: str | None = None
    option67: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "42": list(self.option42) if self.option42 else None,
            "43": self.option43,
            "66": self.option66,
            "67": self.option67,
        }

    def specs(self) -> list[tuple[str, str]]:
        """(option number, dnsmasq value) pairs, in option order, only those sent."""
        out = []
        if self.option42:
            out.append(("42", ",".join(self.option42)))
        if self.option43:
            out.append(("43", self.option43))
        if self.option66 is not None:
            out.append(("66", quote(self.option66)))
        if self.option67 is not None:
            out.append(("67", quote(self.option67)))
        return out


NO_OPTIONS = DhcpOptions()


@dataclass(frozen=True)
class DeviceFiles:
    """The two files of one device: names are the MAC; text ends with a newline."""

    name: str
    host: str
    opts: str
    tag: str


def check_server_url(url: str) -> str:
    """The base URL for option 66: http(s)://host[:port], nothing a dnsmasq line cannot hold.

    >>> check_server_url("http://10.0.0.1:8080")
    'http://10.0.0.1:8080'
    """
    if not _SERVER_URL.fullmatch(url):
        raise InputError(f"must be http(s)://host[:port], no path: {url!r}")
    return url


def check_ipv4(address: str) -> str:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise InputError(f"must be IPv4 addresses: {address!r}") from None
    return address


def check_vendor_class(vendor_class: str) -> str:
    """A vendor class dnsmasq can match (`dhcp-vendorclass=set:TAG,<class>`)."""
    if "," in vendor_class or not _PRINTABLE.fullmatch(vendor_class) or not vendor_class:
        raise InputError(f"not usable in dnsmasq: {vendor_class!r}")
    return vendor_class


def quote(value: str) -> str:
    """A dnsmasq string value: double quotes, `\\` and `"` escaped, printable ASCII only.

    >>> quote('prov.py?mac=<MACADR>')
    '"prov.py?mac=<MACADR>"'
    >>> quote('a"b')
    '"a\\\\"b"'
    """
    if not _PRINTABLE.fullmatch(value):
        raise InputError(f"dnsmasq option text must be printable ASCII: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def device_options(settings: DhcpSettings, token: str | None = None) -> DhcpOptions:
    """The options a phone gets in a per-MAC mode (or everyone's in "vendor" mode).

    >>> s = DhcpSettings("both", "http://foo", Layout(), ("10.0.0.1",))
    >>> device_options(s).option67
    'prov.py?mac=<MACADR>'
    """
    option66 = settings.server_url
    option67 = settings.layout.option67(token if settings.tokens else None)
    ntp = settings.ntp or None
    if settings.mode == "66+67":
        return DhcpOptions(ntp, None, option66, option67)
    option43 = encode_option43(option66, option67)
    if settings.mode == "43":
        return DhcpOptions(ntp, option43, None, None)
    return DhcpOptions(ntp, option43, option66, option67)


def forced_in_snippet(settings: DhcpSettings) -> DhcpOptions:
    """With `force` in a per-MAC mode: every option of the mode (42/43/66/67), which all
    devices share, forced by the snippet for tag `phoneprov` (tokens and force exclude each
    other: DhcpSettings refuses them together)."""
    if not settings.force or settings.mode not in PER_MAC_MODES:
        return NO_OPTIONS
    return device_options(settings)


def device_tag(mac: str, options: DhcpOptions) -> str:
    """The device's tag: MAC plus a generation that changes whenever its options change.

    >>> device_tag("00:09:52:00:00:0e", DhcpOptions(option66="http://foo"))
    'phoneprov-00095200000e-8bc3b0d9'
    """
    return _tag(norm_mac(mac), options.specs())


def _tag(mac: str, specs: list[tuple[str, str]]) -> str:
    lines = "\n".join(f"{code},{value}" for code, value in specs)
    generation = hashlib.sha256(lines.encode()).hexdigest()[:GEN_LEN]
    return f"{TAG_PREFIX}-{mac.lower()}-{generation}"


def device_files(
    settings: DhcpSettings, mac: str, options: DhcpOptions, check: bool = True
) -> DeviceFiles:
    """The host and opts files for one device; options forced by the snippet are left out.
    `check=False` leaves the lines unchecked: for many devices of one settings, where only
    the MAC and the token (both of fixed length, hex) differ, checking one device's is enough.
    """
    forced = forced_in_snippet(settings)
    in_file = options
    if forced is not NO_OPTIONS:
        in_file = DhcpOptions(
            None if forced.option42 else options.option42,
            None if forced.option43 is not None else options.option43,
            None if forced.option66 is not None else options.option66,
            None if forced.option67 is not None else options.option67,
        )
    mac = norm_mac(mac)
    specs = in_file.specs()
    tag = _tag(mac, specs)
    tags = f"set:{tag}" + (f",set:{COMMON_TAG}" if settings.force else "")
    host = [f"{bytes.fromhex(mac).hex(':')},{tags}"]  # colon_mac(mac), without checks again
    opts = [f"tag:{tag},{code},{value}" for code, value in specs]
    if not check:
        return DeviceFiles(mac, host[0] + "\n", "".join(line + "\n" for line in opts), tag)
    return DeviceFiles(mac, _lines(host), _lines(opts), tag)


def tombstone(mac: str) -> str:
    """The host line that replaces a removed device's: a tag without options.

    >>> tombstone("00095200000E")
    '00:09:52:00:00:0e,set:phoneprov-removed\\n'
    """
    return f"{colon_mac(mac)},set:{REMOVED_TAG}\n"


def is_tombstone(host_text: str) -> bool:
    return host_text.rstrip("\n").endswith(f",set:{REMOVED_TAG}")


def tombstone_expired(tombstone_mtime: float, dnsmasq_started: float | None) -> bool:
    """A tombstone may go once the running dnsmasq started after it was written.

    A dnsmasq started later read the directory from scratch: it never loaded the removed
    device's old line, so deleting the file changes nothing for it (or for a later start).
    >>> tombstone_expired(100.0, 200.0), tombstone_expired(100.0, 50.0)
    (True, False)
    >>> tombstone_expired(100.0, None)
    False
    """
    return dnsmasq_started is not None and dnsmasq_started > tombstone_mtime + START_SLACK


def vendor_match_lines(settings: DhcpSettings, tag: str = VENDOR_TAG) -> list[str]:
    """`dhcp-mac`/`dhcp-vendorclass` lines that set `tag` for the configured phones.

    >>> vendor_match_lines(DhcpSettings("vendor", "http://foo", Layout()))
    ['dhcp-mac=set:phoneprov-vendor,00:09:52:*:*:*']
    """
    lines = []
    for oui in settings.vendor_ouis:
        octets = norm_oui(oui).lower()
        lines.append(f"dhcp-mac=set:{tag},{octets[0:2]}:{octets[2:4]}:{octets[4:6]}:*:*:*")
    for vendor_class in settings.vendor_classes:
        try:
            check_vendor_class(vendor_class)
        except InputError as e:
            raise ConfigError(f"dhcp.vendor_classes: {e}") from None
        lines.append(f"dhcp-vendorclass=set:{tag},{vendor_class}")
    return lines


def option_lines(options: DhcpOptions, tag: str, force: bool) -> list[str]:
    keyword = "dhcp-option-force" if force else "dhcp-option"
    return [f"{keyword}=tag:{tag},{code},{value}" for code, value in options.specs()]


def render_snippet(
    settings: DhcpSettings,
    hostsdir: str,
    optsdir: str,
    script: str,
    header: Iterable[str] = (),
) -> str:
    """The file an admin drops into /etc/dnsmasq.d/ for these settings."""
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [
        "# Per-device files written by `phoneprov apply` (read via inotify: no reload).",
        f"dhcp-hostsdir={hostsdir}",
        f"dhcp-optsdir={optsdir}",
        "# Records leases and discovers phones. Never `systemctl reload dnsmasq` (SIGHUP",
        "# crashes dnsmasq 2.90 once these host files are in use): restart it instead.",
        f"dhcp-script={script}",
    ]
    if settings.mode == "vendor":
        lines.append("# Vendor-wide mode: the same options for every phone matching these.")
        lines += vendor_match_lines(settings)
        lines += option_lines(device_options(settings), VENDOR_TAG, settings.force)
    elif settings.force:
        lines.append("# dhcp.force: the phones' options, sent even to phones that do not ask")
        lines.append("# (dnsmasq cannot force options from dhcp-optsdir; those files stay empty).")
        lines += option_lines(forced_in_snippet(settings), COMMON_TAG, True)
    return _lines(lines, comments=True)


def check_line(line: str, comment: bool = False) -> str:
    """`line` as dnsmasq reads one line of a config, hostsdir or optsdir file: nothing split
    off, cut off (a comment, stripped spaces) or refused (an open quote). `comment`: a line
    starting with `#` is allowed (the snippet's comments).

    >>> check_line('tag:t,66,"http://foo"')
    'tag:t,66,"http://foo"'
    >>> check_line("dhcp-optsdir=/srv/my #opts")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    phoneprov.core.dnsmasq_conf.DnsmasqLineError: not one dnsmasq line, '#' after a space...
    """
    if len(line.encode()) > MAX_LINE_BYTES:
        _bad(line, f"longer than the {MAX_LINE_BYTES} bytes dnsmasq reads as one line")
    if not _PRINTABLE.fullmatch(line):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in line):
            _bad(line, "control character (newline, CR, tab, NUL...)")
        _bad(line, "non-ASCII character")
    if comment and line.startswith("#"):
        return line
    if not _LINE.fullmatch(line):
        _bad(line, _why_not_one_line(line))
    key, equals, value = line.partition('"')[0].partition("=")
    if equals and (key.endswith(" ") or value.startswith(" ")):
        _bad(line, "a space beside the first '=' (dnsmasq strips it)")
    return line


def check_path(path: str) -> str:
    """A path the snippet names (dhcp.hostsdir, dhcp.optsdir): fits a dnsmasq line as it is.

    >>> check_path("/var/lib/phoneprov/dnsmasq/hosts")
    '/var/lib/phoneprov/dnsmasq/hosts'
    """
    try:
        check_line(f"dhcp-hostsdir={path}")
    except DnsmasqLineError as e:
        raise InputError(f"cannot be a dnsmasq path ({e.message.partition(':')[0]})") from None
    return path


def _why_not_one_line(line: str) -> str:
    """Which rule a printable line breaks (only called once `_LINE` has refused it)."""
    if not line:
        return "empty"
    if line != line.strip(" "):
        return "leading or trailing space (dnsmasq strips it)"
    quoted, white = False, True
    chars = iter(line)
    for char in chars:
        if quoted and char == "\\" and next(chars, "") not in ("\\", '"'):
            return 'an escape other than \\\\ or \\" in a quoted string'
        if char == '"':
            quoted, white = not quoted, True
        elif not quoted and char == "#" and white:
            return "'#' after a space, a quote or at the start begins a comment"
        elif not quoted:
            white = char == " "
    return "a quote that is never closed" if quoted else "not one dnsmasq line"


def _bad(line: str, why: str) -> NoReturn:
    raise DnsmasqLineError(f"not one dnsmasq line, {why}: {line[:120]!r}")


def _lines(lines: Iterable[str], comments: bool = False) -> str:
    """The text of a file dnsmasq reads: every line checked, each ending in a newline."""
    return "".join(check_line(line, comments) + "\n" for line in lines)


def parse_opts_file(text: str) -> tuple[str | None, DhcpOptions]:
    """Read back an opts file we wrote (for `phoneprov options`): its tag and options."""
    tag, values = None, {}
    for line in text.splitlines():
        match = re.fullmatch(r"tag:([^,]+),(\d+),(.*)", line.strip())
        if not match:
            raise InputError(f"not an option line phoneprov writes: {line!r}")
        tag, values[match.group(2)] = match.group(1), match.group(3)
    return tag, DhcpOptions(
        tuple(values["42"].split(",")) if "42" in values else None,
        values.get("43"),
        _unquote(values["66"]) if "66" in values else None,
        _unquote(values["67"]) if "67" in values else None,
    )


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise InputError(f"not a quoted dnsmasq string: {value!r}")
    return re.sub(r"\\(.)", r"\1", value[1:-1])
