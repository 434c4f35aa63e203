"""Full-size fault runs (issue 8): the tests/ingest fault tests at 100,000 readings, 30 s lock.

    .venv/bin/python bench/ingest_faults.py [--scale 12.5] [--lock-s 30]

Prints the reliability table (fault, sent, stored, duplicated, lost, recovery) for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = re.compile(r"test_faults\.py:\d+ (\w+): (.*)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=12.5, help="x the CI sizes (12.5: 100k)")
    parser.add_argument("--lock-s", type=float, default=30.0, help="seconds the lock is held")
    args = parser.parse_args()
    env = dict(
        os.environ,
        STREETSENSE_FAULT_SCALE=str(args.scale),
        STREETSENSE_FAULT_LOCK_S=str(args.lock_s),
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/ingest/test_faults.py",
            "-m",
            "faults",
            "-q",
            "-o",
            "log_cli=true",
            "--log-cli-level=INFO",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    print("| fault | figures |")
    print("|---|---|")
    for line in run.stdout.splitlines():
        match = FIGURES.search(line)
        if match:
            print(f"| {match[1]} | {match[2]} |")
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:])
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
