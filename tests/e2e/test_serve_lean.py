"""`server.http = "socket"`, the lean appliance: one process (no HTTP router, no master) that
speaks HTTP itself; it serves as the default does, refuses TLS, and on SIGTERM writes the
fetch log and exits 0."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from phoneprov.state.db import State

from .test_serve import PHONEPROV, start

pytestmark = pytest.mark.e2e


def test_one_process_serves_and_stops_cleanly(tmp_path: Path) -> None:
    server = start(tmp_path, "open", server='http = "socket"\n')
    try:
        children = subprocess.run(
            ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert children == []  # one process
        status, _, body = server.get(f"{server.base}/prov.py?mac=00095200000E")
        assert status == 200 and b"<referencedSettings" in body, body
        assert server.get(f"{server.base}/prov.py?mac=000952000077")[0] == 403  # unknown MAC
        time.sleep(0.5)  # idle: a SIGTERM during a request skips uWSGI's exit hooks (exit 30)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(15) == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    assert b"fetch log written" in (server.root / "serve.log").read_bytes()
    with State(server.root / "state.db") as state:
        assert [f.status for f in state.fetches()] == [403, 200]


def test_tls_needs_the_router(tmp_path: Path) -> None:
    config = tmp_path / "phoneprov.toml"
    (tmp_path / "inventory.toml").write_text("")
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("")
    config.write_text(
        '[server]\nurl = "https://127.0.0.1:8443"\nlisten = "127.0.0.1:8443"\nhttp = "socket"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    refused = subprocess.run(
        [str(PHONEPROV), "serve", "-c", str(config),
         "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "server.http = 'socket': TLS needs uWSGI's HTTP router" in refused.stderr
