"""`phoneprov serve` vs nginx serving the same rendered files, one run, same machine (DESIGN §5).

    .venv/bin/python bench/bench_http.py [--devices 1000] [--seconds 10] [--connections 64]
                                         [--runs 3] [--wrk-threads 2] [--wrk-nice 0]
                                         [--no-fast-path] [--also '--threads 1' ...]

Builds a throwaway site (inventory of many D100/D200/D400 phones, security mode open,
loopback only), renders every device's files once and writes them as static files for an
nginx of our own (temp config, by PID). wrk cycles through every file of every device
(bench/http/paths.lua) against both. Prints req/s, the ratio, latency percentiles (p50,
p90, p99, p99.9, max), the CPU time all of a server's processes spent per request, and the
server's resident memory (every page of its processes once; RSS summed beside it). Goals
(issue 14): ≥ 0.15x nginx, p99 ≤ 20 ms at 64 connections; memory ≤ 40 MB (issue 13).
`--runs N` repeats the whole comparison (a fresh nginx and a fresh serve each time) N times
in a row and prints every run's figures:
the goals hold only when they hold in every run. `--no-fast-path` measures the plain
Flask path too, `--also ARGS` `phoneprov serve ARGS` (same run, same nginx figures; the
goals are judged on plain `phoneprov serve`). `--wrk-nice N` runs wrk at niceness N for
both servers: wrk shares the server's cores here, while on a site the phones are other
machines (the goals are judged at the default, 0).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))
LUA = ROOT / "bench" / "http" / "paths.lua"
MODELS = ("D100", "D200", "D400")
RATIO_GOAL, P99_GOAL_MS, MEMORY_GOAL_MB = 0.15, 20.0, 40.0
PAGE = os.sysconf("SC_PAGE_SIZE")
PFN_MASK = (1 << 55) - 1
PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")

from phoneprov.config import load_config  # noqa: E402
from phoneprov.core.layout import ProvRequest, request_path  # noqa: E402
from phoneprov.render import Catalog  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def site(root: Path, devices: int, port: int) -> Path:
    shutil.copytree(ROOT / "conf" / "templates", root / "templates")
    lines = [
        '[profiles.default]\ntemplates = ["office.xml"]\n',
        '[profiles.default.vars]\nsip_registrar = "pbx.example.lan"\n',
    ]
    for i in range(devices):
        lines.append(
            f'[[devices]]\nmac = "00:09:52:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"\n'
            f'type = "{MODELS[i % 3]}"\nprofile = "default"\n'
            f'vars = {{ sip_user = "{1000 + i}", sip_password = "pw-{i:06d}" }}\n'
        )
    (root / "inventory.toml").write_text("".join(lines))
    config = root / "phoneprov.toml"
    config.write_text(
        f'[server]\nurl = "http://127.0.0.1:{port}"\nlisten = "127.0.0.1:{port}"\n'
        '[security]\nmode = "open"\nsecret_file = "secret"\n'
        '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
    )
    return config


def static_files(config_path: Path, www: Path) -> list[str]:
    """Render every file once, write it where nginx serves it; the URL paths, in order."""
    config = load_config(config_path)
    catalog = Catalog(config)
    paths = []
    for device, name, rendered in catalog.render_all():
        path = request_path(
            config.server.layout, ProvRequest(device.mac, name, "path", device.type)
        )
        target = www / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendered.body)
        paths.append(path)
    return paths


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass(frozen=True)
class Figures:
    rps: float
    latency_ms: dict[str, float]  # PERCENTILES
    cpu_us: float  # CPU time of all the server's processes per request
    resident_mb: float  # every page of the server's processes once
    rss_mb: float  # summed over its processes: shared pages counted in each

    def line(self, label: str, baseline: Figures | None = None) -> str:
        lat = "  ".join(f"{k} {self.latency_ms[k]:6.2f}" for k in PERCENTILES)
        ratio = f"  = {self.rps / baseline.rps:.3f}x nginx" if baseline else ""
        return (
            f"{label:17} {self.rps:9.0f} req/s  {lat} ms  CPU {self.cpu_us:5.1f} us/req  "
            f"memory {self.resident_mb:5.1f} MB (RSS summed {self.rss_mb:5.1f}){ratio}"
        )


WRK_NICE = 0  # --wrk-nice


def wrk(
    port: int, paths_file: Path, seconds: int, connections: int, threads: int
) -> tuple[float, dict[str, float]]:
    """(requests/s, latency percentiles in ms) of one wrk run cycling through the paths."""
    out = subprocess.run(
        ["nice", "-n", str(WRK_NICE), "wrk", f"-t{threads}", f"-c{connections}",
         f"-d{seconds}s", "-s", str(LUA), f"http://127.0.0.1:{port}"],
        env=dict(os.environ, PATHS_FILE=str(paths_file)),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = re.search(r"^LATENCY_MS (.*)$", out, re.M).group(1)  # type: ignore[union-attr]
    return rps, {k: float(v) for k, v in (item.split("=") for item in latency.split())}


def measure(pid: int, port: int, paths_file: Path, args: argparse.Namespace) -> Figures:
    """wrk against a warm server (`pid` and its children): its figures."""
    cpu_before = cpu_seconds(pid)
    rps, latency = wrk(port, paths_file, args.seconds, args.connections, args.wrk_threads)
    cpu = cpu_seconds(pid) - cpu_before
    resident, rss = memory_mb(pid)
    return Figures(rps, latency, cpu / (rps * args.seconds) * 1e6, resident, rss)


def descendants(pid: int) -> list[int]:
    """`pid` and all its descendants (those alive)."""
    pids, found = [pid], []
    while pids:
        p = pids.pop()
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        found.append(p)
        pids += [int(c) for c in children]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far."""
    ticks = 0
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def resident_pages(pid: int) -> set[int]:
    """The physical frames (PFNs) of every resident page of `pid` (root reads the PFNs)."""
    frames: set[int] = set()
    with open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pagemap:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if line.endswith("[vsyscall]"):
                continue
            start, end = (int(a, 16) // PAGE for a in line.split()[0].split("-"))
            entries = os.pread(pagemap.fileno(), 8 * (end - start), 8 * start)
            for (entry,) in struct.iter_unpack("<Q", entries):
                if entry >> 63:  # present in RAM (not swapped): bits 0-54 are the frame
                    frames.add(entry & PFN_MASK)
    frames.discard(0)  # the PFN reads as 0 without CAP_SYS_ADMIN
    return frames


def memory_mb(pid: int) -> tuple[float, float]:
    """What `pid` and its descendants hold in RAM, every page once (uWSGI's master, router
    and worker share most of theirs), and their RSS summed (which counts those repeatedly)."""
    frames: set[int] = set()
    rss = 0
    for p in descendants(pid):
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            frames |= resident_pages(p)
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
    return len(frames) * PAGE / 2**20, rss / 1024


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_figures(root: Path, port: int, paths_file: Path, args: argparse.Namespace) -> Figures:
    nginx = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)])
    try:
        wait_port(port)
        wrk(port, paths_file, 2, args.connections, args.wrk_threads)  # warm-up
        return measure(nginx.pid, port, paths_file, args)
    finally:
        stop(nginx, signal.SIGQUIT)


def serve_figures(
    config: Path,
    port: int,
    paths_file: Path,
    args: argparse.Namespace,
    fast: str = "1",
    extra: tuple[str, ...] = (),
) -> Figures:
    serve = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "phoneprov"), "serve", "-c", str(config),
         "--log-level", "WARNING", *extra],
        env=dict(os.environ, PHONEPROV_FAST_PATH=fast),
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
        wrk(port, paths_file, 3, args.connections, args.wrk_threads)  # warm-up: fills the cache
        return measure(serve.pid, port, paths_file, args)
    finally:
        stop(serve)


def verdict(ratio: float, p99: float, memory: float) -> list[str]:
    return [
        f"ratio {'ok' if ratio >= RATIO_GOAL else 'MISSED'} (goal >= {RATIO_GOAL:.2f}x)",
        f"p99 {'ok' if p99 <= P99_GOAL_MS else 'MISSED'} (goal <= {P99_GOAL_MS:.0f} ms)",
        f"memory {'ok' if memory <= MEMORY_GOAL_MB else 'MISSED'} "
        f"(goal <= {MEMORY_GOAL_MB:.0f} MB)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--wrk-threads", type=int, default=2, help="wrk -t, the same for both (issue 14: 2)"
    )
    parser.add_argument(
        "--wrk-nice",
        type=int,
        default=0,
        help="run wrk at this niceness, for both (it shares the server's cores here)",
    )
    parser.add_argument("--runs", type=int, default=1, help="the whole comparison, N times")
    parser.add_argument("--no-fast-path", action="store_true", help="also measure plain Flask")
    parser.add_argument(
        "--also",
        metavar="ARGS",
        action="append",
        default=[],
        help="also measure `phoneprov serve ARGS` (e.g. '--threads 1'), each run; "
        "the goals are judged on plain `phoneprov serve`",
    )
    args = parser.parse_args()
    global WRK_NICE
    WRK_NICE = args.wrk_nice
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench_http needs {' and '.join(missing)}: `bash .ci/setup` installs both")
    with tempfile.TemporaryDirectory(prefix="phoneprov-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx workers run as nobody
        pp_port, nginx_port = free_port(), free_port()
        config = site(root, args.devices, pp_port)
        paths = static_files(config, root / "www")
        paths_file = root / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        print(
            f"{len(paths)} files of {args.devices} devices, "
            f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.seconds}s"
            + (f" at nice {args.wrk_nice}" if args.wrk_nice else "")
        )
        (root / "nginx.conf").write_text(
            f"worker_processes auto; daemon off; pid {root}/nginx.pid; error_log stderr;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {root}/nginx-tmp;\n"
            f"  server {{ listen 127.0.0.1:{nginx_port}; root {root}/www;\n"
            "    default_type application/xml; } }\n"
        )
        results: list[tuple[float, float, float]] = []  # (ratio, p99, RSS) of each run
        for run in range(1, args.runs + 1):
            if args.runs > 1:
                print(f"run {run}/{args.runs}")
            nginx = nginx_figures(root, nginx_port, paths_file, args)
            print(nginx.line("nginx static"))
            served = serve_figures(config, pp_port, paths_file, args)
            print(served.line("phoneprov serve", nginx))
            ratio, p99 = served.rps / nginx.rps, served.latency_ms["p99"]
            results.append((ratio, p99, served.resident_mb))
            for extra in args.also:
                also = serve_figures(config, pp_port, paths_file, args, extra=tuple(extra.split()))
                print(also.line(f"  serve {extra}", nginx))
            if args.no_fast_path:
                flask = serve_figures(config, pp_port, paths_file, args, fast="0")
                print(flask.line("  (no fast path)", nginx))
            print("goals: " + ", ".join(verdict(ratio, p99, served.resident_mb)))
        if args.runs > 1:
            ratios, p99s, memories = zip(*results, strict=True)
            met = all(
                r >= RATIO_GOAL and p <= P99_GOAL_MS and m <= MEMORY_GOAL_MB for r, p, m in results
            )
            print(
                f"{args.runs} runs: ratio {min(ratios):.3f}-{max(ratios):.3f}x, "
                f"p99 {min(p99s):.2f}-{max(p99s):.2f} ms, "
                f"memory {min(memories):.1f}-{max(memories):.1f} MB; "
                f"goals met in every run: {'yes' if met else 'NO'}"
            )


if __name__ == "__main__":
    main()
