"""A TCP port of this machine that leads into a lab namespace: how a browser on the host
reaches the admin service inside the appliance's namespace (the demo, the browser test).

`PortForward(ns, ("127.0.0.1", 8090))` listens on the loopback of the namespace the caller
runs in; each connection is relayed, byte for byte in both directions, to the target as seen
from inside `ns` (the upstream socket is made there: `phone.netns.socket_in`). Threads, no
asyncio: a handful of browser connections at most.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from ..phone.netns import socket_in

CHUNK = 65536
CONNECT_TIMEOUT = 5.0


class PortForward:
    """`with PortForward(ns, target) as fwd: fwd.port` — listening until closed."""

    def __init__(
        self, ns: str, target: tuple[str, int], listen: tuple[str, int] = ("127.0.0.1", 0)
    ) -> None:
        self.ns, self.target = ns, target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind(listen)
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(16)
        self.host, self.port = self._listener.getsockname()[:2]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, name="forward", daemon=True)
        self._acceptor.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> PortForward:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        with self._lock:
            self._closed = True
            sockets = [self._listener, *self._open]
            self._open.clear()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self._acceptor.join(CONNECT_TIMEOUT)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket_in(self.ns, socket.AF_INET, socket.SOCK_STREAM)
        if not self._track(client, upstream):
            return
        try:
            upstream.settimeout(CONNECT_TIMEOUT)
            upstream.connect(self.target)
            upstream.settimeout(None)
        except OSError:
            self._untrack(client, upstream)
            return
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        self._untrack(client, upstream)

    def _track(self, *sockets: socket.socket) -> bool:
        with self._lock:
            if not self._closed:
                self._open.update(sockets)
                return True
        for s in sockets:
            s.close()
        return False

    def _untrack(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(sockets)
        for s in sockets:
            s.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy until `src` ends, then end `dst`'s writing side (the other direction goes on)."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
