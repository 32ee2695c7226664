"""The PnP responder in a background thread with its own event loop, for a process whose
main thread belongs to someone else (the `phoneprov serve` worker: HTTP and PnP in one
Python process, DESIGN §5 memory budget). The responder is `sip.pnp.serve_pnp`, unchanged.

`start()` returns once the sockets are bound, or raises what binding raised; `stop()` sets
the responder's stop event from any thread and waits for it to close its sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable

from ..core.siptimers import Timers
from .pnp import SIP_PORT, UrlFor, serve_pnp

LOG = logging.getLogger("phoneprov.sip.pnp")
START_TIMEOUT_S = 10.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}


class PnpThread:
    def __init__(
        self,
        *,
        interface: str,
        local_ip: str,
        url_for: UrlFor,
        timers: Timers,
        port: int = SIP_PORT,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self.interface, self.local_ip, self.port = interface, local_ip, port
        self.url_for, self.timers, self.on_exit = url_for, timers, on_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sip-pnp", daemon=True)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        """Start answering; raises the error that kept the responder from starting."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"PnP responder not ready within {timeout} s")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop answering: pending NOTIFYs are abandoned, sockets closed. Idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(stop.set)
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self._error is None

    def _run(self) -> None:
        # stop signals are the host process's business: its own threads take them
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            asyncio.run(self._main())
        except Exception as e:  # handed to start(), or logged when it came later
            if self._ready.is_set():
                LOG.error("PnP responder failed: %s: %s", type(e).__name__, e)
            else:
                self._error = e
        finally:
            self._ready.set()
            if self.on_exit is not None:
                self.on_exit()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await serve_pnp(
            interface=self.interface,
            local_ip=self.local_ip,
            url_for=self.url_for,
            timers=self.timers,
            stop=self._stop,
            port=self.port,
            ready=self._ready.set,
        )
