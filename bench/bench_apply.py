"""`phoneprov apply` for 10,000 devices (DESIGN §5: < 1 s; one change rewrites O(1) files).

    .venv/bin/python bench/bench_apply.py [--devices 10000]

Times, in one run, `apply(config)` as the CLI runs it: from scratch (load + validate the TOML
inventory, compute every device's options, write 2 files per device), again with nothing
changed (its inputs' digest matches the manifest's: nothing loaded), and after one device
changed; also the load and compute phases apart. Prints the files each touched, each
time and its ratio to a baseline measured in the same run (creating as many plain files,
not flushed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugin"))

from phoneprov.config import load_config  # noqa: E402
from phoneprov.dnsmasq.apply import apply, plan  # noqa: E402
from phoneprov.site import full_inventory, resolve_settings, token_secret  # noqa: E402


def inventory(count: int, replaced: int | None = None) -> str:
    """`count` devices; device number `replaced` swapped for a new phone (a new MAC)."""
    lines = ['[profiles.default]\ntemplates = ["office.xml"]\n']
    for n in range(count):
        first = "01" if n == replaced else "00"
        lines.append(
            f'[[devices]]\nmac = "00:09:52:{first}:{n >> 8 & 255:02x}:{n & 255:02x}"\n'
            'type = "D200"\nprofile = "default"\n'
        )
    return "".join(lines)


def plain_files(directory: Path, count: int) -> float:
    """Seconds to create `count` small files the plainest way: the filesystem's own cost."""
    directory.mkdir()
    start = time.perf_counter()
    for n in range(count):
        (directory / f"{n:012X}").write_text("00:09:52:00:00:00,set:phoneprov-x\n")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--dir", help="where to write (e.g. /dev/shm for tmpfs) [default: $TMPDIR]")
    args = parser.parse_args()
    count = args.devices
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        (root / "inventory.toml").write_text(inventory(count))
        (root / "pp.toml").write_text(
            '[server]\nurl = "http://10.231.0.1:8080"\n'
            '[dhcp]\nmode = "both"\nntp = ["10.231.0.1"]\nhostsdir = "hosts"\noptsdir = "opts"\n'
            '[security]\nmode = "token"\nsecret_file = "secret"\n'
            '[paths]\ninventory = "inventory.toml"\nstate = "state.db"\n'
        )
        config = load_config(root / "pp.toml")
        settings = resolve_settings(config)

        def timed(label: str, baseline: float) -> None:
            start = time.perf_counter()
            result = apply(config)  # what `phoneprov apply` runs, its settings resolved
            done = time.perf_counter()
            print(
                f"  {label:20s} {done - start:6.3f} s = {(done - start) / baseline:.2f}x the "
                f"baseline; {result.files_touched} files touched: {result.summary()}"
            )

        def phases() -> str:
            """Where a whole apply's time goes, measured apart (nothing is written)."""
            start = time.perf_counter()
            inv = full_inventory(config)
            loaded = time.perf_counter()
            plan(settings, list(inv.devices), token_secret(config, settings))
            planned = time.perf_counter()
            return f"load+validate {loaded - start:.3f} s, compute options {planned - loaded:.3f} s"

        print(f"apply benchmark: {count} devices, mode both, token security, in {tmp}")
        baseline = plain_files(root / "baseline", 2 * count)
        print(f"  baseline: {2 * count} plain small files (open, write, close) {baseline:.3f} s")
        print(f"  of a whole apply: {phases()}")
        timed("from scratch", baseline)
        timed("nothing changed", baseline)
        (root / "inventory.toml").write_text(inventory(count, replaced=count // 2))
        timed("one phone replaced", baseline)
        print(
            "  goal (issue 14): from scratch <= 1.0 s and <= 1.5x the baseline; nothing changed "
            "<= 0.15 s; one phone replaced touches 4 files (new host + opts, old host -> "
            "tombstone, old opts deleted)"
        )


if __name__ == "__main__":
    main()
