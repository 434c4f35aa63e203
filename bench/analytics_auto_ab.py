"""Time `auto` (fit + 24 h forecast, 10,000 series x 4 weeks at 5 min) in this tree against an
earlier revision, alternating runs in one session so both see the same load.

Usage: python bench/analytics_auto_ab.py [REVISION] [N_SERIES] [ROUNDS] [ZONE] [WORKERS]
REVISION defaults to the commit before auto's candidates shared their windows; ZONE (an IANA
name, default UTC) is where seasons are counted, as the job counts them in the city's zone;
WORKERS (default 0: one per core) the threads of this tree's fit (a revision before them has
one). CPU is the process's, all threads; `main` is the calling thread's alone (with workers,
the work outside the chunks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEFORE_SHARING = "39e5a0e~1"
# Runs in a fresh interpreter with the tree to time first on sys.path.
TIMER = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[1] + "/bench"]
from analytics_speed import HORIZON, synthetic
from analytics.models import build
panel = synthetic(int(sys.argv[2]))
options = {"workers": int(sys.argv[4])} if sys.argv[4] != "-" else {}
wall, cpu, main = time.perf_counter(), time.process_time(), time.thread_time()
build("auto", horizon=HORIZON, timezone=sys.argv[3], **options).fit(panel).predict(HORIZON)
print(f"{time.perf_counter() - wall:.2f} {time.process_time() - cpu:.2f} "
      f"{time.thread_time() - main:.2f}")
"""


def export(revision: str, target: Path) -> None:
    """Write the analytics code and speed bench of `revision` under `target`."""
    archive = subprocess.run(
        ["git", "archive", revision, "analytics", "bench/analytics_speed.py"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


def time_auto(tree: Path, n: int, zone: str, workers: str) -> tuple[float, float, float]:
    """Return (wall, CPU, the calling thread's CPU) seconds of auto in `tree`; `workers` is
    the number of threads, or '-' for a tree without them."""
    done = subprocess.run(
        [sys.executable, "-c", TIMER, str(tree), str(n), zone, workers],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu, main = done.stdout.split()
    return float(wall), float(cpu), float(main)


def _workers_of(tree: Path) -> str:
    """Return '0' (one thread per core) when `tree` has threaded fits, else '-'."""
    return "0" if (tree / "analytics" / "parallel.py").is_file() else "-"


def uptime() -> str:
    """Return the load averages, as `uptime` reports them."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> int:
    """Alternate the two trees and print each run and the ratios of the means."""
    revision = sys.argv[1] if len(sys.argv) > 1 else BEFORE_SHARING
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    zone = sys.argv[4] if len(sys.argv) > 4 else "UTC"
    workers = sys.argv[5] if len(sys.argv) > 5 else "0"
    with tempfile.TemporaryDirectory(prefix="auto-ab-") as folder:
        before = Path(folder)
        export(revision, before)
        results: dict[str, list[tuple[float, float, float]]] = {revision: [], "this tree": []}
        for _ in range(rounds):
            for label, tree in ((revision, before), ("this tree", REPO)):
                threads = workers if label == "this tree" else _workers_of(before)
                results[label].append(time_auto(tree, n, zone, threads))
                wall, cpu, main = results[label][-1]
                print(f"auto {label:<12} wall {wall:6.2f} s  CPU {cpu:6.2f} s "
                      f"(main thread {main:6.2f} s)  {uptime()}", flush=True)  # fmt: skip
    mean = {k: [sum(v[i] for v in runs) / len(runs) for i in (0, 1)] for k, runs in results.items()}
    print(
        f"this tree / {revision}: wall {mean['this tree'][0] / mean[revision][0]:.2f}x, "
        f"CPU {mean['this tree'][1] / mean[revision][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
