"""SIP messages (RFC 3261) as far as PnP and check-sync need them: parse, build, read headers.

Pure: no sockets, no clock, no randomness (tags, branches and Call-IDs come in as arguments).
Header names are stored canonically (compact forms expanded, known names in their usual
case); values are stripped and unfolded. Content-Length is not kept as a header: the body
is the truth and `build_message` writes it. Anything malformed raises `InputError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import unquote

from .errors import InputError

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 §8.1.1.7: marks a branch as unique per transaction
MAX_MESSAGE_BYTES = 65_535  # one UDP datagram
MAX_CSEQ = 2**31 - 1
DEFAULT_PORT = 5060

COMPACT_FORMS = {
    "v": "Via", "f": "From", "t": "To", "i": "Call-ID", "m": "Contact", "l": "Content-Length",
    "c": "Content-Type", "o": "Event", "u": "Allow-Events", "k": "Supported", "s": "Subject",
    "e": "Content-Encoding",
}  # fmt: skip
_KNOWN_NAMES = (
    *COMPACT_FORMS.values(), "CSeq", "Max-Forwards", "Expires", "Subscription-State",
    "User-Agent", "Server", "Allow", "Accept", "Route", "Record-Route", "WWW-Authenticate",
)  # fmt: skip
CANONICAL_NAMES = {name.lower(): name for name in _KNOWN_NAMES}
# Headers whose comma-separated values are separate entries (RFC 3261 §7.3.1).
LIST_HEADERS = frozenset({"Via", "Contact", "Route", "Record-Route", "Allow", "Supported"})

_TOKEN = r"[A-Za-z0-9.!%*_+`'~-]+"
_TOKEN_RE = re.compile(_TOKEN)
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # control characters except HT
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_REQUEST_LINE_RE = re.compile(rf"({_TOKEN}) +(\S+) +SIP/2\.0", re.IGNORECASE)
_STATUS_LINE_RE = re.compile(r"SIP/2\.0 +([1-6][0-9][0-9])(?: +(.*))?", re.IGNORECASE)
_HEADER_RE = re.compile(rf"({_TOKEN})[ \t]*:[ \t]*(.*)")
_VIA_RE = re.compile(rf"SIP\s*/\s*2\.0\s*/\s*({_TOKEN})\s+([^;\s]+)\s*(;.*)?", re.IGNORECASE)
_HOSTPORT_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")
_PARAM_RE = re.compile(rf'\s*;\s*({_TOKEN})(?:\s*=\s*("(?:[^"\\]|\\.)*"|[^;"\s]+))?\s*')
_URI_RE = re.compile(r"(sips?):(?:([^@;?]*)@)?([^;?]+)(;[^?]*)?(\?.*)?", re.IGNORECASE)

Params = tuple[tuple[str, str | None], ...]
Headers = tuple[tuple[str, str], ...]


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name: compact forms expanded, known names cased.

    >>> canonical_name("i"), canonical_name("call-id"), canonical_name("X-Custom")
    ('Call-ID', 'Call-ID', 'X-Custom')
    """
    lower = name.lower()
    return COMPACT_FORMS.get(lower) or CANONICAL_NAMES.get(lower, name)


class _HeaderAccess:
    headers: Headers

    def header_list(self, name: str) -> tuple[str, ...]:
        """Every value of `name`, list headers split at top-level commas, in order."""
        wanted = canonical_name(name)
        values = tuple(v for k, v in self.headers if k.lower() == wanted.lower())
        if wanted in LIST_HEADERS:
            return tuple(part for value in values for part in split_commas(value))
        return values

    def header(self, name: str) -> str | None:
        """The first value of `name`, or None."""
        values = self.header_list(name)
        return values[0] if values else None

    def required(self, name: str) -> str:
        """The first value of `name`; InputError when it is missing."""
        value = self.header(name)
        if value is None:
            raise InputError(f"SIP message has no {canonical_name(name)} header")
        return value


@dataclass(frozen=True)
class Request(_HeaderAccess):
    method: str
    uri: str
    headers: Headers = ()
    body: bytes = b""


@dataclass(frozen=True)
class Response(_HeaderAccess):
    status: int
    reason: str
    headers: Headers = ()
    body: bytes = b""


Message = Request | Response


def _check_text(what: str, text: str) -> str:
    if _CTL_RE.search(text):
        raise InputError(f"SIP {what} contains a control character: {text[:60]!r}")
    return text


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t"):  # folded continuation (RFC 3261 §7.3.1)
            if not headers:
                raise InputError("SIP header block starts with a continuation line")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        match = _HEADER_RE.fullmatch(line)
        if not match:
            raise InputError(f"not a SIP header line: {line[:60]!r}")
        headers.append((canonical_name(match[1]), match[2].strip()))
    return headers


def _content_length(headers: list[tuple[str, str]]) -> int | None:
    values = {value for name, value in headers if name == "Content-Length"}
    if not values:
        return None
    if len(values) > 1 or not all(v.isdigit() and v.isascii() for v in values):
        raise InputError(f"bad Content-Length: {sorted(values)!r}")
    return int(values.pop())


def parse_message(data: bytes) -> Message:
    """Parse one SIP message from a datagram; InputError for anything malformed."""
    if not isinstance(data, bytes | bytearray):
        raise InputError(f"SIP message must be bytes, not {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise InputError(f"SIP message is {len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    data = bytes(data).lstrip(b"\r\n")  # leading CRLFs are keep-alives (RFC 3261 §7.5)
    end = _HEAD_END_RE.search(data)
    head, rest = (data[: end.start()], data[end.end() :]) if end else (data, b"")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"SIP header block is not UTF-8: {e}") from None
    start, *lines = re.split(r"\r?\n", text)
    _check_text("header block", "".join([start, *lines]))
    headers = _parse_headers(lines)
    length = _content_length(headers)
    if length is not None and length > len(rest):
        raise InputError(f"SIP body is {len(rest)} bytes, Content-Length says {length}")
    body = rest if length is None else rest[:length]
    kept = tuple(h for h in headers if h[0] != "Content-Length")
    if request := _REQUEST_LINE_RE.fullmatch(start):
        return Request(request[1].upper(), request[2], kept, body)
    if status := _STATUS_LINE_RE.fullmatch(start):
        return Response(int(status[1]), (status[2] or "").strip(), kept, body)
    raise InputError(f"not a SIP request or status line: {start[:60]!r}")


def build_message(message: Message) -> bytes:
    """Serialise a message; Content-Length is written from the body."""
    if isinstance(message, Request):
        if not _TOKEN_RE.fullmatch(message.method) or not re.fullmatch(r"\S+", message.uri):
            raise InputError(f"bad request line: {message.method!r} {message.uri!r}")
        start = f"{message.method} {message.uri} {SIP_VERSION}"
    else:
        if not 100 <= message.status <= 699:
            raise InputError(f"SIP status out of range: {message.status}")
        start = f"{SIP_VERSION} {message.status} {message.reason}"
    lines = [_check_text("start line", start)]
    for name, value in message.headers:
        if not _TOKEN_RE.fullmatch(name) or canonical_name(name) == "Content-Length":
            raise InputError(f"bad SIP header name: {name!r}")
        lines.append(f"{canonical_name(name)}: {_check_text('header ' + name, value.strip())}")
    lines.append(f"Content-Length: {len(message.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + message.body


# --- header values ---------------------------------------------------------------------


def split_commas(value: str) -> list[str]:
    """Split a list header at commas outside quotes and <...>.

    >>> split_commas('"a, b" <sip:x@y>, <sip:z@w>;q=1')
    ['"a, b" <sip:x@y>', '<sip:z@w>;q=1']
    """
    parts: list[str] = []
    current: list[str] = []
    quoted = angled = False
    for index, char in enumerate(value):
        escaped = index > 0 and value[index - 1] == "\\"
        if char == '"' and not escaped:
            quoted = not quoted
        elif not quoted and char in "<>":
            angled = char == "<"
        elif char == "," and not quoted and not angled:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def unquote_string(text: str) -> str:
    """The content of a quoted-string; other text unchanged.

    >>> unquote_string('"Auer\\\\"swald"'), unquote_string("D200")
    ('Auer"swald', 'D200')
    """
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def parse_params(text: str) -> Params:
    """`;name=value;flag` → (("name", "value"), ("flag", None)); values keep their quotes.

    >>> parse_params(';profile-type="device" ; Rport')
    (('profile-type', '"device"'), ('rport', None))
    """
    params: list[tuple[str, str | None]] = []
    text, position = text.strip(), 0
    while position < len(text):
        match = _PARAM_RE.match(text, position)
        if not match:
            raise InputError(f"bad SIP parameters: {text[:60]!r}")
        params.append((match[1].lower(), match[2]))
        position = match.end()
    return tuple(params)


def build_params(params: Params) -> str:
    return "".join(f";{name}" if value is None else f";{name}={value}" for name, value in params)


def param(params: Params, name: str) -> str | None:
    """A parameter's value, unquoted; '' for a flag without value, None when absent."""
    for key, value in params:
        if key == name.lower():
            return "" if value is None else unquote_string(value)
    return None


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str | None
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def address(self) -> tuple[str, int]:
        return self.host.strip("[]"), self.port or DEFAULT_PORT


def _host_port(text: str) -> tuple[str, int | None]:
    match = _HOSTPORT_RE.fullmatch(text.strip())
    if not match or (match[2] and not 0 < int(match[2]) < 65536):
        raise InputError(f"bad SIP host[:port]: {text[:60]!r}")
    return match[1].lower(), int(match[2]) if match[2] else None


def parse_sip_uri(text: str) -> SipUri:
    """`sip:user@host:port;params` (URI headers after '?' are ignored).

    >>> parse_sip_uri("sip:MAC%3a00095200000E@224.0.1.75").user
    'MAC%3a00095200000E'
    """
    match = _URI_RE.fullmatch(text.strip())
    if not match:
        raise InputError(f"not a SIP URI: {text[:60]!r}")
    host, port = _host_port(match[3])
    return SipUri(match[1].lower(), match[2], host, port, parse_params(match[4] or ""))


def build_sip_uri(uri: SipUri) -> str:
    user = f"{uri.user}@" if uri.user is not None else ""
    port = f":{uri.port}" if uri.port else ""
    return f"{uri.scheme}:{user}{uri.host}{port}{build_params(uri.params)}"


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact value: optional display name, URI, header parameters (tag...)."""

    uri: str
    display: str = ""
    params: Params = ()

    @property
    def tag(self) -> str | None:
        return param(self.params, "tag")


def parse_name_addr(text: str) -> NameAddr:
    """`"Name" <sip:u@h>;tag=1`, `<sip:u@h>` or the bare `sip:u@h;tag=1`."""
    text = text.strip()
    match = re.fullmatch(r'((?:"(?:[^"\\]|\\.)*")|[^<"]*?)\s*<([^>]*)>(.*)', text)
    if match:
        display, uri, params = unquote_string(match[1].strip()), match[2].strip(), match[3]
    else:  # addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10)
        display, (uri, sep, tail) = "", text.partition(";")
        params = sep + tail
    if not uri or re.search(r"\s", uri):
        raise InputError(f"bad SIP address: {text[:60]!r}")
    return NameAddr(uri, display, parse_params(params))


def build_name_addr(addr: NameAddr) -> str:
    display = '"{}" '.format(re.sub(r'(["\\])', r"\\\1", addr.display)) if addr.display else ""
    return f"{display}<{addr.uri}>{build_params(addr.params)}"


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @property
    def branch(self) -> str | None:
        return param(self.params, "branch")


def parse_via(text: str) -> Via:
    """One Via entry: `SIP/2.0/UDP host[:port];branch=...;rport`."""
    match = _VIA_RE.fullmatch(text.strip())
    if not match:
        raise InputError(f"bad Via: {text[:60]!r}")
    host, port = _host_port(match[2])
    return Via(match[1].upper(), host, port, parse_params(match[3] or ""))


def build_via(via: Via) -> str:
    port = f":{via.port}" if via.port else ""
    return f"{SIP_VERSION}/{via.transport} {via.host}{port}{build_params(via.params)}"


@dataclass(frozen=True)
class Event:
    package: str
    params: Params = ()


def parse_event(text: str) -> Event:
    """`ua-profile;profile-type="device"` → Event('ua-profile', ...); package lower-cased."""
    package, sep, tail = text.strip().partition(";")
    if not _TOKEN_RE.fullmatch(package.strip()):
        raise InputError(f"bad Event: {text[:60]!r}")
    return Event(package.strip().lower(), parse_params(sep + tail))


def parse_cseq(text: str) -> tuple[int, str]:
    """`1 SUBSCRIBE` → (1, 'SUBSCRIBE')."""
    match = re.fullmatch(rf"\s*([0-9]{{1,10}})\s+({_TOKEN})\s*", text)
    if not match or int(match[1]) > MAX_CSEQ:
        raise InputError(f"bad CSeq: {text[:60]!r}")
    return int(match[1]), match[2].upper()


def top_via(message: Message) -> Via:
    return parse_via(message.required("Via"))


def with_header(message: Message, name: str, value: str) -> Message:
    """A copy with `name` set to `value` (replacing every previous value)."""
    name = canonical_name(name)
    kept = tuple(h for h in message.headers if h[0].lower() != name.lower())
    return replace(message, headers=(*kept, (name, value)))


def user_part(uri_text: str) -> str | None:
    """The percent-decoded user of a SIP URI (`MAC%3a0009...` → `MAC:0009...`), or None."""
    user = parse_sip_uri(uri_text).user
    return unquote(user) if user is not None else None
