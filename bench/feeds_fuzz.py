"""Fuzz every operation of the feeds' OpenAPI document for server errors, for a time budget.

The bounded run in tests/security keeps regressions out of CI; this one searches longer
(schemathesis' examples, coverage and fuzzing phases) against `streetsense feeds serve` over a
small city, and prints every 5xx it finds with the request that caused it.

    PYTHONPATH=. .venv/bin/python bench/feeds_fuzz.py [--max-time 300] [--lots 40]

Needs PostgreSQL ($STREETSENSE_TEST_DATABASE_URL, default postgres@127.0.0.1:5432); creates and
drops a database of its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.feeds_load import feeds_server, load_city
from harness.scratch import scratch_database

REPO = Path(__file__).resolve().parents[1]
# A live stream never ends by itself, so it cannot be fuzzed like a request/response
# operation; tests/security/test_feeds_requests.py tries its one header instead.
STREAM = "/v1/parking/stream"


def main() -> int:
    """Run schemathesis against a live server; exit non-zero when it found a server error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-time", type=int, default=300, help="seconds of fuzzing")
    parser.add_argument("--lots", type=int, default=40)
    args = parser.parse_args()
    with scratch_database("ss_bench_fuzz") as url:
        load_city(url, args.lots, args.lots)
        with feeds_server(url, None) as base:
            command = [
                str(REPO / ".venv/bin/schemathesis"), "run", f"{base}/openapi.json",
                "--checks", "not_a_server_error", "--exclude-path", STREAM,
                "--phases", "examples,coverage,fuzzing", "--max-time", str(args.max_time),
                "--workers", "2", "--suppress-health-check", "all", "--continue-on-failure",
            ]  # fmt: skip
            # Its cache folder goes with the temporary one, not into the checkout.
            with tempfile.TemporaryDirectory() as scratch:
                return subprocess.run(command, check=False, cwd=scratch).returncode


if __name__ == "__main__":
    sys.exit(main())
