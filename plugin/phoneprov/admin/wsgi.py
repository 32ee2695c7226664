"""The WSGI entry uWSGI loads for `phoneprov admin`: the admin app for $PHONEPROV_CONFIG
($PHONEPROV_ADMIN_TLS=1: served over HTTPS, the session cookie gets Secure)."""

from __future__ import annotations

import os

from ..web.launcher import setup_logging
from .app import create_admin_app

setup_logging(os.environ.get("PHONEPROV_LOG_LEVEL", "INFO"))
application = create_admin_app(tls=os.environ.get("PHONEPROV_ADMIN_TLS") == "1")
