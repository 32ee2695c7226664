"""Configuration: the appliance file (`schema` → `load_config`) and the inventory files."""

from ..core.errors import ConfigError, ConfigErrors
from .inventory_files import load_inventory
from .load import (
    CONFIG_ENV,
    DEFAULT_CONFIG,
    config_path,
    load_config,
    load_site_config,
    load_sync_settings,
    site_config_path,
)
from .model import (
    Config,
    DhcpConfig,
    PhoneConfig,
    Retention,
    SecurityConfig,
    ServerConfig,
    SipConfig,
    SyncConfig,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "DhcpConfig",
    "PhoneConfig",
    "Retention",
    "SecurityConfig",
    "ServerConfig",
    "SipConfig",
    "SyncConfig",
    "config_path",
    "load_config",
    "load_inventory",
    "load_site_config",
    "load_sync_settings",
    "site_config_path",
]
