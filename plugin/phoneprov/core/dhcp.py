"""DHCP options as the phone reads them: 66 + 67 joined into one URL, and the option 43 codec.

Option 43 carries the same two values as vendor sub-options 0x42 (=66) and 0x43 (=67), each
`code, length, value, NUL`. We write it the way dnsmasq and ISC take raw hex:
lower-case two-digit hex joined by ':'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import InputError
from .markers import DeviceInfo, replace_markers

SUB_66 = 0x42
SUB_67 = 0x43
PAD = 0x00
END = 0xFF
# What a D-series phone asks for (option 55): mask, router, DNS, NTP, 43, 66, 67.
PHONE_REQUESTS = (1, 3, 6, 42, 43, 66, 67)
MAX_OPTION_LEN = 255  # one DHCP option's length byte
MAX_SUB_TEXT = MAX_OPTION_LEN - 3  # code + length + NUL around the text, inside one option
URL_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class UnknownSub:
    """A sub-option we do not interpret, reported instead of dropped."""

    code: int
    data: bytes

    @property
    def hex(self) -> str:
        return self.data.hex()


@dataclass(frozen=True)
class Option43:
    """The decoded content of option 43."""

    option66: str | None = None
    option67: str | None = None
    unknown: tuple[UnknownSub, ...] = ()


def join_66_67(option66: str | None, option67: str | None) -> str:
    """Join server (66) and file (67) into one URL; exactly one '/' between them.

    >>> join_66_67("http://prov.server.com", "prov.py?mac=<MACADR>")
    'http://prov.server.com/prov.py?mac=<MACADR>'
    >>> join_66_67("http://foo/", "/x.xml")
    'http://foo/x.xml'
    >>> join_66_67("http://foo", None)
    'http://foo'
    """
    server, file = option66 or "", option67 or ""
    if not server and not file:
        raise InputError("neither option 66 nor option 67 is given")
    if not server or not file:
        return server or file
    if server.endswith("/") and file.startswith("/"):
        return server + file[1:]
    if server.endswith("/") or file.startswith("/"):
        return server + file
    return f"{server}/{file}"


def _sub_option(code: int, value: str) -> bytes:
    data = value.encode("utf-8")
    if b"\x00" in data:
        raise InputError(f"option {_name(code)} value contains a NUL byte: {value!r}")
    if len(data) > MAX_SUB_TEXT:
        raise InputError(
            f"option {_name(code)} value is {len(data)} bytes; a sub-option holds at most "
            f"{MAX_SUB_TEXT}: {value[:40]!r}..."
        )
    return bytes([code, len(data) + 1]) + data + b"\x00"


def encode_option43(option66: str | None = None, option67: str | None = None) -> str:
    """Encode 66 and/or 67 as option 43 hex.

    >>> encode_option43("http://foo", "<HWTYP>.bak")
    '42:0b:68:74:74:70:3a:2f:2f:66:6f:6f:00:43:0c:3c:48:57:54:59:50:3e:2e:62:61:6b:00'
    """
    if option66 is None and option67 is None:
        raise InputError("option 43 needs option 66 and/or option 67 to encode")
    raw = b""
    if option66 is not None:
        raw += _sub_option(SUB_66, option66)
    if option67 is not None:
        raw += _sub_option(SUB_67, option67)
    if len(raw) > MAX_OPTION_LEN:
        raise InputError(
            f"option 43 would be {len(raw)} bytes; one DHCP option holds {MAX_OPTION_LEN}"
        )
    return raw.hex(":")


def parse_hex(text: str) -> bytes:
    """Hex in the forms we meet: `42:0b:..`, dhclient's `42:b:..`, or `420b..`.

    >>> parse_hex("42:b:0")
    b'B\\x0b\\x00'
    >>> parse_hex("420B00")
    b'B\\x0b\\x00'
    """
    if not isinstance(text, str):
        raise InputError(f"option 43 must be hex text, got {type(text).__name__}")
    stripped = text.strip()
    if ":" in stripped:
        parts = stripped.split(":")
        if not all(re.fullmatch(r"[0-9a-fA-F]{1,2}", p) for p in parts):
            raise InputError(f"not colon-separated hex bytes: {_clip(stripped)!r}")
        return bytes(int(p, 16) for p in parts)
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", stripped):
        raise InputError(f"not hex (an even number of hex digits): {_clip(stripped)!r}")
    return bytes.fromhex(stripped)


def decode_option43(data: str | bytes) -> Option43:
    """Decode option 43 (hex text in any accepted form, or raw bytes).

    >>> decode_option43("42:b:68:74:74:70:3a:2f:2f:66:6f:6f:0")
    Option43(option66='http://foo', option67=None, unknown=())
    """
    raw = parse_hex(data) if isinstance(data, str) else bytes(data)
    if len(raw) > MAX_OPTION_LEN:
        raise InputError(f"option 43 is {len(raw)} bytes; one DHCP option holds {MAX_OPTION_LEN}")
    values: dict[int, str] = {}
    unknown: list[UnknownSub] = []
    pos = 0
    while pos < len(raw):
        code = raw[pos]
        if code == PAD:
            pos += 1
            continue
        if code == END:
            if any(raw[pos + 1 :]):
                raise InputError(f"option 43 has data after its end marker at byte {pos}")
            break
        if pos + 1 >= len(raw):
            raise InputError(f"option 43 is truncated: sub-option {code:#04x} has no length")
        length = raw[pos + 1]
        value = raw[pos + 2 : pos + 2 + length]
        if len(value) < length:
            raise InputError(
                f"option 43 is truncated: sub-option {code:#04x} says {length} bytes, "
                f"{len(value)} follow"
            )
        pos += 2 + length
        if code not in (SUB_66, SUB_67):
            unknown.append(UnknownSub(code, value))
            continue
        if code in values:
            raise InputError(f"option 43 carries sub-option {_name(code)} twice")
        values[code] = _text(code, value)
    return Option43(values.get(SUB_66), values.get(SUB_67), tuple(unknown))


@dataclass(frozen=True)
class FoundUrl:
    """The URL a phone fetches, and what was wrong but did not stop it (for a warning)."""

    url: str
    warnings: tuple[str, ...] = ()


def phone_url(
    option66: str | None = None,
    option67: str | None = None,
    option43: Option43 | None = None,
    device: DeviceInfo | None = None,
) -> str:
    """The URL the phone fetches: plain 66/67 win, a missing one comes from 43, markers replaced.

    InputError when the options do not form an http(s) URL (67 alone, a bare host in 66).
    >>> phone_url("http://prov.server.com", "prov.py?mac=<MACADR>",
    ...           device=DeviceInfo(mac="00:09:52:00:00:0E"))
    'http://prov.server.com/prov.py?mac=00095200000E'
    """
    if option43 is not None:
        option66 = option66 or option43.option66
        option67 = option67 or option43.option67
    joined = join_66_67(option66, option67)
    check_http_url(joined, option66, option67)
    return replace_markers(joined, device or DeviceInfo())


def url_from_options(
    option66: str | None = None,
    option67: str | None = None,
    option43: str | bytes | None = None,
    device: DeviceInfo | None = None,
) -> FoundUrl:
    """`phone_url` from options as received, 43 still encoded (hex text or bytes).

    A malformed 43 is only a warning when 66/67 form the URL without it; when the URL needs
    43, its error is the error.
    >>> url_from_options("http://bar", "x.xml", "42:ff").warnings
    ('option 43 ignored: option 43 is truncated: sub-option 0x42 says 255 bytes, 0 follow',)
    """
    try:
        decoded = decode_option43(option43) if option43 is not None else None
    except InputError as bad43:
        try:
            url = phone_url(option66, option67, None, device)
        except InputError:
            raise bad43 from None
        return FoundUrl(url, (f"option 43 ignored: {bad43}",))
    return FoundUrl(phone_url(option66, option67, decoded, device))


def check_http_url(url: str, option66: str | None = None, option67: str | None = None) -> str:
    """The joined 66/67 must be http(s)://host/...: a phone fetches nothing else.

    >>> check_http_url("prov.py?mac=<MACADR>")
    Traceback (most recent call last):
    ...
    phoneprov.core.errors.InputError: not an http(s) URL: 'prov.py?mac=<MACADR>'
    """
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0  # ValueError: no number, > 65535
        if parts.scheme.lower() in URL_SCHEMES and parts.hostname and port_ok:
            return url
    except ValueError:  # an unbalanced '[', a port that is no port
        pass
    hint = ""
    if not option66 and option67:
        hint = " (option 67 alone: option 66 must give http(s)://host)"
    elif option66 and not re.match(r"(?i)https?://", option66):
        hint = f" (option 66 {option66!r} is no http(s)://host)"
    raise InputError(f"not an http(s) URL: {_clip(url)!r}{hint}")


def _text(code: int, value: bytes) -> str:
    if value.endswith(b"\x00"):
        value = value[:-1]
    if b"\x00" in value:
        raise InputError(f"option 43 sub-option {_name(code)} has a NUL inside its value")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"option 43 sub-option {_name(code)} is not UTF-8 text: {e}") from None


def _name(code: int) -> str:
    return {SUB_66: "66", SUB_67: "67"}.get(code, f"{code:#04x}")


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
