"""nginx and Caddy configuration that serves a static export over HTTPS as `serve` would.

Only `/t/<token>/<file>` is served (24 hex digits, then a file: never a directory, so nothing
is listed); everything else is 404. Every file goes out as `serve` sends it:
`application/xml; charset=utf-8`, `Cache-Control: no-cache` (a cache asks again every time;
the file's ETag makes that a 304 when nothing changed). Certificate paths and the server name
are placeholders unless given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import InputError
from ..core.layout import TOKEN_LEN

XML_TYPE = "application/xml; charset=utf-8"  # what `serve` sends (web.endpoint.XML_TYPE)
CACHE_CONTROL = "no-cache"
PHONE_PATH = rf"^/t/[0-9a-f]{{{TOKEN_LEN}}}/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"
# What may go into a snippet unquoted: paths and names, never a quote, space, ';' or brace.
SAFE = re.compile(r"[A-Za-z0-9_./@:+\[\]-]+")
PLACEHOLDER_CERT = "/etc/ssl/phoneprov/fullchain.pem"
PLACEHOLDER_KEY = "/etc/ssl/phoneprov/privkey.pem"
PLACEHOLDER_NAME = "prov.example.com"
TOKENS_IN_LOGS = (
    "Every request path holds a phone's token, its credential for the files (which carry SIP "
    "passwords): access logs will contain the tokens. Keep them as private as the export."
)


@dataclass(frozen=True)
class SnippetOptions:
    root: str  # the export DIR (the symlink itself: a new export is followed at once)
    server_name: str = PLACEHOLDER_NAME
    port: int = 443
    bind: str | None = None  # one address to listen on; None: every address (IPv4 and IPv6)
    cert: str = PLACEHOLDER_CERT
    key: str = PLACEHOLDER_KEY

    def __post_init__(self) -> None:
        for what, value in [
            ("DIR", self.root),
            ("server name", self.server_name),
            ("certificate", self.cert),
            ("key", self.key),
            ("bind address", self.bind or "x"),
        ]:
            if not SAFE.fullmatch(value):
                raise InputError(
                    f"{what} {value!r}: only letters, digits and _ . / @ : + - [ ] "
                    "can go into the snippet"
                )
        if not self.root.startswith("/"):
            raise InputError(f"DIR must be an absolute path: {self.root!r}")
        if not 0 < self.port < 65536:
            raise InputError(f"port out of range: {self.port}")

    @property
    def placeholders(self) -> bool:
        return PLACEHOLDER_CERT in (self.cert, self.key) or self.server_name == PLACEHOLDER_NAME


def nginx_snippet(o: SnippetOptions) -> str:
    """A `server` block for nginx's http context (e.g. /etc/nginx/conf.d/phoneprov.conf)."""
    if o.bind is None:
        listen = f"    listen {o.port} ssl;\n    listen [::]:{o.port} ssl;\n"
    else:
        listen = f"    listen {o.bind}:{o.port} ssl;\n"
    return (
        f"# The phones' files from `phoneprov export static {o.root}` over HTTPS.\n"
        "# Goes into nginx's http context (e.g. /etc/nginx/conf.d/phoneprov-export.conf).\n"
        + _placeholder_note(o)
        + f"# {TOKENS_IN_LOGS}\n"
        "# To keep them out: `access_log off;` in the location below.\n"
        "server {\n"
        f"{listen}"
        f"    server_name {o.server_name};\n"
        f"    ssl_certificate {o.cert};\n"
        f"    ssl_certificate_key {o.key};\n"
        f"    root {o.root};\n"
        "    autoindex off;\n"
        "    # /t/<token>/<file> only: a file, never a directory (nothing is listed)\n"
        f'    location ~ "{PHONE_PATH}" {{\n'
        "        types { }\n"
        f'        default_type "{XML_TYPE}";\n'
        f'        add_header Cache-Control "{CACHE_CONTROL}" always;\n'
        "        try_files $uri =404;\n"
        "    }\n"
        "    location / {\n"
        "        return 404;\n"
        "    }\n"
        "}\n"
    )


def caddy_snippet(o: SnippetOptions) -> str:
    """A Caddyfile site block (Caddy 2), indented as `caddy fmt` wants it."""
    address = o.server_name if o.port == 443 else f"{o.server_name}:{o.port}"
    bind = f"\tbind {o.bind}\n" if o.bind else ""
    return (
        f"# The phones' files from `phoneprov export static {o.root}` over HTTPS.\n"
        "# A site block for a Caddyfile (Caddy 2).\n"
        + _placeholder_note(o)
        + f"# Caddy keeps no access log unless a `log` directive asks for one. {TOKENS_IN_LOGS}\n"
        f"https://{address} {{\n"
        f"{bind}"
        f"\ttls {o.cert} {o.key}\n"
        f"\troot * {o.root}\n"
        f"\t@phones path_regexp {PHONE_PATH}\n"
        "\thandle @phones {\n"
        f'\t\theader Content-Type "{XML_TYPE}"\n'
        f'\t\theader Cache-Control "{CACHE_CONTROL}"\n'
        "\t\tfile_server # no `browse`: a directory is 404, nothing is listed\n"
        "\t}\n"
        "\thandle {\n"
        "\t\trespond 404\n"
        "\t}\n"
        "}\n"
    )


def _placeholder_note(o: SnippetOptions) -> str:
    if not o.placeholders:
        return ""
    return "# Replace the placeholders: server name, certificate and key paths.\n"
