"""Configuration: the appliance file (`schema` → `load_config`) and the inventory files."""

from ..core.errors import ConfigError, ConfigErrors
from .inventory_files import load_inventory
from .load import CONFIG_ENV, DEFAULT_CONFIG, config_path, load_config
from .model import (
    Config,
    DhcpConfig,
    PhoneConfig,
    Retention,
    SecurityConfig,
    ServerConfig,
    SipConfig,
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
    "config_path",
    "load_config",
    "load_inventory",
]
