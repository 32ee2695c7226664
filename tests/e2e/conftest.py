"""Fixtures for e2e tests: a namespace lab and real dnsmasq processes, all torn down.

Skips (does not fail) when not root or when dnsmasq / iproute2 are missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from phoneprov.lab import Host, Lab
from phoneprov.lab.dnsmasq import DEFAULT_RANGE, Dnsmasq

CONF_NAME = "test.conf"


def e2e_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "e2e tests need root (network namespaces)"
    for tool in ("dnsmasq", "ip"):
        if shutil.which(tool) is None:
            return f"e2e tests need {tool!r} on PATH"
    return None


@pytest.fixture
def e2e_ready() -> None:
    """Skip the test unless root with dnsmasq and iproute2 (for tests that build a Lab)."""
    reason = e2e_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    """A fresh lab (switch namespace + bridge); every namespace and veth gone afterwards."""
    with Lab() as the_lab:
        yield the_lab


DnsmasqFactory = Callable[..., Dnsmasq]


@pytest.fixture
def dnsmasq_factory(lab: Lab) -> Iterator[DnsmasqFactory]:
    """`dnsmasq_factory(host, extra_args=(), conf=None, files=None, dirs=(), ...)` → Dnsmasq.

    `conf` is written to `<workdir>/test.conf` and passed as `--conf-file`; `files` are
    written (0644, atomically) and `dirs` created (0755) before start; `{workdir}` in
    `extra_args` is replaced. At teardown each dnsmasq must still be alive with the PID it
    started with (it crashed otherwise, e.g. on a reload), unless `expect_alive=False`.
    """
    started: list[tuple[Dnsmasq, int, bool]] = []

    def start(
        host: Host,
        extra_args: Sequence[str] = (),
        *,
        conf: str | None = None,
        files: Mapping[str, str] | None = None,
        dirs: Sequence[str] = (),
        dhcp_range: str = DEFAULT_RANGE,
        expect_alive: bool = True,
    ) -> Dnsmasq:
        dm = Dnsmasq(host.netns, host.ifname, dhcp_range=dhcp_range)
        try:
            for name in dirs:
                (dm.workdir / name).mkdir(mode=0o755, parents=True, exist_ok=True)
            for name, text in (files or {}).items():
                dm.write_file(name, text)
            args = [arg.replace("{workdir}", str(dm.workdir)) for arg in extra_args]
            if conf is not None:
                args.append(f"--conf-file={dm.write_file(CONF_NAME, conf)}")
            dm.extra_args = args
            dm.start()
        except BaseException:
            dm.stop()
            raise
        started.append((dm, dm.pid, expect_alive))
        return dm

    yield start

    crashed = []
    for dm, pid, expect_alive in started:
        if expect_alive and not (dm.alive() and dm.pid == pid and dm.pidfile_pid() == pid):
            crashed.append(f"dnsmasq {pid} died:\n" + "\n".join(dm.lines[-15:]))
        dm.stop()
    assert not crashed, "\n".join(crashed)
