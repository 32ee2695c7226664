"""The loaded configuration: plain frozen values. Defaults and checks are in `schema`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.layout import Layout


@dataclass(frozen=True)
class ServerConfig:
    url: str  # base URL in option 66, or "auto": http://<interface address>:<port>
    interface: str  # the LAN interface dnsmasq serves
    listen: str
    layout: Layout
    user: str = ""  # `serve` drops to this user once its port is bound; "": stays
    http: str = "router"  # "router": uWSGI's HTTP router + master + worker; "socket": one process
    cache_mb: int = 16  # rendered files kept in memory by serve
    validate: bool = False  # serve checks what it renders against the phone's schema


@dataclass(frozen=True)
class DhcpConfig:
    mode: str
    ntp: tuple[str, ...]  # "auto" = the server's address; () = do not hand out
    force: bool  # 66/67 sent even to phones that do not ask
    vendor_ouis: tuple[str, ...]
    vendor_classes: tuple[str, ...]
    auto_enrol: bool
    default_profile: str
    default_type: str
    hostsdir: Path
    optsdir: Path
    dnsmasq_pidfile: Path  # to expire tombstones
    leasefile: Path | None = None  # dnsmasq's lease file (written before the hook runs)


@dataclass(frozen=True)
class SecurityConfig:
    mode: str
    trusted_proxies: int
    refused_per_minute: int  # refused/unknown requests per source IP before 429
    secret_file: Path


@dataclass(frozen=True)
class SipConfig:
    interface: str  # empty: the server interface
    pnp: bool  # `phoneprov serve` runs the PnP responder in its worker
    pnp_policy: str
    t1: float
    timer_f: float
    check_sync_event: str
    check_sync_events: dict[str, str]  # model -> event
    check_sync_url: bool  # the NOTIFY body names the URL to fetch (notifySync)
    pnp_source_pending: int = 4  # PnP SUBSCRIBEs of one source IP answered at once
    pnp_source_per_minute: int = 30  # new PnP SUBSCRIBEs of one source IP a minute
    enrol_per_minute: int = 10  # PnP (vendor policy) enrolments a minute
    enrol_max: int = 200  # PnP enrols no more phones once this many are enrolled

    def event_for(self, model: str) -> str:
        return self.check_sync_events.get(model, self.check_sync_event)


@dataclass(frozen=True)
class PhoneConfig:
    settings_version: str  # the `version` attribute of every settings section
    settings_versions: dict[str, str]  # model -> version, where a model's firmware differs

    def version_for(self, model: str) -> str:
        return self.settings_versions.get(model, self.settings_version)


@dataclass(frozen=True)
class Retention:
    days: int  # fetches and discovered phones older than this are deleted
    rows: int  # and each table keeps at most this many rows

    def cutoff(self, now: float) -> float:
        return now - self.days * 86400.0


@dataclass(frozen=True)
class AdminConfig:
    listen: str = "127.0.0.1:8090"  # where `phoneprov admin` listens (host:port)
    idle_exit: float = 600.0  # socket-activated: exit after this many idle seconds (0: never)
    users_file: Path = Path("admin-users")  # admin users and API tokens, beside the config


@dataclass(frozen=True)
class SyncConfig:
    """`[sync]` of the appliance's own file: where the site configuration comes from."""

    repo: str = ""  # URL or path of the Git repository; "": sync is off
    branch: str = "main"
    path: str = ""  # the site's directory inside the repository; "": its root
    allowed_signers: Path | None = None  # set: every synced commit must be signed by a key here
    dir: Path = Path("/var/lib/phoneprov/sync")  # repo.git, revs/<sha>, live, status.json
    local: Path | None = None  # the appliance's own file that holds this [sync]

    @property
    def enabled(self) -> bool:
        return bool(self.repo)

    @property
    def live(self) -> Path:
        """The symlink to the live revision; paths through it follow a switch."""
        return self.dir / "live"

    @property
    def site_config(self) -> Path:
        """The effective config: the site's phoneprov.toml in the live revision (unresolved)."""
        return self.site_config_in(self.live)

    def site_config_in(self, tree: Path) -> Path:
        """The site's phoneprov.toml in a revision's tree (`live` or `revs/<sha>`)."""
        return tree / self.path / "phoneprov.toml" if self.path else tree / "phoneprov.toml"

    def tree_of(self, site_config: Path) -> Path:
        """The revision's tree a site's phoneprov.toml sits in: its directory less `path`."""
        return site_config.parents[len(self.path.split("/")) if self.path else 0]


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    dhcp: DhcpConfig
    security: SecurityConfig
    sip: SipConfig
    phone: PhoneConfig
    retention: Retention
    inventory_path: Path
    templates: Path
    state: Path
    models: tuple[str, ...]
    admin: AdminConfig = AdminConfig()
    sync: SyncConfig = SyncConfig()  # off unless the appliance's file sets [sync] repo

    @property
    def source(self) -> Path:
        """The file to load this config from again (what `serve` and `admin` hand their
        workers): the appliance's own file, so that with [sync] a worker too follows `live`."""
        return self.sync.local or self.path

    @property
    def sip_interface(self) -> str:
        return self.sip.interface or self.server.interface
