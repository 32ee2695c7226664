"""The WSGI entry uWSGI loads (`phoneprov serve` points it here): one app per process.

Configuration comes from the environment `phoneprov serve` sets: $PHONEPROV_CONFIG, and
$PHONEPROV_SERVER_URL / $PHONEPROV_LOG_LEVEL / $PHONEPROV_FAST_PATH / $PHONEPROV_PNP when
given. With $PHONEPROV_PNP=1 the first worker also runs the SIP PnP responder, in a thread
of its own: HTTP and PnP share one Python process (DESIGN §5 memory budget).
At the worker's exit the responder is stopped first, then the fetch log is drained.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Callable

from ..config import load_config
from .app import create_app, create_wsgi
from .endpoint import Provisioning
from .launcher import setup_logging
from .routes import provisioning

log = logging.getLogger("phoneprov.web")

setup_logging(os.environ.get("PHONEPROV_LOG_LEVEL", "INFO"))
_config = load_config()
_server = os.environ.get("PHONEPROV_SERVER_URL") or None
if os.environ.get("PHONEPROV_FAST_PATH", "1") != "0":
    _service = Provisioning.from_config(_config, _server)
    application = create_wsgi(_service)
else:  # Flask for every request: the benchmark's comparison
    _flask = create_app(_config, server=_server, fast_path=False)
    _service = provisioning(_flask)
    application = _flask.wsgi_app

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


atexit.register(_close)
if uwsgi is not None:  # uWSGI runs this hook at a worker's exit; atexit alone is not reliable
    uwsgi.atexit = _close
