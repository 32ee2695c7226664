"""Run code inside a network namespace: the phone simulator's I/O and the lab's set-up both
use it (the lab builds on the phone side, never the other way round)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pyroute2 import netns

T = TypeVar("T")


def call_in_netns(ns: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` in a fresh thread that has joined network namespace `ns`.

    setns(CLONE_NEWNET) changes only the calling thread, so sockets `fn` opens (netlink,
    raw, UDP …) belong to `ns` and stay there when handed back. `ns=None`: current namespace.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def body() -> None:
        try:
            if ns is not None:
                netns.setns(ns, flags=0)
            result.append(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller's thread below
            error.append(exc)

    thread = threading.Thread(target=body, name=f"netns:{ns}")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def socket_in(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
) -> socket.socket:
    """A socket that lives in namespace `ns` (usable from any thread afterwards)."""
    return call_in_netns(ns, socket.socket, family, kind)
