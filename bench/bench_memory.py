"""Resident memory of the appliance side (HTTP + PnP) as deployed: ≤ 40 MB (issue 13; DESIGN §5
said 60), in either server.http mode (`--http socket`: the lean appliance, one process).

    .venv/bin/python bench/bench_memory.py [--devices 1000] [--separate-pnp] [--odd-request]

Needs root: a lab of two network namespaces (`phoneprov.lab.Lab(base="ppmem")`, addresses in
10.231.0.0/24) — PnP joins its multicast group on a real interface. The appliance runs
`phoneprov serve` with `sip.pnp = true` (one Python process answers HTTP and PnP), or with
--separate-pnp the older deployment: `phoneprov serve` plus `phoneprov pnp`. Warm-up, bounded:
wrk cycles through every file of every device for a few seconds (every file once over urllib
without wrk), and a phone in the second namespace gets its URL over PnP. Then RSS and PSS
per process (/proc/PID/smaps_rollup) and the verdict on what they hold together: every
resident page of every process of the appliance side, a page shared by several (uWSGI forks
its router and worker from the master) counted once (the frames in /proc/PID/pagemap). The
same for a bare `python3 -c "import time; time.sleep(600)"` started in the same run (the ratio
says how many bare interpreters the appliance side weighs). --odd-request also sends one
request the fast path leaves to Flask (a POST) and measures again: what loading Flask costs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))
sys.path.insert(0, str(ROOT / "bench"))
BUDGET_MB = 40.0  # issue 13, for the appliance side in either server.http mode
APPLIANCE, PHONE = "10.231.0.1", "10.231.0.2"
PORT = 8080
PHONE_MAC = "00:09:52:00:00:00"  # the first device of the bench inventory
READY_TIMEOUT = 20.0

from bench_http import LUA, PAGE, resident_pages, site, static_files  # noqa: E402

from phoneprov.core.markers import DeviceInfo  # noqa: E402
from phoneprov.lab import Lab  # noqa: E402
from phoneprov.lab.netns import netns_argv, stop_process  # noqa: E402
from phoneprov.phone.netns import call_in_netns  # noqa: E402


def smaps(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    rss = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    pss = int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    return rss / 1024, pss / 1024


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    pids, found = [pid], []
    while pids:
        p = pids.pop(0)
        found.append(p)
        try:
            pids += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            continue
    return found


def role(pid: int, top: int, service: str) -> str:
    """What a process of a service is (uWSGI gives all of them the same command line)."""
    if service != "serve":
        return service
    if pid == top:
        return "serve: uWSGI master" if tree(pid)[1:] else "serve: the one process"
    threads = int(re.search(r"^Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)[1])  # type: ignore[index]
    return "serve: worker (Python app)" if threads > 1 else "serve: HTTP router"


def wait_until(check: object, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not check():  # type: ignore[operator]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def port_open(ns: str) -> bool:
    import socket

    def probe() -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex((APPLIANCE, PORT)) == 0

    return call_in_netns(ns, probe)


def warm_http(ns: str, paths: list[str], paths_file: Path, seconds: int) -> str:
    if shutil.which("wrk"):
        argv = ["wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(LUA), f"http://{APPLIANCE}:{PORT}"]
        out = subprocess.run(
            netns_argv(ns, argv), env=dict(os.environ, PATHS_FILE=str(paths_file)),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx" in out:
            raise SystemExit(f"wrk saw errors:\n{out}")
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        return f"wrk -c64 {seconds} s over {len(paths)} files ({rps[1] if rps else '?'} req/s)"

    def fetch_all() -> None:
        for path in paths:
            with urllib.request.urlopen(f"http://{APPLIANCE}:{PORT}{path}", timeout=5) as r:
                r.read()

    call_in_netns(ns, fetch_all)
    return f"urllib, each of {len(paths)} files once"


def odd_request(ns: str) -> int:
    def post() -> int:
        req = urllib.request.Request(f"http://{APPLIANCE}:{PORT}/prov.py", data=b"x")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    return call_in_netns(ns, post)


def report(
    services: dict[str, subprocess.Popen[bytes]], baseline: int, title: str, budget: float
) -> float:
    """Per process RSS and PSS; the verdict is on the pages the processes hold together, each
    counted once (uWSGI's master, router and worker share most of theirs: summed RSS counts
    them up to three times, PSS splits them with unrelated processes too)."""
    print(f"\n{title}")
    print(f"  {'pid':>7}  {'process':30} {'RSS MB':>7} {'PSS MB':>7} {'own MB':>7}")
    total_rss = total_pss = 0.0
    held: dict[int, tuple[str, set[int]]] = {}
    for name, proc in services.items():
        for pid in tree(proc.pid):
            held[pid] = (role(pid, proc.pid, name), resident_pages(pid))
    frames: set[int] = set().union(*(pages for _, pages in held.values()))
    for pid, (what, pages) in held.items():
        rss, pss = smaps(pid)
        total_rss, total_pss = total_rss + rss, total_pss + pss
        others = set().union(*(p for other, (_, p) in held.items() if other != pid))
        own = len(pages - others) * PAGE / 2**20  # pages no other process of ours holds
        print(f"  {pid:>7}  {what:30} {rss:7.1f} {pss:7.1f} {own:7.1f}")
    base_rss, base_pss = smaps(baseline)
    resident = len(frames) * PAGE / 2**20
    print(f"  {'':>7}  {'sum':30} {total_rss:7.1f} {total_pss:7.1f}")
    print(f"  {baseline:>7}  {'bare python3 (baseline)':30} {base_rss:7.1f} {base_pss:7.1f}")
    verdict = "ok" if resident <= budget else "MISSED"
    print(
        f"  resident, each page once: {resident:.1f} MB = {resident / base_rss:.1f}x a bare "
        f"interpreter; budget {verdict} (goal <= {budget:.0f} MB)"
    )
    return resident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=3, help="wrk warm-up seconds")
    parser.add_argument("--separate-pnp", action="store_true", help="serve + `phoneprov pnp`")
    parser.add_argument("--odd-request", action="store_true", help="also after a POST")
    parser.add_argument("--cache-mb", type=int, default=16, help="server.cache_mb")
    parser.add_argument(
        "--http",
        choices=("router", "socket"),
        default="router",
        help="server.http: router (default) or socket (one process: the lean appliance)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    exe = [sys.executable, "-m", "phoneprov"]
    with tempfile.TemporaryDirectory(prefix="phoneprov-mem-") as tmp, Lab(base="ppmem") as lab:
        root = Path(tmp)
        config = site(root, args.devices, PORT)
        paths = static_files(config, root / "www")
        paths_file = root / "paths.txt"
        paths_file.write_text("\n".join(paths) + "\n")
        text = config.read_text().replace("127.0.0.1", APPLIANCE)
        text = text.replace(
            "[server]\n",
            f'[server]\ninterface = "eth0"\nhttp = "{args.http}"\ncache_mb = {args.cache_mb}\n',
        )
        pnp = "false" if args.separate_pnp else "true"
        config.write_text(text + f'[sip]\npnp = {pnp}\npnp_policy = "known"\n')
        appliance = lab.add_host("appliance", addr=f"{APPLIANCE}/24")
        phone = lab.add_host("phone", addr=f"{PHONE}/24", mac=PHONE_MAC)

        services: dict[str, subprocess.Popen[bytes]] = {}
        logs = {name: root / f"{name}.log" for name in ("serve", "pnp")}
        baseline = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        try:
            with logs["serve"].open("w") as log:
                services["serve"] = lab.spawn(
                    appliance, [*exe, "serve", "-c", str(config)], stderr=log, stdout=log
                )
            wait_until(
                lambda: port_open(appliance.netns), "serve", services["serve"], logs["serve"]
            )
            if args.separate_pnp:
                with logs["pnp"].open("w") as log:
                    services["pnp"] = lab.spawn(
                        appliance, [*exe, "pnp", "-c", str(config)], stderr=log, stdout=log
                    )
            pnp_log = logs["pnp" if args.separate_pnp else "serve"]
            pnp_proc = services["pnp" if args.separate_pnp else "serve"]
            wait_until(lambda: "PnP responder on" in pnp_log.read_text(), "PnP", pnp_proc, pnp_log)

            how = warm_http(phone.netns, paths, paths_file, args.seconds)
            from phoneprov.phone.pnp_client import discover_url

            url = discover_url(DeviceInfo(PHONE_MAC, "D100"), netns=phone.netns, timeout=5.0)
            if url is None:
                raise SystemExit("the phone got no URL over PnP:\n" + pnp_log.read_text())
            time.sleep(1.0)  # let the fetch log's writer catch up
            print(f"{len(paths)} files of {args.devices} devices; warm-up: {how}; PnP: {url}")
            deployment = "serve + pnp (two services)" if args.separate_pnp else "serve, PnP inside"
            deployment += f", server.http = {args.http}, cache_mb = {args.cache_mb}"
            budget = BUDGET_MB
            report(services, baseline.pid, f"appliance side: {deployment}", budget)
            if args.odd_request:
                status = odd_request(phone.netns)
                time.sleep(0.5)
                title = f"after one POST (answered {status} by Flask)"
                report(services, baseline.pid, title, budget)
        finally:
            for proc in services.values():
                stop_process(proc)
            stop_process(baseline)


if __name__ == "__main__":
    main()
