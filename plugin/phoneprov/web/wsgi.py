"""The WSGI entry uWSGI loads (`phoneprov serve` points it here): one app per process.

Configuration comes from the environment `phoneprov serve` sets: $PHONEPROV_CONFIG, and
$PHONEPROV_SERVER_URL / $PHONEPROV_LOG_LEVEL / $PHONEPROV_FAST_PATH when given.
"""

from __future__ import annotations

import atexit
import os

from ..config import load_config
from .app import create_app, provisioning
from .serve import setup_logging

setup_logging(os.environ.get("PHONEPROV_LOG_LEVEL", "INFO"))
_config = load_config()
application = create_app(
    _config,
    server=os.environ.get("PHONEPROV_SERVER_URL") or None,
    fast_path=os.environ.get("PHONEPROV_FAST_PATH", "1") != "0",
)
_close = provisioning(application).close
atexit.register(_close)
try:  # uWSGI runs this hook at a worker's exit; Python's atexit alone is not reliable there
    import uwsgi  # type: ignore[import-not-found]

    uwsgi.atexit = _close
except ImportError:
    pass
