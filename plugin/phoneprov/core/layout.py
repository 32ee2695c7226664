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
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
TOKEN_LEN = 24


@dataclass(frozen=True)
class Layout:
    style: str = "query"  # "query" | "path"
    query_path: str = "prov.py"  # one path segment

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise InputError(f"url style must be one of {STYLES}, not {self.style!r}")
        if not FILE_NAME.match(self.query_path):
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
    if not FILE_NAME.match(name) or ".." in name:
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
