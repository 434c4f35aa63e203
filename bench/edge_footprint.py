"""Edge agent footprint: peak RSS and CPU share of one core at 10 readings/s.

Targets (issue 3): peak RSS < 40 MB, CPU < 2 % of one core. Runs a real agent process against
a private Mosquitto with a peer that confirms every reading like ingest, so the buffer's whole
cycle (insert, publish, ack, delete) is measured. A bare Python with paho imported is measured
in the same run as the baseline.

    .venv/bin/python bench/edge_footprint.py --seconds 120
    .venv/bin/python bench/edge_footprint.py --seconds 120 --launcher

With --launcher the agent takes signed updates (fleet.release_key_file set), so
`streetsense-edge run` is the launcher and the agent its child: both are measured, and their sum.
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
from harness.releases import release_keys  # noqa: E402
from harness.services import Mosquitto  # noqa: E402
from streetsense.topics import Topics  # noqa: E402


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _measure(pids: list[int], seconds: float) -> list[tuple[float, float]]:
    time.sleep(3.0)  # start-up (imports, connect) is not the steady state
    cpu0, t0 = [cpu_seconds(pid) for pid in pids], time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return [
        (_peak_rss_mb(pid), 100 * (cpu_seconds(pid) - before) / elapsed)
        for pid, before in zip(pids, cpu0, strict=True)
    ]


def _pss_mb(pid: int) -> float:
    """Return the proportional set size: shared pages (libpython, libssl) split between users."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, f"the launcher should run one agent, runs {children}"
    return int(children[0])


def main() -> int:
    """Run the benchmark and print a Markdown table row set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second")
    parser.add_argument("--launcher", action="store_true", help="run under the A/B launcher")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        broker = Mosquitto(work / "mosquitto").start()
        topics = Topics("bench/streetsense/v1")
        peer = IngestPeer(broker.url, topics).start()
        baseline = subprocess.Popen(
            [sys.executable, "-c", "import paho.mqtt.client, sqlite3, time; time.sleep(3600)"]
        )
        fleet = {}
        if args.launcher:
            keys = release_keys(work / "keys")
            fleet = {"release_key_file": str(keys.public), "releases_dir": str(work / "rel")}
        config = agent_config(
            work / "agent.toml",
            broker.url,
            topics,
            mqtt={"keepalive_s": 30},
            status={"heartbeat_s": 60.0},
            driver={"event_rate": args.rate},
            fleet=fleet,
        )
        agent = AgentProcess(config).start()
        try:
            assert agent.process is not None
            pids = [agent.process.pid]
            if args.launcher:
                pids.append(_child(agent.process.pid))
            measured = _measure(pids, args.seconds)
            pss = sum(_pss_mb(pid) for pid in pids)
            base_rss = _peak_rss_mb(baseline.pid)
            state = agent.state()
        finally:
            agent.stop()
            baseline.kill()
            baseline.wait()
            peer.stop()
            broker.stop()
    confirmed = state["acked"] - state["first_seq"] + 1
    names = ["launcher", "agent (its child)"] if args.launcher else ["agent"]
    out = sys.stdout
    for name, (rss, cpu) in zip(names, measured, strict=True):
        out.write(
            f"| {name} at {args.rate:g} readings/s, {args.seconds:g} s | peak RSS {rss:.1f} MB | "
            f"CPU {cpu:.2f} % of one core | {confirmed} readings confirmed, buffer depth "
            f"{state['buffer_depth']} |\n"
        )
    if args.launcher:
        rss, cpu = (sum(m[0] for m in measured), sum(m[1] for m in measured))
        out.write(f"| both (target: RSS < 40 MB, CPU < 2 %) | {rss:.1f} MB RSS, {pss:.1f} MB PSS "
                  f"| {cpu:.2f} % | PSS counts pages the two share once |\n")  # fmt: skip
    out.write(f"| baseline: python + paho + sqlite3 imported, idle | peak RSS {base_rss:.1f} MB "
              "| | |\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
