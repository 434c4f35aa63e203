"""Edge agent footprint: peak RSS and CPU share of one core at 10 readings/s.

Targets (issue 3): peak RSS < 40 MB, CPU < 2 % of one core. Runs a real agent process against
a private Mosquitto with a peer that confirms every reading like ingest, so the buffer's whole
cycle (insert, publish, ack, delete) is measured. A bare Python with paho imported is measured
in the same run as the baseline.

    .venv/bin/python bench/edge_footprint.py --seconds 120
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.proc import cpu_seconds  # noqa: E402
from harness.edge import AgentProcess, IngestPeer, agent_config  # noqa: E402
from harness.services import Mosquitto  # noqa: E402
from streetsense.topics import Topics  # noqa: E402


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(pid: int, seconds: float) -> tuple[float, float]:
    time.sleep(3.0)  # start-up (imports, connect) is not the steady state
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    share = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return _peak_rss_mb(pid), share


def main() -> int:
    """Run the benchmark and print a Markdown table row set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        broker = Mosquitto(work / "mosquitto").start()
        topics = Topics("bench/streetsense/v1")
        peer = IngestPeer(broker.url, topics).start()
        baseline = subprocess.Popen(
            [sys.executable, "-c", "import paho.mqtt.client, sqlite3, time; time.sleep(3600)"]
        )
        config = agent_config(
            work / "agent.toml",
            broker.url,
            topics,
            mqtt={"keepalive_s": 30},
            status={"heartbeat_s": 60.0},
            driver={"event_rate": args.rate},
        )
        agent = AgentProcess(config).start()
        try:
            assert agent.process is not None
            rss, cpu = _measure(agent.process.pid, args.seconds)
            base_rss = _peak_rss_mb(baseline.pid)
            state = agent.state()
        finally:
            agent.stop()
            baseline.kill()
            baseline.wait()
            peer.stop()
            broker.stop()
    confirmed = state["acked"] - state["first_seq"] + 1
    sys.stdout.write(
        f"| agent at {args.rate:g} readings/s, {args.seconds:g} s | peak RSS {rss:.1f} MB "
        f"(target < 40) | CPU {cpu:.2f} % of one core (target < 2) | "
        f"{confirmed} readings confirmed, buffer depth {state['buffer_depth']} |\n"
        f"| baseline: python + paho + sqlite3 imported, idle | peak RSS {base_rss:.1f} MB | | |\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
