"""Fault 4 at length: an edge agent's link black-holed for minutes, then restored.

    .venv/bin/python bench/reliability_link.py [--cut-s 300] [--rate 50] [--keepalive-s 30]

A real `streetsense-edge run` agent (simulated lamp, `--rate` readings/s) talks to a private
Mosquitto through a TCP fault proxy that silently discards traffic (a half-open cellular link:
no RST, no FIN), with a real `streetsense ingest` process and a scratch database behind. Reports
how soon the agent noticed (the design promises within 1.5x the keepalive), how long the
backlog took to drain, whether it arrived in order, and sent/stored/lost/duplicated. The CI
variant (8 s cut, keepalive 4 s) is tests/edge/test_faults.py.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.edge import AgentProcess, agent_config, wait_for
from harness.faultproxy import FaultProxy
from harness.ingest import IngestProcess, wait_log
from harness.ingest_services import persistent_mosquitto
from harness.scratch import scratch_database
from streetsense.config import load_settings, with_overrides
from streetsense.topics import Topics

log = logging.getLogger("bench.reliability_link")
DEVICE = "gw-1"


def _figures(
    url: str, state: dict[str, int], backlog_low: int, outage_high: int
) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, count(*), min(received_at) FROM readings WHERE device_id = %s"
            " AND seq IS NOT NULL GROUP BY seq ORDER BY seq",
            (DEVICE,),
        ).fetchall()
    counts = {int(seq): int(n) for seq, n, _ in rows}
    # Arrival order of the backlog: how often a reading arrived before an older one.
    backlog_times = [at for seq, _, at in rows if backlog_low < seq <= outage_high]
    inversions = sum(1 for a, b in itertools.pairwise(backlog_times) if b < a)
    confirmed = range(state["first_seq"], state["acked"] + 1)
    return {
        "sent": state["next_seq"] - state["first_seq"],
        "stored": sum(counts.values()),
        "lost": sum(1 for seq in confirmed if seq not in counts),
        "duplicated": sum(n - 1 for n in counts.values()),
        "still_buffered": state["buffer_depth"],
        "backlog_inversions": inversions,
    }


def main() -> int:
    """Cut the link, restore it, drain; print one Markdown table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cut-s", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--keepalive-s", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    topics = Topics(f"bench-{uuid.uuid4().hex[:8]}/streetsense/v1")
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="ss-link-") as work:
        root = Path(work)
        broker = persistent_mosquitto(root / "broker").start()
        proxy = FaultProxy("127.0.0.1", broker.port)
        settings = with_overrides(
            load_settings(None, environ={}),
            database={"url": url, "timescale": "off"},
            mqtt={"url": broker.url, "topic_prefix": topics.prefix},
            ingest={"metrics_port": 0, "auto_register": True},
        )
        ingest = IngestProcess(settings, "ingest-link", root / "ingest.log").start()
        config = agent_config(
            root / "agent.toml", proxy.url, topics,
            mqtt={"keepalive_s": args.keepalive_s, "backoff_max_s": 10.0},
            buffer={"drain_rate": 200.0, "resend_timeout_s": 30.0},
            driver={"event_rate": args.rate},
        )  # fmt: skip
        agent = AgentProcess(config)
        try:
            assert wait_log(ingest.log_path, "subscribed; ingesting", 30)
            agent.start()
            wait_for(lambda: agent.state()["acked"] > 0, 60, "ingest's first confirmation")
            proxy.blackhole()
            cut_at = time.monotonic()
            backlog_low = agent.state()["acked"]
            wait_for(lambda: agent.state()["link"] == "down", 3 * args.keepalive_s, "detection")
            detected_s = time.monotonic() - cut_at
            time.sleep(max(0.0, args.cut_s - detected_s))
            outage_high = agent.state()["next_seq"] - 1
            backlog = outage_high - agent.state()["acked"]
            proxy.restore()
            restored_at = time.monotonic()
            wait_for(lambda: agent.state()["acked"] >= outage_high, 20 * args.cut_s, "drain")
            drain_s = time.monotonic() - restored_at
            agent.stop()
            state = agent.state()
            figures = _figures(url, state, backlog_low, outage_high)
        finally:
            agent.kill()
            ingest.terminate()
            proxy.close()
            broker.stop()
    figures.update(detected_s=round(detected_s, 1), drain_s=round(drain_s, 1), backlog=backlog)
    log.info("link cut %.0f s: %s", args.cut_s, figures)
    sys.stdout.write(
        f"| link black-holed {args.cut_s:.0f} s, keepalive {args.keepalive_s} s, "
        f"{args.rate:g} readings/s | {figures['sent']:,} | {figures['stored']:,} "
        f"(+{figures['still_buffered']} buffered) | {figures['lost']} | {figures['duplicated']} "
        f"| detected in {detected_s:.1f} s (limit {1.5 * args.keepalive_s:g} s); backlog of "
        f"{backlog:,} drained in {drain_s:.1f} s, "
        f"{figures['backlog_inversions']} arrivals out of order |\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
