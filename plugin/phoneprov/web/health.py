"""The state database's outages, told once: a corrupt or unreadable database must give one
log line (and a line when it works again), not one per request or per second."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("phoneprov.web")

REPEAT_S = 600.0  # while it stays broken, say so again this often


class StateHealth:
    """`failed(what, error)` logs the first failure (then at most every REPEAT_S), `ok()`
    logs the recovery from a failure that was logged. Thread-safe."""

    def __init__(
        self, path: Path, clock: Callable[[], float] = time.monotonic, repeat: float = REPEAT_S
    ) -> None:
        self.path = path
        self.clock = clock
        self.repeat = repeat
        self.failures = 0  # since the last line
        self._logged_at: float | None = None
        self._open = False  # a failure was logged and no recovery yet
        self._lock = threading.Lock()

    def failed(self, what: str, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            now = self.clock()
            if self._logged_at is not None and now - self._logged_at < self.repeat:
                return
            self._logged_at, self._open = now, True
            count, self.failures = self.failures, 0
        more = f" ({count} failures since the last report)" if count > 1 else ""
        log.error("state database %s unusable: %s; %s%s", self.path, error, what, more)

    def ok(self) -> None:
        if not self._open:  # the common case: nothing to say, no lock taken
            return
        with self._lock:
            if not self._open:
                return
            self._open = False
            count, self.failures = self.failures, 0
        log.info("state database %s usable again (%d failures since the report)", self.path, count)
