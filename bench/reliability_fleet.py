"""Fault 1 at full size: 100,000 readings from real edge agents, the broker SIGKILLed mid-stream.

    .venv/bin/python bench/reliability_fleet.py [--agents 5] [--per-agent 20000]

Runs three scenarios, each on a scratch database of the test server
($STREETSENSE_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres) and a
private Mosquitto from deploy/mosquitto/streetsense.conf: ingest online, ingest offline (the
backlog queued in the broker), and the control whose agents free readings on the broker's
PUBACK. Prints one Markdown table row per scenario.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import uuid
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.fleet import FleetRun, describe, run_fleet
from harness.scratch import scratch_database
from streetsense.config import load_settings, with_overrides
from streetsense.topics import Topics

log = logging.getLogger("bench.reliability_fleet")


def main() -> int:
    """Run the three scenarios and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5)
    parser.add_argument("--per-agent", type=int, default=20_000)
    parser.add_argument("--spacing-ms", type=int, default=2)
    parser.add_argument("--kill-at", type=float, default=0.3, help="share of readings read")
    parser.add_argument("--restart-at", type=float, default=0.4, help="share of readings read")
    parser.add_argument("--only", type=int, help="run only scenario N (0-3)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    base = FleetRun(
        agents=args.agents, per_agent=args.per_agent, spacing_ms=args.spacing_ms,
        kill_at=args.kill_at, restart_at=args.restart_at, settle_timeout_s=600.0,
    )  # fmt: skip
    scenarios = [
        base,
        replace(base, ingest_online=False),
        replace(base, ingest_online=False, confirm="broker"),
        # Mosquitto 2.0 forgets shared subscriptions on restart: the same control with a plain
        # subscription shows only the loss of what the broker held when it was killed.
        replace(base, ingest_online=False, confirm="broker", shared_group=""),
    ]
    if args.only is not None:
        scenarios = [scenarios[args.only]]
    rows = []
    for run in scenarios:
        topics = Topics(f"bench-{uuid.uuid4().hex[:8]}/streetsense/v1")
        with scratch_database() as url, tempfile.TemporaryDirectory(prefix="ss-rel-") as work:
            settings = with_overrides(
                load_settings(None, environ={}),
                database={"url": url, "timescale": "off"},
                mqtt={"topic_prefix": topics.prefix},
                ingest={"metrics_port": 0},
            )
            figures = run_fleet(run, settings, topics, Path(work))
        rows.append(
            f"| {describe(run)} | {figures['sent']:,} | {figures['stored']:,} | "
            f"{figures['lost']:,} | {figures['duplicated']:,} | {figures['recovery_s']} s | "
            f"{figures['sent_before_kill']:,} | {figures['resent']:,} |"
        )
    sys.stdout.write(
        "| fault | sent | stored | lost | duplicated | recovery | sent before kill | re-sent |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
