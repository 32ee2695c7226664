"""Issue 11, items 1-4, against a real `phoneprov serve` (uWSGI): refusals alike in bytes and
time, the README's 405/413/5 s/503 on the wire, serve as an unprivileged user, and a phone
provisioned within 2 s while four LAN hosts flood it (real dnsmasq, namespaces, no hook)."""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneprov.core.layout import Layout
from phoneprov.core.reference import parse_reference, resolve_reference
from phoneprov.lab import Lab
from phoneprov.lab.dnsmasq import Dnsmasq
from phoneprov.phone.dhcp_client import dhcp_exchange
from phoneprov.phone.netns import call_in_netns
from phoneprov.state.db import Lease, State

from .test_serve import PHONEPROV, Server, provision_like_a_phone, start

pytestmark = pytest.mark.e2e

D200, UNKNOWN = "00095200000E", "00095200FFFF"
SAMPLES = 50
IDLE_S = 5.0  # the README: stalled clients are dropped after 5 s


def raw_get(port: int, target: str, host: str = "127.0.0.1", timeout: float = 5.0) -> bytes:
    """One request on a fresh connection; the response exactly as it came (close-delimited)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(f"GET {target} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def stop(server: Server) -> int:
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        return server.proc.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers a test started, stopped (by PID) at its end."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            stop(server)


# item 1 -------------------------------------------------------------------------------------


def test_known_and_unknown_macs_are_refused_alike_on_the_wire(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = start(tmp_path, "lease", security="refused_per_minute = 0\n")
    servers.append(server)
    with State(tmp_path / "state.db") as state:  # the D200 is leased, to someone else
        state.record_lease(Lease(D200, "10.0.0.9"), time.time())
    answers: dict[str, set[bytes]] = {D200: set(), UNKNOWN: set()}
    times: dict[str, list[float]] = {D200: [], UNKNOWN: []}
    for _ in range(SAMPLES):
        for mac in (D200, UNKNOWN):
            started = time.perf_counter()
            answers[mac].add(raw_get(server.port, f"/prov.py?mac={mac}"))
            times[mac].append(time.perf_counter() - started)
    assert answers[D200] == answers[UNKNOWN] and len(answers[D200]) == 1
    assert next(iter(answers[D200])).startswith(b"HTTP/1.0 403 Forbidden\r\n")
    difference = abs(statistics.median(times[D200]) - statistics.median(times[UNKNOWN]))
    assert difference < 0.005, f"median {difference * 1000:.1f} ms apart"


# item 3 -------------------------------------------------------------------------------------


def test_methods_and_bodies_on_the_wire(tmp_path: Path, servers: list[Server]) -> None:
    server = start(tmp_path, "open")
    servers.append(server)
    url = f"/prov/D200/{D200}/device.xml"

    def ask(method: str, body: bytes | None = None, **headers: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request(method, url, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
        finally:
            conn.close()
        return response

    options = ask("OPTIONS")
    assert (options.status, options.getheader("Allow")) == (405, "GET, HEAD")
    for method in ("POST", "PUT", "DELETE", "TRACE"):
        assert ask(method, b"x").status == 405, method
    assert ask("GET", b"x").status == 413
    assert ask("GET", None, **{"Transfer-Encoding": "chunked"}).status == 413
    assert ask("HEAD", b"xyz").status == 413
    assert ask("GET").status == 200


def closed_after(conn: socket.socket, limit: float) -> float:
    """Seconds until the server closes `conn` (it sends nothing more); `limit` if never."""
    started = time.monotonic()
    conn.settimeout(0.1)
    while time.monotonic() - started < limit:
        try:
            if conn.recv(65536) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    return time.monotonic() - started


def test_silent_connections_are_dropped_after_5_s(tmp_path: Path, servers: list[Server]) -> None:
    server = start(tmp_path, "open")
    servers.append(server)
    silent = socket.create_connection(("127.0.0.1", server.port))  # connects, says nothing
    partial = socket.create_connection(("127.0.0.1", server.port))
    partial.sendall(b"GET /prov.py?mac=00095200000E HTTP/1.1\r\nHost: x\r\n")  # never ends
    idle = socket.create_connection(("127.0.0.1", server.port))  # keep-alive, then idle
    idle.sendall(b"GET /prov.py?mac=00095200000E HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.settimeout(5)
    assert idle.recv(65536).startswith(b"HTTP/1.1 200 OK")
    took: dict[str, float] = {}
    threads = [
        threading.Thread(target=lambda n=n, c=c: took.update({n: closed_after(c, 3 * IDLE_S)}))
        for n, c in (("silent", silent), ("partial", partial), ("idle", idle))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for conn in (silent, partial, idle):
            conn.close()
    assert all(IDLE_S - 1.5 < t < IDLE_S + 1.5 for t in took.values()), took


def test_a_corrupt_state_database_is_a_fast_503_and_one_log_line(
    tmp_path: Path, servers: list[Server]
) -> None:
    (tmp_path / "state.db").write_bytes(b"this is not an SQLite database\n" * 200)
    server = start(tmp_path, "lease")
    servers.append(server)
    started = time.monotonic()
    for _ in range(20):
        status, headers, body = server.get(f"{server.base}/prov.py?mac={D200}")
        assert (status, body) == (503, b"service unavailable\n")
        assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert time.monotonic() - started < 2.0
    assert stop(server) == 0
    lines = (tmp_path / "serve.log").read_text().splitlines()
    errors = [line for line in lines if " ERROR " in line]
    assert len(errors) == 1 and "state database" in errors[0], errors


# item 4 -------------------------------------------------------------------------------------


def ids_of(pid: int) -> dict[str, list[str]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    wanted = ("Uid:", "Gid:", "Groups:", "CapPrm:", "CapEff:")
    return {line.split(":")[0]: line.split()[1:] for line in status if line.startswith(wanted)}


def process_tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in process_tree(int(child)))]


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="pphttp-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        keep = root / ".python"  # see `reachable`: empty out here, or rmdir refuses
        if keep.exists():
            keep.rmdir()
        shutil.rmtree(root, ignore_errors=True)


def reachable(public_dir: Path) -> list[str]:
    """A command prefix that lets an unprivileged user reach this Python: when it lives
    under a private directory (a venv on /root/.pyenv, say), serve runs in a mount namespace
    of its own where that directory is an empty 0755 tmpfs with the way to Python bound in
    again. Nothing outside that namespace changes; it ends with the process."""
    base = Path(sys.base_prefix).resolve()
    private = next((p for p in reversed(base.parents) if not p.stat().st_mode & 0o001), None)
    if private is None:
        return []
    inner = private / base.relative_to(private).parts[0]
    keep = public_dir / ".python"
    keep.mkdir()
    script = (
        f"mount --bind {inner} {keep} && mount -t tmpfs -o mode=0755 tmpfs {private} && "
        f'mkdir {inner} && mount --bind {keep} {inner} && exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]


def test_serve_runs_as_an_unprivileged_user(public_dir: Path, servers: list[Server]) -> None:
    nobody = pwd.getpwnam("nobody")
    for name in ("hosts", "opts"):  # dnsmasq's directories, as the install makes them
        (public_dir / "dnsmasq" / name).mkdir(parents=True, mode=0o755)
    (public_dir / "state").mkdir(mode=0o750)
    os.chown(public_dir / "state", nobody.pw_uid, nobody.pw_gid)
    with State(public_dir / "state" / "state.db") as state:  # the hook came first, as root
        state.record_lease(Lease(D200, "127.0.0.1"), time.time())
    server = start(
        public_dir,
        "lease",
        server='user = "nobody"\n',
        state="state/state.db",
        prefix=reachable(public_dir),
    )
    servers.append(server)
    assert len(provision_like_a_phone(server, D200, "D200", "query")) == 4
    for pid in process_tree(server.proc.pid):  # master, router, worker: nobody, no caps
        ids = ids_of(pid)
        assert set(ids["Uid"]) == {str(nobody.pw_uid)}, (pid, ids)
        assert set(ids["Gid"]) == {str(nobody.pw_gid)}, (pid, ids)
        assert int(ids["CapPrm"][0], 16) == int(ids["CapEff"][0], 16) == 0, (pid, ids)
    assert (public_dir / "state" / "state.db").stat().st_uid == nobody.pw_uid  # handed over
    assert (public_dir / "secret").stat().st_mode & 0o777 == 0o640
    for name in ("hosts", "opts"):  # what that user may not do
        probe = public_dir / "dnsmasq" / name / "00095200000E"
        as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}"]
        touch = subprocess.run(
            [*as_nobody, "--clear-groups", "touch", str(probe)], capture_output=True, timeout=10
        )
        assert touch.returncode != 0 and not probe.exists()
    assert stop(server) == 0
    with State(public_dir / "state" / "state.db") as state:  # it wrote its fetch log there
        assert len(state.fetches(D200)) == 5


def worker_socket_of(server: Server) -> Path:
    """The router's way to the worker, from uWSGI's command line."""
    argv = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes().split(b"\0")
    return Path(argv[argv.index(b"--socket") + 1].decode())


UWSGI_CONNECT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(type(e).__name__)
else:
    print("connected")
"""


@pytest.mark.parametrize("user", ["", "nobody"])
def test_no_other_local_user_reaches_the_worker(
    public_dir: Path, servers: list[Server], user: str
) -> None:
    """Lease mode decides by the client address the router hands the worker: a local process
    that could connect to the worker itself could claim any address. Only serve's user (and
    root) may."""
    nobody = pwd.getpwnam("nobody")
    (public_dir / "state").mkdir(mode=0o750)
    os.chown(public_dir / "state", nobody.pw_uid, nobody.pw_gid)
    server = start(
        public_dir,
        "lease",
        server=f'user = "{user}"\n',
        state="state/state.db",
        prefix=reachable(public_dir),
    )
    servers.append(server)
    path = worker_socket_of(server)
    owner = nobody if user else pwd.getpwuid(0)
    assert path.parent.parent == Path("/run/phoneprov")
    for item, mode in ((path.parent, 0o700), (path, 0o600)):
        st = item.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (owner.pw_uid, mode), item
    # root's serve: nobody may not; nobody's serve: another unprivileged user may not
    stranger = pwd.getpwnam("nobody" if not user else "daemon")
    attempt = subprocess.run(
        ["setpriv", f"--reuid={stranger.pw_uid}", f"--regid={stranger.pw_gid}",
         "--clear-groups", "/usr/bin/python3", "-c", UWSGI_CONNECT, str(path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert attempt.stdout.strip() == "PermissionError", attempt.stdout + attempt.stderr
    assert stop(server) == 0
    assert not path.exists()  # uWSGI removes it (--vacuum)


def test_serve_will_not_run_a_user_into_a_state_directory_it_cannot_write(
    public_dir: Path,
) -> None:
    (public_dir / "phoneprov.toml").write_text(
        '[server]\nlisten = "127.0.0.1:9"\nuser = "nobody"\n[security]\nmode = "open"\n'
        '[dhcp]\nleasefile = ""\n[paths]\nstate = "state.db"\n'
    )
    (public_dir / "inventory.toml").write_text("")
    (public_dir / "templates").mkdir()
    run = subprocess.run(
        [str(PHONEPROV), "serve", "-c", str(public_dir / "phoneprov.toml")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert f"{public_dir} is not writable by nobody" in run.stderr


# item 1, with the real DHCP server ------------------------------------------------------------

FLOOD = r"""
import http.client, sys, threading, time
host, port, path, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
counts = []
def flood():
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            c = http.client.HTTPConnection(host, port, timeout=5)
            c.request("GET", path)
            c.getresponse().read()
            c.close()
            n += 1
        except OSError:
            time.sleep(0.01)
    counts.append(n)
threads = [threading.Thread(target=flood) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(counts), flush=True)
"""


def fetch_all(base: str, mac: str) -> list[int]:
    """What a phone does after its ACK: the entry, then every file it lists (fresh
    connections); the statuses."""
    entry = Layout("query").entry_url(base, "D200", mac)
    statuses = []
    host, port = base.removeprefix("http://").split(":")
    for url in [entry]:
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("GET", url.removeprefix(base))
        response = conn.getresponse()
        body = response.read()
        conn.close()
        statuses.append(response.status)
        if response.status != 200:
            return statuses
        for ref in parse_reference(body):
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            conn.request("GET", resolve_reference(entry, ref).removeprefix(base))
            file = conn.getresponse()
            file.read()
            conn.close()
            statuses.append(file.status)
    return statuses


@pytest.fixture
def lab(e2e_ready: None) -> Iterator[Lab]:
    with Lab("pphttp") as the_lab:
        yield the_lab


def test_a_phone_gets_its_files_within_2_s_while_four_hosts_flood(
    lab: Lab, public_dir: Path, dnsmasq_factory: Any
) -> None:
    """dnsmasq runs no hook at all here: the phone is found in dnsmasq's lease file, the
    moment after its ACK; 4 hosts x 16 connections ask for its files meanwhile."""
    appliance = lab.add_host("appl", "10.231.0.1/24")
    dm: Dnsmasq = dnsmasq_factory(appliance)
    shutil.copytree(Path(__file__).resolve().parents[2] / "conf" / "templates",
                    public_dir / "templates")  # fmt: skip
    from sample_data import TWO_PHONES_INVENTORY

    (public_dir / "inventory.toml").write_text(TWO_PHONES_INVENTORY)
    config = public_dir / "phoneprov.toml"
    config.write_text(
        '[server]\nurl = "http://10.231.0.1:8080"\nlisten = "0.0.0.0:8080"\n'
        '[security]\nmode = "lease"\nsecret_file = "secret"\nrefused_per_minute = 0\n'
        f'[dhcp]\nleasefile = "{dm.leasefile}"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    log = (public_dir / "serve.log").open("wb")
    serve = lab.spawn(appliance, [str(PHONEPROV), "serve", "-c", str(config)],
                      stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    base = "http://10.231.0.1:8080"
    deadline = time.monotonic() + 20
    while lab.run(appliance, ["ss", "-Htln", "sport = :8080"]).stdout.strip() == "":
        assert serve.poll() is None and time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)
    flooders = []
    for n in range(4):
        host = lab.add_host(f"flood{n}", f"10.231.0.{11 + n}/24")
        argv = [sys.executable, "-c", FLOOD, "10.231.0.1", "8080", f"/prov.py?mac={D200}", "6"]
        flooders.append(lab.spawn(host, argv, stdout=subprocess.PIPE, text=True))
    phone = lab.add_host("phone", mac="00:09:52:00:00:0e")
    time.sleep(1.0)  # the flood is on
    lease = dhcp_exchange(phone.netns, phone.ifname, phone.mac, assign=True)
    acked = time.monotonic()
    statuses = call_in_netns(phone.netns, fetch_all, base, D200)
    took = time.monotonic() - acked
    counts = [int(f.communicate(timeout=30)[0] or 0) for f in flooders]
    assert statuses == [200] * 5, statuses
    assert took < 2.0, f"{took:.2f} s"
    assert min(counts) > 100, counts  # they did flood (and were refused meanwhile)
    assert [row[1:3] for row in dm.leases()] == [["00:09:52:00:00:0e", lease.ip]]
    with State(public_dir / "state.db") as state:
        assert state.lease_for(D200) is None  # no hook: the lease file alone let it in
        refused = state.db.execute("SELECT count(*) FROM fetches WHERE status=403").fetchone()
    assert refused[0] > 0
    lab.stop(serve)
    log.close()
