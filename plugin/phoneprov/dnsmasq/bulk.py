"""Many new files at once (a first apply, a large import): written in place, without temp
files and renames (there is no old file to keep), the opts files in one thread and the host
files in another, since creating files is the cost and each directory has its own lock.

A host file is written only once its device's opts file is (chunk by chunk, through a
queue), so a host line never names a tag whose options dnsmasq has not read. Nothing is
flushed here: apply flushes the filesystem once (`syncfs`) before it returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping

from .fragdir import Dir

CHUNK = 256  # opts files written before their host files may follow


def create_new(
    opts: Dir, hosts: Dir, opts_new: Mapping[str, str], host_new: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Create the files of `opts_new` and `host_new` (a host file's device has its opts
    file in `opts_new` or unchanged). Returns the writes left for the atomic way: names
    that exist by now, and host files whose opts file went that way."""
    names = list(opts_new)
    left_opts: dict[str, str] = {}
    left_hosts: dict[str, str] = {}
    written: queue.SimpleQueue[int | BaseException | None] = queue.SimpleQueue()
    stop = threading.Event()

    def write_opts() -> None:
        try:
            for start in range(0, len(names), CHUNK):
                if stop.is_set():
                    break
                for name in names[start : start + CHUNK]:
                    if not opts.create(name, opts_new[name]):
                        left_opts[name] = opts_new[name]
                written.put(start)
        except BaseException as e:  # handed to the main thread, raised there
            written.put(e)
        else:
            written.put(None)

    def write_host(name: str) -> None:
        if name in left_opts or not hosts.create(name, host_new[name]):
            left_hosts[name] = host_new[name]

    thread = threading.Thread(target=write_opts, name="phoneprov-apply-opts")
    thread.start()
    try:
        for name in host_new:
            if name not in opts_new:  # its opts file is unchanged
                write_host(name)
        while (item := written.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            for name in names[item : item + CHUNK]:
                if name in host_new:
                    write_host(name)
    finally:
        stop.set()
        thread.join()
    return left_opts, left_hosts
