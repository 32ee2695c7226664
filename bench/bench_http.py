"""`phoneprov serve` vs nginx serving the same rendered files, one run, same machine (DESIGN §5).

    .venv/bin/python bench/bench_http.py [--devices 1000] [--seconds 10] [--connections 64]

Builds a throwaway site (inventory of many D100/D200/D400 phones, security mode open,
loopback only), renders every device's files once and writes them as static files for an
nginx of our own (temp config, by PID). wrk cycles through every file of every device
(bench/http/paths.lua) against both. Prints req/s, the ratio, p99 latency, and the server's
resident memory (sum over all its processes). Goals: ≥ 0.10x nginx, p99 ≤ 20 ms at 64
connections, RSS ≤ 60 MB. `--no-fast-path` measures the plain Flask path too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))
LUA = ROOT / "bench" / "http" / "paths.lua"
MODELS = ("D100", "D200", "D400")

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


def wrk(port: int, paths_file: Path, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, p99 latency in ms) of one wrk run cycling through the paths."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}"],
        env=dict(os.environ, PATHS_FILE=str(paths_file)),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return rps, float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of `pid` and all its descendants, summed; PSS splits shared pages."""
    pids, rss, pss = [pid], 0, 0
    while pids:
        p = pids.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        pss += int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))  # type: ignore[union-attr]
        pids += [int(c) for c in children]
    return rss / 1024, pss / 1024


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-fast-path", action="store_true", help="also measure plain Flask")
    args = parser.parse_args()
    missing = [tool for tool in ("nginx", "wrk") if shutil.which(tool) is None]
    if missing:
        # Not part of the set-up: Debian's nginx package starts a web server on port 80.
        sys.exit(
            f"bench_http needs {' and '.join(missing)}: apt-get install nginx-light wrk "
            "(then `systemctl disable --now nginx`: this benchmark runs its own)"
        )
    with tempfile.TemporaryDirectory(prefix="phoneprov-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx workers run as nobody
        pp_port, nginx_port = free_port(), free_port()
        config = site(root, args.devices, pp_port)
        paths = static_files(config, root / "www")
        paths_file = root / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        print(f"{len(paths)} files of {args.devices} devices, wrk -t1 -c{args.connections}")

        (root / "nginx.conf").write_text(
            f"worker_processes auto; daemon off; pid {root}/nginx.pid; error_log stderr;\n"
            "events { worker_connections 1024; }\n"
            f"http {{ access_log off; client_body_temp_path {root}/nginx-tmp;\n"
            f"  server {{ listen 127.0.0.1:{nginx_port}; root {root}/www;\n"
            "    default_type application/xml; } }\n"
        )
        nginx = subprocess.Popen(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)])
        try:
            wait_port(nginx_port)
            wrk(nginx_port, paths_file, 2, args.connections)  # warm-up
            n_rps, n_p99 = wrk(nginx_port, paths_file, args.seconds, args.connections)
            n_rss, n_pss = memory_mb(nginx.pid)
        finally:
            stop(nginx, signal.SIGQUIT)
        print(
            f"nginx static      {n_rps:9.0f} req/s  p99 {n_p99:6.2f} ms  "
            f"RSS {n_rss:5.1f} MB (PSS {n_pss:5.1f})"
        )

        variants = [("phoneprov serve", "1")] + ([("  (no fast path)", "0")] * args.no_fast_path)
        for label, fast in variants:
            serve = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "phoneprov"), "serve", "-c", str(config),
                 "--log-level", "WARNING"],
                env=dict(os.environ, PHONEPROV_FAST_PATH=fast),
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                wait_port(pp_port)
                wrk(pp_port, paths_file, 3, args.connections)  # warm-up: fills the cache
                rps, p99 = wrk(pp_port, paths_file, args.seconds, args.connections)
                rss, pss = memory_mb(serve.pid)
            finally:
                stop(serve)
            ratio = rps / n_rps
            print(
                f"{label:17} {rps:9.0f} req/s  p99 {p99:6.2f} ms  RSS {rss:5.1f} MB "
                f"(PSS {pss:5.1f})  = {ratio:.3f}x nginx"
            )
            if fast == "1":
                verdict = [
                    f"ratio {'ok' if ratio >= 0.10 else 'MISSED'} (goal >= 0.10x)",
                    f"p99 {'ok' if p99 <= 20 else 'MISSED'} (goal <= 20 ms)",
                    f"RSS {'ok' if rss <= 60 else 'MISSED'} (goal <= 60 MB)",
                ]
                print("goals: " + ", ".join(verdict))


if __name__ == "__main__":
    main()
