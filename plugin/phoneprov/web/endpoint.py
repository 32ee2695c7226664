"""What one provisioning GET gets, free of Flask: `respond` is the one request path (the
fast dispatch and the Flask view both call it), `Provisioning.handle` the decision.

Answers: 200 (+ETag) or 304; 404 for a path that is no provisioning URL or a file the
device does not have; 403 for an unknown MAC and for a refused request alike (same bytes,
same work: access is decided before the inventory is asked, so nothing tells a prober
whether a MAC exists); 429 past the refusal limit; 500 when a template fails (logged with
template:line, nothing partial is sent); 503 when lease mode cannot read the state database
(logged once). No request ever waits for a lease. `rejection` answers what phones never
send: other methods 405, bodies 413.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from ..config import Config
from ..core.errors import ConfigError, InputError
from ..core.inventory import Record
from ..core.layout import ProvRequest, parse_request
from ..render import Catalog, Rendered
from ..site import enrolled_records
from .access import RefusalLimiter, Verdict, check_device, client_ip, decide
from .fetchlog import FetchLog
from .health import StateHealth
from .leases import LeaseLookup

log = logging.getLogger("phoneprov.web")

XML_TYPE = "application/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
BODIES = {
    403: b"forbidden\n",
    404: b"not found\n",
    405: b"method not allowed\n",
    413: b"request body not allowed\n",
    429: b"too many refused requests\n",
    500: b"internal error\n",
    503: b"service unavailable\n",
}
MAX_LOGGED_PATH = 300
MAX_FIELDS = 32  # query arguments parsed at most
STATUS_LINES = {
    200: "200 OK",
    304: "304 Not Modified",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
METHODS = ("GET", "HEAD")
ALLOW = ("Allow", ", ".join(METHODS))
TOKEN_IN_PATH = re.compile(r"^/t/([^/]{0,4})[^/]*/")


Headers = list[tuple[str, str]]


class Reply(NamedTuple):  # one per request: a third of a frozen dataclass's cost to make
    status: int
    body: bytes
    content_type: str = TEXT_TYPE
    etag: str | None = None
    mac: str | None = None


class Provisioning:
    """The catalog, the access policy and the fetch log, wired for one server process."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        *,
        secret: bytes | None,
        leases: LeaseLookup,
        fetch_log: FetchLog,
        health: StateHealth | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.layout = config.server.layout
        self.catalog = catalog
        self.mode = config.security.mode
        self.trusted_proxies = config.security.trusted_proxies
        self.secret = secret
        self.leases = leases
        self.limiter = RefusalLimiter(config.security.refused_per_minute)
        self.fetch_log = fetch_log
        self.health = health or StateHealth(config.state)
        self.clock = clock

    @classmethod
    def from_config(cls, config: Config, server: str | None = None) -> Provisioning:
        from ..secret import load_secret

        secret = (
            None if config.security.mode == "open" else load_secret(config.security.secret_file)
        )
        state_path = config.state
        health = StateHealth(state_path)
        _create_state(state_path, health)
        catalog = Catalog(
            config,
            server=server,
            extra=EnrolledRecords(state_path, health),
            max_cache_bytes=config.server.cache_mb << 20,
            log_invalid=config.server.validate,
        )
        leasefile = config.dhcp.leasefile if config.security.mode == "lease" else None
        leases = LeaseLookup(state_path, leasefile)
        if leases.leasefile is not None:
            problem = leases.leasefile.describe_problem()
            if problem:
                log.warning(
                    "dhcp.leasefile %s: %s; leases come from the hook only (a phone that asks "
                    "before the hook has recorded its lease is refused, and asks again)",
                    leasefile,
                    problem,
                )
        return cls(
            config,
            catalog,
            secret=secret,
            leases=leases,
            fetch_log=FetchLog(state_path, config.retention, health),
            health=health,
        )

    def close(self) -> None:
        self.fetch_log.close()

    # everything -----------------------------------------------------------------------
    def handle(self, path: str, query_mac: str | None, ip: str, if_none_match: str | None) -> Reply:
        """The decision for one GET: limit, parse, access, device, bytes (cached or rendered).
        Access comes first and never waits: it depends on the client, never on the MAC."""
        now = self.clock()
        if self.limiter.blocked(ip, now):
            return self._log(Reply(429, BODIES[429]), path, query_mac, ip, now)
        try:
            req = parse_request(self.layout, path, query_mac)
        except InputError as e:
            return self._refuse(404, None, str(e), path, query_mac, ip, now)
        self.catalog.refresh()  # before the cache is read: a stale hit must not slip out
        try:
            verdict = self._access(req, ip, now)
        except sqlite3.Error as e:
            self.health.failed("answering 503 in lease mode", e)
            return Reply(503, BODIES[503])  # not fetch-logged: that log is in the same database
        device = None
        if verdict.allowed:
            device = self.catalog.device(req.mac, refreshed=True)
            verdict = check_device(req, device)
        if not verdict.allowed or device is None:
            return self._refuse(403, req.mac, verdict.reason, path, query_mac, ip, now)
        try:
            if req.name is None:
                rendered: Rendered | None = self.catalog.entry(device, req.style)
            else:
                rendered = self.catalog.file(device, req.name)
        except ConfigError as e:
            log.error(
                "template error ip=%s mac=%s path=%s: %s", ip, req.mac, _shown(path, query_mac), e
            )
            return self._log(Reply(500, BODIES[500], mac=req.mac), path, query_mac, ip, now)
        if rendered is None:
            return self._refuse(404, req.mac, "no such file", path, query_mac, ip, now)
        return self._answer(req, rendered, path, query_mac, ip, if_none_match, now)

    def _access(self, req: ProvRequest, ip: str, now: float) -> Verdict:
        holder = None
        if self.mode == "lease" and req.token is None:
            holder = self.leases.holder(ip, now)
            self.health.ok()
        return decide(self.mode, self.secret, req, holder, ip)

    def _answer(
        self,
        req: ProvRequest,
        rendered: Rendered,
        path: str,
        query_mac: str | None,
        ip: str,
        if_none_match: str | None,
        now: float,
    ) -> Reply:
        if if_none_match and _etag_matches(if_none_match, rendered.etag):
            reply = Reply(304, b"", XML_TYPE, rendered.etag, req.mac)
        else:
            reply = Reply(200, rendered.body, XML_TYPE, rendered.etag, req.mac)
        return self._log(reply, path, query_mac, ip, now)

    def _refuse(
        self,
        status: int,
        mac: str | None,
        reason: str,
        path: str,
        query_mac: str | None,
        ip: str,
        now: float,
    ) -> Reply:
        log.warning(
            "refused status=%d ip=%s mac=%s path=%s reason=%s",
            status,
            ip,
            mac or "-",
            _shown(path, query_mac),
            reason,
        )
        if self.limiter.refused(ip, now):
            log.warning(
                "rate limit ip=%s: %d refused requests within a minute, answering 429",
                ip,
                self.limiter.per_minute,
            )
        return self._log(Reply(status, BODIES[status], mac=mac), path, query_mac, ip, now)

    def _log(self, reply: Reply, path: str, query_mac: str | None, ip: str, now: float) -> Reply:
        shown = _shown(path, query_mac)
        self.fetch_log.add((now, reply.mac, ip, shown, reply.status, len(reply.body)))
        log.debug("fetch status=%d ip=%s mac=%s path=%s", reply.status, ip, reply.mac, shown)
        return reply


def respond(service: Provisioning, environ: Mapping[str, Any]) -> tuple[str, Headers, bytes]:
    """The one request path, for the fast dispatch and the Flask view alike: a GET or HEAD's
    WSGI environ in (`rejection` said None); status line, headers and body out."""
    reply = service.handle(
        environ.get("PATH_INFO", ""),
        query_mac(environ.get("QUERY_STRING", "")),
        client_ip(environ, service.trusted_proxies),
        environ.get("HTTP_IF_NONE_MATCH"),
    )
    body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else reply.body
    return STATUS_LINES[reply.status], reply_headers(reply), body


def has_body(environ: Mapping[str, Any]) -> bool:
    """Whether the request carries a body (a Content-Length other than 0, or chunked)."""
    return bool(
        str(environ.get("CONTENT_LENGTH") or "0").strip("0") or "HTTP_TRANSFER_ENCODING" in environ
    )


def rejection(environ: Mapping[str, Any]) -> tuple[str, Headers, bytes] | None:
    """405 (with Allow) for a method other than GET/HEAD, 413 for a GET/HEAD with a body,
    None for what `respond` answers: the dispatch and the Flask app both ask here."""
    if environ.get("REQUEST_METHOD") not in METHODS:
        status, extra = 405, [ALLOW]
    elif has_body(environ):
        status, extra = 413, []
    else:
        return None
    log.debug(
        "rejected status=%d method=%.20r ip=%s", status, environ.get("REQUEST_METHOD"),
        environ.get("REMOTE_ADDR"),
    )  # fmt: skip
    return (
        STATUS_LINES[status],
        reply_headers(Reply(status, BODIES[status])) + extra,
        BODIES[status],
    )


def query_mac(query: str) -> str | None:
    """The first `mac` argument of a query string (escapes decoded), or None."""
    if "%" not in query and "+" not in query:  # the common case, no decoding needed
        for pair in query.split("&"):
            name, sep, value = pair.partition("=")
            if name == "mac" and sep:
                return value
        return None
    for name, value in parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_FIELDS):
        if name == "mac":
            return value
    return None


def reply_headers(reply: Reply) -> Headers:
    """The response headers for a reply."""
    headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body)))]
    if reply.etag is not None:
        headers += [("ETag", reply.etag), ("Cache-Control", "no-cache")]
    if reply.status == 304:
        headers = headers[2:]
    return headers


class EnrolledRecords:
    """The auto-enrolled phones for the catalog: while the database cannot be read, the last
    ones read (the outage is told once by `health`; lease mode answers 503 meanwhile)."""

    def __init__(self, state_path: Path, health: StateHealth) -> None:
        self.state_path = state_path
        self.health = health
        self.last: list[Record] = []

    def __call__(self) -> list[Record]:
        try:
            self.last = enrolled_records(self.state_path)
        except sqlite3.Error as e:
            self.health.failed("auto-enrolled phones as last read", e)
        return self.last


def _create_state(path: Path, health: StateHealth) -> None:
    """Create the state database (WAL mode, schema) before request threads and the fetch-log
    writer open it at once: switching a new file to WAL under a concurrent reader fails with
    "database is locked" instead of waiting. A failure is told once, by `health`."""
    from ..state.db import State

    try:
        State(path).close()
    except sqlite3.Error as e:
        health.failed("at start", e)


def _shown(path: str, query_mac: str | None) -> str:
    """The path for logs: a token is a credential, only its first 4 characters are shown."""
    shown = f"{path}?mac={query_mac}" if query_mac is not None else path
    if shown.startswith("/t/"):
        shown = TOKEN_IN_PATH.sub(r"/t/\1.../", shown, count=1)
    shown = shown[:MAX_LOGGED_PATH]
    if shown.isascii() and shown.isprintable() and "\\" not in shown:
        return shown  # what a phone asks for: unicode_escape would give it back unchanged
    return shown.encode("unicode_escape").decode("ascii")


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    candidates = (c.strip().removeprefix("W/") for c in header.split(","))
    return etag in candidates
