"""The two SIP exchanges phoneprov takes part in, as pure functions over `sipmsg` values.

- PnP: a phone multicasts `SUBSCRIBE` with `Event: ua-profile`; we answer `200 OK` (with a
  To-tag) and send, in that dialog, a `NOTIFY` whose `application/url` body is its URL.
- check-sync: an out-of-dialog `NOTIFY` with `Event: check-sync` makes a phone re-provision;
  its optional `application/xml` body (`<notifySync>`, DSERIES §4.2) names the URL to fetch.

Tags, branches and Call-IDs are random in real life: they come in as arguments.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InputError
from .mac import norm_mac
from .reference import parse_xml
from .sipmsg import (
    BRANCH_MAGIC,
    DEFAULT_PORT,
    Message,
    NameAddr,
    Request,
    Response,
    Via,
    build_name_addr,
    build_via,
    param,
    parse_cseq,
    parse_event,
    parse_name_addr,
    parse_sip_uri,
    top_via,
    user_part,
)

PNP_GROUP = "224.0.1.75"  # "SIP" multicast group (RFC 3261 §10.2.6, IANA sip.mcast.net)
PNP_EVENT = "ua-profile"
URL_CONTENT_TYPE = "application/url"
NOTIFY_SYNC_CONTENT_TYPE = "application/xml"
NOTIFY_SYNC_ROOT = "notifySync"
XML_DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>\n'
DEFAULT_CHECK_SYNC_EVENT = "check-sync;reboot=false"
MAX_FORWARDS = "70"
USER_AGENT = "phoneprov"
REASONS = {200: "OK", 400: "Bad Request", 482: "Loop Detected", 489: "Bad Event"}

Address = tuple[str, int]
_RANDOM_PART = re.compile(r"[A-Za-z0-9.!%*_+`'~-]{4,64}")  # a token, long enough to be unique


def _token(what: str, value: str) -> str:
    if not _RANDOM_PART.fullmatch(value):
        raise InputError(f"bad SIP {what}: {value!r}")
    return value


def make_branch(random_part: str) -> str:
    """An RFC 3261 branch: the magic cookie then something unique.

    >>> make_branch("a1b2c3d4")
    'z9hG4bKa1b2c3d4'
    """
    return BRANCH_MAGIC + _token("branch", random_part)


def make_response(request: Request, status: int, *, to_tag: str | None = None) -> Response:
    """A response mirroring Via (all), From, To (+ our tag), Call-ID and CSeq (§8.2.6.2)."""
    to = parse_name_addr(request.required("To"))
    if to_tag and to.tag is None:
        to = NameAddr(to.uri, to.display, (*to.params, ("tag", _token("tag", to_tag))))
    headers = [("Via", via) for via in request.header_list("Via")]
    if not headers:
        raise InputError("SIP request has no Via header")
    headers += [
        ("From", request.required("From")),
        ("To", build_name_addr(to)),
        ("Call-ID", request.required("Call-ID")),
        ("CSeq", request.required("CSeq")),
        ("Server", USER_AGENT),
    ]
    return Response(status, REASONS.get(status, ""), tuple(headers))


def response_address(request: Request, source: Address) -> Address:
    """Where a UDP response goes (RFC 3261 §18.2.2, RFC 3581): the packet's source IP, and
    its source port when the top Via asks for `rport`, else the Via port."""
    via = top_via(request)
    if param(via.params, "rport") is not None:
        return source
    return source[0], via.port or DEFAULT_PORT


def transaction_key(request: Request) -> tuple[str, str, str]:
    """Identifies a server transaction, so a retransmitted request is seen as one (§17.2.3)."""
    via = top_via(request)
    branch = via.branch or ""
    if not branch.startswith(BRANCH_MAGIC):  # pre-RFC 3261 peer: fall back to the dialog ids
        branch = f"{request.required('Call-ID')}|{request.required('CSeq')}"
    return branch, f"{via.host}:{via.port or DEFAULT_PORT}", request.method


def loop_key(request: Request) -> tuple[str, str, str] | None:
    """Call-ID, CSeq and From-tag of a request outside a dialog (no To-tag), else None.

    RFC 3261 §8.2.2.2: a request whose loop key matches an ongoing server transaction that
    it does not belong to (another branch) has looped or forked: it gets 482.
    """
    if parse_name_addr(request.required("To")).tag is not None:
        return None
    from_tag = parse_name_addr(request.required("From")).tag
    if not from_tag:
        return None
    return request.required("Call-ID"), request.required("CSeq"), from_tag


def response_branch(response: Response) -> str | None:
    """The branch a response answers (the top Via is ours)."""
    return top_via(response).branch


def response_is_for(response: Response, method: str) -> bool:
    """True when the response's CSeq names `method`."""
    return parse_cseq(response.required("CSeq"))[1] == method


@dataclass(frozen=True)
class PnpSubscribe:
    """What a phone tells about itself in its PnP SUBSCRIBE."""

    mac: str | None  # normalised; None: the SUBSCRIBE names none (the policy may know its IP)
    vendor: str
    model: str
    version: str
    profile_type: str


def mac_from_user(user: str | None) -> str | None:
    """The MAC in a (percent-decoded) PnP user part, else None. Real phones write
    `MAC:<hex>` (from `MAC%3a`/`MAC%3A`), `MAC<hex>`, `MAC=<hex>` or a bare MAC.

    >>> [mac_from_user(u) for u in ("MAC:00095200000e", "MAC00095200000e", "MAC=00095200000E")]
    ['00095200000E', '00095200000E', '00095200000E']
    >>> mac_from_user("alice"), mac_from_user("MAC"), mac_from_user(None)
    (None, None, None)
    """
    if not user:
        return None
    try:
        return norm_mac(re.sub(r"^mac[:=]?", "", user, flags=re.IGNORECASE))
    except InputError:
        return None


def model_from_pnp(text: str, known: Sequence[str], default: str) -> str:
    """The known model a PnP `model` parameter names (the longest match), else `default`.

    >>> model_from_pnp("COMfortel D-210", ("D200", "D210"), "D100"), model_from_pnp("", (), "D100")
    ('D210', 'D100')
    """
    squeezed = re.sub(r"[^A-Z0-9]", "", text.upper())
    return max((m for m in known if m in squeezed), key=len, default=default)


def read_pnp_subscribe(request: Request) -> PnpSubscribe:
    """The phone's data from a PnP SUBSCRIBE; InputError when it is not one. The MAC is
    taken from the Request-URI, else the To, else the From user part; None when none has
    one (some phones name no MAC at all)."""
    if request.method != "SUBSCRIBE":
        raise InputError(f"not a SUBSCRIBE: {request.method}")
    event = parse_event(request.required("Event"))
    if event.package != PNP_EVENT:
        raise InputError(f"SUBSCRIBE for event {event.package!r}, not {PNP_EVENT!r}")
    request.required("Call-ID")
    if parse_cseq(request.required("CSeq"))[1] != "SUBSCRIBE":
        raise InputError("CSeq method is not SUBSCRIBE")
    uris = (request.uri, *(parse_name_addr(request.required(h)).uri for h in ("To", "From")))
    mac = next((m for uri in uris if (m := mac_from_user(user_part(uri)))), None)
    fields = ("vendor", "model", "version", "profile-type")
    vendor, model, version, profile_type = (param(event.params, f) or "" for f in fields)
    return PnpSubscribe(mac, vendor, model, version, profile_type)


def notify_target(subscribe: Request, source: Address) -> tuple[str, Address]:
    """Request-URI and address for the NOTIFY: the phone's Contact (the dialog's remote
    target) when its host is the SUBSCRIBE's source IP, else the source address itself.
    A Contact elsewhere is not followed: we never send to an address the phone is not at."""
    contact = subscribe.header("Contact")
    if contact:
        uri = parse_name_addr(contact).uri
        target = parse_sip_uri(uri)
        if target.address[0] == source[0]:
            return uri, target.address
    host = f"[{source[0]}]" if ":" in source[0] else source[0]
    return f"sip:{host}:{source[1]}", source


def _url(url: str) -> str:
    """The URL, when it is printable ASCII without spaces. The error does not repeat it: our
    URLs may carry a device token, a credential that must not reach a log."""
    bad = re.search(r"[^!-~]", url)
    if bad or not url:
        where = f" (position {bad.start()})" if bad else " (empty)"
        raise InputError(f"provisioning URL must be printable ASCII without spaces{where}")
    return url


def _our_via(local: Address, branch: str) -> str:
    return build_via(Via("UDP", local[0], local[1], (("branch", branch), ("rport", None))))


def make_pnp_notify(
    subscribe: Request, *, url: str, to_tag: str, branch: str, local: Address, target_uri: str
) -> Request:
    """The in-dialog NOTIFY carrying the URL: same Call-ID, From/To swapped, our To-tag."""
    _url(url)
    ours = parse_name_addr(subscribe.required("To"))
    ours = NameAddr(ours.uri, "", (("tag", _token("tag", to_tag)),))
    headers = (
        ("Via", _our_via(local, branch)),
        ("Max-Forwards", MAX_FORWARDS),
        ("From", build_name_addr(ours)),
        ("To", subscribe.required("From")),
        ("Call-ID", subscribe.required("Call-ID")),
        ("CSeq", "1 NOTIFY"),
        ("Contact", f"<sip:{local[0]}:{local[1]}>"),
        ("Event", subscribe.required("Event")),
        ("Subscription-State", "terminated;reason=timeout"),
        ("User-Agent", USER_AGENT),
        ("Content-Type", URL_CONTENT_TYPE),
    )
    return Request("NOTIFY", target_uri, headers, url.encode("ascii"))


@dataclass(frozen=True)
class NotifySync:
    """A check-sync NOTIFY's body (`notify_sync.xsd`, DSERIES §4.2); both parts optional.
    With `url` the phone fetches that URL directly instead of its usual sources."""

    url: str | None = None
    data_available: bool | None = None


def encode_notify_sync(sync: NotifySync) -> bytes:
    """The `<notifySync>` document (utf-8, one line after the declaration).

    >>> print(encode_notify_sync(NotifySync("http://10.0.0.1/prov.py?mac=00095200000E", True))
    ...       .decode())
    <?xml version="1.0" encoding="utf-8"?>
    <notifySync><checkSync><url>http://10.0.0.1/prov.py?mac=00095200000E</url>\
<dataAvailable>true</dataAvailable></checkSync></notifySync>
    """
    from lxml import etree  # here: the PnP responder, in the serving process, needs no lxml

    root = etree.Element(NOTIFY_SYNC_ROOT)
    check = etree.SubElement(root, "checkSync")
    if sync.url is not None:
        etree.SubElement(check, "url").text = _url(sync.url)
    if sync.data_available is not None:
        etree.SubElement(check, "dataAvailable").text = str(sync.data_available).lower()
    return XML_DECLARATION + etree.tostring(root, encoding="utf-8")


def decode_notify_sync(body: bytes) -> NotifySync:
    """A `<notifySync>` body as a value; InputError when it is not one.

    >>> decode_notify_sync(encode_notify_sync(NotifySync("http://h/a.xml", False)))
    NotifySync(url='http://h/a.xml', data_available=False)
    """
    root = parse_xml(body)
    if root.tag != NOTIFY_SYNC_ROOT:
        raise InputError(f"check-sync body: root <{root.tag}> is not <{NOTIFY_SYNC_ROOT}>")
    check = root.find("checkSync")
    if check is None:
        return NotifySync()
    url, available = check.findtext("url"), check.findtext("dataAvailable")
    flag = {"true": True, "false": False}.get((available or "").strip())
    if available is not None and flag is None:
        raise InputError(f"check-sync body: dataAvailable {available!r} is not true or false")
    return NotifySync(_url(url.strip()) if url and url.strip() else None, flag)


def make_check_sync(
    *,
    target: Address,
    local: Address,
    event: str,
    call_id: str,
    from_tag: str,
    branch: str,
    url: str | None = None,
) -> Request:
    """An out-of-dialog NOTIFY asking the phone at `target` to re-provision; with `url`, its
    body is `<notifySync>` naming that URL (`dataAvailable` true), so the phone fetches it."""
    package = parse_event(event).package
    if not package.startswith("check-sync"):
        raise InputError(f"check-sync event must start with 'check-sync': {event!r}")
    host = f"[{target[0]}]" if ":" in target[0] else target[0]
    uri = f"sip:{host}:{target[1]}"
    headers = (
        ("Via", _our_via(local, branch)),
        ("Max-Forwards", MAX_FORWARDS),
        ("From", f"<sip:{USER_AGENT}@{local[0]}>;tag={_token('tag', from_tag)}"),
        ("To", f"<{uri}>"),
        ("Call-ID", _token("Call-ID", call_id)),
        ("CSeq", "1 NOTIFY"),
        ("Contact", f"<sip:{local[0]}:{local[1]}>"),
        ("Event", event),
        ("Subscription-State", "terminated"),
        ("User-Agent", USER_AGENT),
    )
    if url is None:
        return Request("NOTIFY", uri, headers)
    body = encode_notify_sync(NotifySync(url, True))
    return Request("NOTIFY", uri, (*headers, ("Content-Type", NOTIFY_SYNC_CONTENT_TYPE)), body)


def describe(message: Message) -> str:
    """One line for logs: `SUBSCRIBE sip:...` or `200 OK`."""
    if isinstance(message, Request):
        return f"{message.method} {message.uri}"
    return f"{message.status} {message.reason}".rstrip()
