"""Time `auto` (fit + 24 h forecast, 10,000 series x 4 weeks at 5 min) in this tree against an
earlier revision, alternating runs in one session so both see the same load.

Usage: python bench/analytics_auto_ab.py [REVISION] [N_SERIES] [ROUNDS] [ZONE]
REVISION defaults to the commit before auto's candidates shared their windows; ZONE (an IANA
name, default UTC) is where seasons are counted, as the job counts them in the city's zone.
"""

from __future__ import annotations

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
wall, cpu = time.perf_counter(), time.process_time()
build("auto", horizon=HORIZON, timezone=sys.argv[3]).fit(panel).predict(HORIZON)
print(f"{time.perf_counter() - wall:.2f} {time.process_time() - cpu:.2f}")
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


def time_auto(tree: Path, n: int, zone: str) -> tuple[float, float]:
    """Return (wall, CPU) seconds of auto in `tree`."""
    done = subprocess.run(
        [sys.executable, "-c", TIMER, str(tree), str(n), zone],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def main() -> int:
    """Alternate the two trees and print each run and the ratios of the means."""
    revision = sys.argv[1] if len(sys.argv) > 1 else BEFORE_SHARING
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    zone = sys.argv[4] if len(sys.argv) > 4 else "UTC"
    with tempfile.TemporaryDirectory(prefix="auto-ab-") as folder:
        before = Path(folder)
        export(revision, before)
        results: dict[str, list[tuple[float, float]]] = {revision: [], "this tree": []}
        for _ in range(rounds):
            for label, tree in ((revision, before), ("this tree", REPO)):
                results[label].append(time_auto(tree, n, zone))
                wall, cpu = results[label][-1]
                print(f"auto {label:<12} wall {wall:6.2f} s  CPU {cpu:6.2f} s", flush=True)
    mean = {k: [sum(v[i] for v in runs) / len(runs) for i in (0, 1)] for k, runs in results.items()}
    print(
        f"this tree / {revision}: wall {mean['this tree'][0] / mean[revision][0]:.2f}x, "
        f"CPU {mean['this tree'][1] / mean[revision][1]:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
