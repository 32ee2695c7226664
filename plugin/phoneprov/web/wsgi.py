"""The WSGI entry uWSGI loads (`phoneprov serve` points it here): one app per process.

Configuration comes from the environment `phoneprov serve` sets: $PHONEPROV_CONFIG, and
$PHONEPROV_SERVER_URL / $PHONEPROV_LOG_LEVEL / $PHONEPROV_FAST_PATH / $PHONEPROV_PNP when
given. With $PHONEPROV_PNP=1 the first worker also runs the SIP PnP responder, in a thread
of its own: HTTP and PnP share one Python process (DESIGN §5 memory budget).
At the worker's exit the responder is stopped first, then the fetch log is drained; in the
one-process mode (server.http = "socket") the process then exits 0.
"""

# ruff: noqa: E402 (the OpenSSL block below comes before every other import)
from __future__ import annotations

import sys

# No OpenSSL in the serving process: uWSGI's router terminates TLS, and nothing here needs
# Python's ssl. Without these, hashlib (imported by Jinja2 and our ETags) uses CPython's
# built-in hashes and asyncio (PnP) runs without TLS support: libcrypto is never initialised,
# ~3.5 MB less resident (bench_memory.py). A module set to None in sys.modules cannot be
# imported (ModuleNotFoundError), which both modules handle.
for _module in ("_hashlib", "_ssl", "ssl"):
    sys.modules.setdefault(_module, None)  # type: ignore[arg-type]

import atexit
import logging
import os
from collections.abc import Callable

from ..config import load_config
from .app import create_app, create_wsgi
from .endpoint import Provisioning
from .launcher import setup_logging

log = logging.getLogger("phoneprov.web")

setup_logging(os.environ.get("PHONEPROV_LOG_LEVEL", "INFO"))
_config = load_config(follow_live=True)  # a sync's switch: the next revision's files
_server = os.environ.get("PHONEPROV_SERVER_URL") or None
_service = Provisioning.from_config(_config, _server)
if os.environ.get("PHONEPROV_FAST_PATH", "1") != "0":
    application = create_wsgi(_service)  # Flask only for requests phones never send
else:  # Flask for every request: the benchmark's comparison
    application = create_app(service=_service, fast_path=False).wsgi_app

try:
    import uwsgi

    _first_worker = uwsgi.worker_id() <= 1
except ImportError:
    uwsgi = None
    _first_worker = True

_stops: list[Callable[[], None]] = []
if os.environ.get("PHONEPROV_PNP") == "1" and _first_worker:
    from ..sip.policy import pnp_thread

    _pnp = pnp_thread(_config, device_of=_service.catalog.device)  # one inventory copy
    _pnp.start()
    _stops.append(_pnp.stop)
    log.info("PnP responder runs in this process (pid %d)", os.getpid())
_stops.append(_service.close)


def _close() -> None:
    while _stops:
        _stops.pop(0)()
    if os.environ.get("PHONEPROV_ONE_PROCESS") == "1":  # no master to say 0 for us: uWSGI
        os._exit(0)  # would end this process with its "end" code, 30


atexit.register(_close)
if uwsgi is not None:  # uWSGI runs this hook at a worker's exit; atexit alone is not reliable
    uwsgi.atexit = _close
