"""`phoneprov simulate`: a D-series phone's provisioning, step by step, for real.

Steps as the vendor document orders them: network (DHCP, or options given by hand) → valid
time (an NTP server must be offered) → the URL (66 + 67 joined, 43 as fallback, markers
replaced; or SIP PnP) → fetch, following reference files → apply in order with the phone's
merge (`core.phonemerge.apply_settings`, as `phoneprov settings apply`): elements the schema
does not know are stripped, and a strip fails the `apply` step (the phone would drop them
silently). The report keeps the resulting configuration and its SIP identities, which
`registered_phone` registers with a real SIP user agent (the `register` step).
Network I/O happens in the phone's namespace (`phone.netns.call_in_netns`) when one is given.
"""

from __future__ import annotations

import ipaddress
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.chain import Outcome, provision
from ..core.dhcp import PHONE_REQUESTS, Option43, decode_option43, phone_url
from ..core.errors import InputError, PhoneprovError
from ..core.markers import DeviceInfo, replace_markers
from ..core.phoneschema import PhoneSchema
from ..core.phonexml import Identity, read_identities

if TYPE_CHECKING:  # baresip's runner needs pyroute2 (the lab extra): imported when used
    from .register import RegisterResult, SipIdentity

MAX_BODY = 2 * 1024 * 1024
HTTP_TIMEOUT = 5.0
USER_AGENT = "phoneprov-simulator (COMfortel D-series provisioning)"
SHOWN_STRIPPED = 6  # the apply step names this many stripped paths, then counts the rest
DROPPED = "the phone drops elements its schema does not know"
UA_PORT = 5062  # the simulated phone's SIP user agent: 5060 stays free for check-sync
REGISTER_TIMEOUT = 10.0
DEFAULT_REGISTER_INTERVAL = 30  # minutes, the phone's default (DSERIES §3.2)


@dataclass(frozen=True)
class Options:
    """The provisioning-relevant DHCP options as text (NULs stripped), 43 as raw bytes."""

    option66: str | None = None
    option67: str | None = None
    option43: bytes | None = None
    ntp: tuple[str, ...] = ()

    @classmethod
    def from_lease(cls, options: dict[int, bytes] | Any) -> Options:
        def text(code: int) -> str | None:
            raw = options.get(code)
            return raw.rstrip(b"\x00").decode("utf-8", "replace") if raw else None

        ntp = options.get(42) or b""
        servers = tuple(
            str(ipaddress.IPv4Address(ntp[i : i + 4])) for i in range(0, len(ntp) - 3, 4)
        )
        return cls(text(66), text(67), options.get(43), servers)


@dataclass
class Report:
    device: DeviceInfo
    steps: list[dict[str, Any]] = field(default_factory=list)
    path: str = ""  # how the URL was found: "dhcp 66+67", "dhcp 43", "pnp", "manual"
    url: str = ""
    outcome: Outcome | None = None
    failed_step: str = ""
    configuration: bytes = b""  # the phone's settings after the last apply
    identities: tuple[Identity, ...] = ()  # its SIP accounts, for a later registration
    schema: PhoneSchema | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.failed_step

    def step(self, name: str, ok: bool, detail: str, **data: Any) -> bool:
        self.steps.append({"step": name, "ok": ok, "detail": detail, **data})
        if not ok and not self.failed_step:
            self.failed_step = name
        return ok

    def step_lines(self) -> list[str]:
        """One readable line per step: `  ok    fetch      200 ...` / `  FAIL  time ...`."""
        return [
            f"  {'ok  ' if s['ok'] else 'FAIL'}  {s['step']:<10} {s['detail']}" for s in self.steps
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed_step": self.failed_step or None,
            "device": asdict(self.device),
            "path": self.path,
            "url": self.url,
            "steps": self.steps,
            "files": [asdict(s) for s in self.outcome.steps] if self.outcome else [],
            "configuration": self.configuration.decode("utf-8"),
            "stripped": list(self.outcome.stripped) if self.outcome else [],
            "warnings": list(self.outcome.warnings) if self.outcome else [],
            "identities": [
                {k: v for k, v in asdict(i).items() if k != "password"} for i in self.identities
            ],
            "settings": self.outcome.settings if self.outcome else {},
        }


def http_get(url: str, timeout: float = HTTP_TIMEOUT) -> tuple[int, bytes]:
    """GET as a phone does it: no proxy; (status, body), status 0 when nothing answered."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read(MAX_BODY)
    except (urllib.error.URLError, OSError, ValueError):
        return 0, b""


def simulate(
    device: DeviceInfo,
    *,
    options: Options | None = None,
    netns: str | None = None,
    iface: str = "eth0",
    pnp: Callable[[], str | None] | None = None,
    allow_no_time: bool = False,
    vendor_class: str | None = None,
    dhcp_timeout: float = 5.0,
    requested: tuple[int, ...] = PHONE_REQUESTS,
    schema: PhoneSchema | None = None,
) -> Report:
    """Run the phone's algorithm; `options` given by hand skip DHCP; `pnp` finds the URL by
    SIP PnP (a callable returning the URL from the NOTIFY, or None); `requested` is the
    DHCP parameter request list (a phone that leaves out 66/67 gets only 43 from dnsmasq);
    `schema`: the phone's settings schema (default: the shipped one)."""
    report = Report(device, schema=schema)
    if options is None:
        options = _dhcp(report, device, netns, iface, vendor_class, dhcp_timeout, requested)
        if options is None:
            return report
        source = "dhcp"
    else:
        report.step("network", True, "options given by hand (no DHCP)", **_opts(options))
        source = "manual"
    if options.ntp:
        report.step("time", True, f"NTP server(s) offered: {', '.join(options.ntp)}")
    elif not report.step(
        "time",
        allow_no_time,
        "no NTP server offered (option 42): the phone "
        "has no valid time and does not provision"
        + (" — overridden by --allow-no-time" if allow_no_time else ""),
    ):
        return report
    if not _find_url(report, device, options, source, pnp):
        return report
    _fetch_and_apply(report, netns)
    return report


def reprovision(
    report: Report, netns: str | None, *, trigger: str, detail: str, url: str | None = None
) -> Report:
    """Provision again, as a trigger (check-sync) makes the phone do: no new DHCP or PnP;
    from `url` when the trigger named one (path "check-sync"), else from the URL `report`
    found. The files are applied onto the settings `report` ended with. A new report whose
    first step is the trigger."""
    again = Report(report.device, path=report.path, url=report.url, schema=report.schema)
    if url:
        again.path, again.url = "check-sync", replace_markers(url, report.device)
    again.step(trigger, True, detail)
    _fetch_and_apply(again, netns, base=report.configuration or None)
    return again


def resync_on_check_sync(
    report: Report,
    *,
    netns: str | None,
    iface: str = "eth0",
    timeout: float,
    listening: Callable[[tuple[str, int]], None] | None = None,
) -> Report:
    """After a provisioning: listen for a check-sync NOTIFY on UDP 5060 (answered 200) for
    up to `timeout` s, then `reprovision`. `listening(address)` is called once bound."""
    from .check_sync import CheckSyncListener

    again = Report(report.device, path=report.path, url=report.url)
    try:
        with CheckSyncListener(netns=netns, iface=iface) as listener:
            if listening is not None:
                listening(listener.address)
            got = listener.wait(timeout)
    except (PhoneprovError, OSError) as e:
        again.step("check-sync", False, f"cannot listen for check-sync: {e}")
        return again
    if got is None:
        again.step("check-sync", False, f"no check-sync NOTIFY within {timeout:g} s")
        return again
    detail = f"NOTIFY Event: {got.header} from {got.source[0]}:{got.source[1]}, answered 200"
    if got.url:
        was = "the URL found before" if got.url == report.url else f"not {report.url}"
        detail += f"; its body names {got.url}: fetching that ({was})"
    else:
        detail += f"; no URL in it: fetching {report.url} again"
    return reprovision(report, netns, trigger="check-sync", detail=detail, url=got.url)


def sip_identities(identities: Sequence[Identity]) -> list[SipIdentity]:
    """The identities a phone registers: not switched off (`active`, `sendRegister`), with
    a user name and a registrar; port and interval default as the phone's do (§3.2)."""
    from .register import SIP_PORT, SipIdentity

    return [
        SipIdentity(
            index=i.index,
            username=i.username,
            password=i.password,
            registrar=i.registrar,
            port=i.registrar_port or SIP_PORT,
            domain=i.domain,
            display_name=i.displayname,
            register_interval=i.register_interval or DEFAULT_REGISTER_INTERVAL,
        )
        for i in identities
        if i.active is not False and i.send_register is not False and i.username and i.registrar
    ]


@contextmanager
def registered_phone(
    report: Report, netns: str | None, *, iface: str = "eth0", timeout: float = REGISTER_TIMEOUT
) -> Iterator[list[RegisterResult]]:
    """The `register` step: each identity of the resulting configuration registers with a
    real SIP user agent (baresip) from the phone's address, one step per identity; they stay
    registered while the block runs and unregister at its end."""
    from .register import registered

    wanted = sip_identities(report.identities)
    if not wanted:
        report.step("register", False, "no identity to register (active, user name, registrar)")
        yield []
        return
    with ExitStack() as stack:
        try:
            results = stack.enter_context(
                registered(netns, wanted, timeout, iface=iface, local_port=UA_PORT)
            )
        except (PhoneprovError, OSError) as e:
            report.step("register", False, f"the SIP user agent did not run: {e}")
            results = []
        for r in results:
            report.step("register", r.ok, f"identity {r.index} {r.aor}: {r.status} - {r.detail}")
        yield results


def _fetch_and_apply(report: Report, netns: str | None, base: bytes | None = None) -> None:
    from ..settings_schema import shipped_schema

    fetch = http_get if netns is None else _in_netns(netns)
    if report.schema is None:
        report.schema = shipped_schema()
    outcome = report.outcome = provision(report.url, fetch, report.device, report.schema, base=base)
    for s in outcome.steps:
        report.step(
            "fetch",
            s.kind != "failed",
            f"{s.status} {s.size:>6} B {s.kind:<9} {s.url}" + (f" ({s.note})" if s.note else ""),
        )
    if not outcome.ok:
        report.step("apply", False, outcome.error)
        return
    report.configuration = outcome.configuration
    try:
        report.identities = read_identities(outcome.configuration)
    except InputError as e:
        report.step("apply", False, f"the resulting configuration: {e}")
        return
    if outcome.stripped:
        report.step("apply", False, f"stripped: {_stripped(outcome)} ({DROPPED})")
        return
    report.step(
        "apply",
        True,
        f"{len(outcome.files)} settings file(s) applied in order, "
        f"{len(outcome.settings)} settings, {len(report.identities)} identities",
    )


def _stripped(outcome: Outcome) -> str:
    """`/x/y (file.xml), ...` for the first SHOWN_STRIPPED paths, then how many more."""
    named = [f"{x} ({s.url.rsplit('/', 1)[-1]})" for s in outcome.files for x in s.stripped]
    more = len(named) - SHOWN_STRIPPED
    return ", ".join(named[:SHOWN_STRIPPED]) + (f" and {more} more" if more > 0 else "")


def _dhcp(
    report: Report,
    device: DeviceInfo,
    netns: str | None,
    iface: str,
    vendor_class: str | None,
    timeout: float,
    requested: tuple[int, ...],
) -> Options | None:
    from .dhcp_client import dhcp_exchange  # pyroute2: only when a real exchange is wanted

    if not device.mac:
        report.step("network", False, "a real DHCP exchange needs --mac")
        return None
    try:
        lease = dhcp_exchange(
            netns,
            iface,
            device.mac,
            timeout=timeout,
            assign=True,
            vendor_class=vendor_class,
            requested=requested,
        )
    except PhoneprovError as e:
        report.step("network", False, str(e))
        return None
    options = Options.from_lease(lease.options)
    report.step(
        "network",
        True,
        f"DHCP lease {lease.ip} from {lease.server_id} on {iface} in {lease.elapsed * 1000:.0f} ms",
        ip=lease.ip,
        **_opts(options),
    )
    return options


def _find_url(
    report: Report,
    device: DeviceInfo,
    options: Options,
    source: str,
    pnp: Callable[[], str | None] | None,
) -> bool:
    if pnp is not None:
        url = pnp()
        report.path, report.url = "pnp", replace_markers(url, device) if url else ""
        return report.step(
            "url",
            bool(url),
            f"SIP PnP NOTIFY gave {url}"
            if url
            else "no NOTIFY with a URL answered the multicast SUBSCRIBE",
        )
    try:
        opt43 = decode_option43(options.option43) if options.option43 else None
        report.url = phone_url(options.option66, options.option67, opt43, device)
    except InputError as e:
        return report.step("url", False, f"no usable URL from DHCP options: {e}")
    report.path = f"{source} {_used_options(options, opt43)}"
    return report.step("url", True, f"{report.url} (from {report.path})")


def _used_options(options: Options, opt43: Option43 | None) -> str:
    """Which options the URL came from: plain 66/67 win, 43 fills what they lack."""
    used = [
        "66" if options.option66 else "43" if opt43 and opt43.option66 else "",
        "67" if options.option67 else "43" if opt43 and opt43.option67 else "",
    ]
    names = [u for u in dict.fromkeys(used) if u]
    return "+".join(names)


def _in_netns(netns: str) -> Callable[[str], tuple[int, bytes]]:
    from .netns import call_in_netns

    return lambda url: call_in_netns(netns, http_get, url)


def _opts(options: Options) -> dict[str, Any]:
    return {
        "option66": options.option66,
        "option67": options.option67,
        "option43": options.option43.hex(":") if options.option43 else None,
        "ntp": list(options.ntp),
    }
