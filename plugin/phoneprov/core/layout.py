"""The URL layout: the one place that says which URL a phone is given and what the server serves.

Two entry styles, both from the seed:
- query: option 67 `prov.py?mac=<MACADR>` (the seed's example; the script name is configurable)
- path:  option 67 `prov/<HWTYP>/<MACADR>.xml`
With a per-device token (credential mode), the token is one more path segment in front:
`t/<token>/prov.py?mac=...` — the phone only needs the URL, nothing to configure.
The entry document is a reference file; its files live under `prov/<TYPE>/<MAC>/<name>`,
listed relative to the entry so the same bytes work behind any host name or port.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from .dhcp import join_66_67
from .errors import InputError
from .mac import norm_mac

STYLES = ("query", "path")
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}")  # fullmatch: no trailing newline
TOKEN_LEN = 24


@dataclass(frozen=True)
class Layout:
    style: str = "query"  # "query" | "path"
    query_path: str = "prov.py"  # one path segment

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InputError(f"url style must be one of {STYLES}, not {self.style!r}")
        if not FILE_NAME.fullmatch(self.query_path):
            raise InputError(f"query path must be one file name like prov.py: {self.query_path!r}")

    def option67(self, token: str | None = None, mac: str | None = None) -> str:
        """Option 67 for a device; markers stay unless `mac` is given (then it is filled in)."""
        mac_part = norm_mac(mac) if mac else "<MACADR>"
        if self.style == "query":
            file = f"{self.query_path}?mac={mac_part}"
        else:
            file = f"prov/<HWTYP>/{mac_part}.xml"
        return f"t/{token}/{file}" if token else file

    def entry_url(self, server: str, device_type: str, mac: str, token: str | None = None) -> str:
        """The complete entry URL for one device, markers replaced (what the phone fetches)."""
        return join_66_67(server, self.option67(token, mac)).replace("<HWTYP>", device_type)

    def file_refs(self, device_type: str, mac: str, names: list[str]) -> list[str]:
        """The entries of a device's reference file, relative to the entry URL (seed rule 1)."""
        mac = norm_mac(mac)
        prefix = f"{mac}/" if self.style == "path" else f"prov/{device_type}/{mac}/"
        return [prefix + check_file_name(n) for n in names]


def check_file_name(name: str) -> str:
    """A served file name: one safe path segment (no '/', no '..', no leading dot)."""
    if not FILE_NAME.fullmatch(name) or ".." in name:
        raise InputError(f"not a valid file name: {name!r}")
    return name


def device_token(secret: bytes, mac: str) -> str:
    """The per-device credential: HMAC of the MAC under the appliance secret (nothing stored).

    >>> device_token(b"k", "00:09:52:00:00:0e") == device_token(b"k", "00095200000E")
    True
    """
    digest = hmac.new(secret, norm_mac(mac).encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_LEN]


def token_matches(secret: bytes, mac: str, token: str) -> bool:
    return hmac.compare_digest(device_token(secret, mac), token)


# --- request side: what a phone's GET means ------------------------------------------------

DEVICE_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$")
TOKEN = re.compile(rf"^[0-9a-f]{{{TOKEN_LEN}}}$")
MAX_PATH = 512


@dataclass(frozen=True)
class ProvRequest:
    """One provisioning GET, understood: whose files, which one, and how the phone got there.

    `name` None means the entry document (the reference file). `style` is the style of the
    entry URL the phone used; it decides how the reference file lists the files.
    `device_type` is None for a query-style entry (the URL carries no model).
    """

    mac: str
    name: str | None
    style: str
    device_type: str | None = None
    token: str | None = None


def norm_device_type(text: str) -> str:
    """A model as the inventory writes it: `d-200` → `D200`.

    >>> norm_device_type("d-200")
    'D200'
    """
    if not DEVICE_TYPE.match(text):
        raise InputError(f"not a device type: {text[:40]!r}")
    return text.upper().replace("-", "")


def parse_request(layout: Layout, path: str, query_mac: str | None) -> ProvRequest:
    """Map a request path (and the `mac` query argument) to a ProvRequest; InputError if none.

    Both entry styles are always understood, so a phone given either URL is served; the
    configured style is only what `options` hands out.

    >>> parse_request(Layout(), "/prov.py", "00:09:52:00:00:0e").mac
    '00095200000E'
    >>> parse_request(Layout(), "/prov/d200/00-09-52-00-00-0e.xml", None).device_type
    'D200'
    >>> parse_request(Layout(), "/t/" + "a" * 24 + "/prov/D200/00095200000E/common.xml", None)
    ... # doctest: +ELLIPSIS
    ProvRequest(mac='00095200000E', name='common.xml', style='path', device_type='D200', ...)
    """
    if len(path) > MAX_PATH or not path.startswith("/"):
        raise InputError("not a provisioning URL")
    segments = path[1:].split("/")
    token = None
    if len(segments) > 2 and segments[0] == "t":
        token = segments[1]
        if not TOKEN.match(token):
            raise InputError("malformed token segment")
        segments = segments[2:]
    if segments == [layout.query_path]:
        if not query_mac:
            raise InputError(f"{layout.query_path} needs ?mac=")
        return ProvRequest(norm_mac(query_mac), None, "query", None, token)
    if len(segments) in (3, 4) and segments[0] == "prov":
        device_type = norm_device_type(segments[1])
        if len(segments) == 3 and segments[2].lower().endswith(".xml"):
            return ProvRequest(norm_mac(segments[2][:-4]), None, "path", device_type, token)
        if len(segments) == 4:
            name = check_file_name(segments[3])
            return ProvRequest(norm_mac(segments[2]), name, "path", device_type, token)
    raise InputError("not a provisioning URL")


def request_path(layout: Layout, req: ProvRequest) -> str:
    """The canonical path (and query) of a request: the inverse of `parse_request`.

    >>> request_path(Layout(), ProvRequest("00095200000E", None, "query"))
    '/prov.py?mac=00095200000E'
    """
    prefix = f"/t/{req.token}" if req.token else ""
    if req.name is None and req.style == "query":
        return f"{prefix}/{layout.query_path}?mac={req.mac}"
    if req.device_type is None:
        raise InputError("a path-style request needs the device type")
    if req.name is None:
        return f"{prefix}/prov/{req.device_type}/{req.mac}.xml"
    return f"{prefix}/prov/{req.device_type}/{req.mac}/{req.name}"
