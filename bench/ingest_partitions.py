"""Ingest scaled out without `$share`: 1, 2, 3 partitioned processes on a 3-node NATS cluster.

Beside it, the same drain through a private Mosquitto with 1, 2, 3 processes in a `$share`
group (bench/ingest_throughput.py's backlog drain). Each run publishes the stream (paced C
publishers, 20-reading packs) while ingest's sessions are away, then starts the processes and
times the drain until every device's last reading is committed; lost = expected - stored.
On NATS each process reads every message and keeps its part (ingest.partition = "k/N"); with
`$share` the broker hands each message to one member. The NATS nodes, the processes, the
publishers and PostgreSQL share this machine's two cores.

    nice -n 10 .venv/bin/python bench/ingest_partitions.py [--rate 2000] [--seconds 5]
        [--processes 1,2,3] [--brokers nats,mosquitto]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_throughput import (
    PREFIX,
    Load,
    Progress,
    create_database,
    drop_database,
    start_ours,
)
from bench.proc import cpu_seconds
from harness.ingest_services import persistent_mosquitto
from harness.nats import NatsCluster

READY_S = 30.0


def start_partition(
    url: str, mqtt_url: str, part: str, client_id: str, log: Path
) -> subprocess.Popen[bytes]:
    """Start one ingest process on the NATS cluster for part `part` (k/N) and wait for it."""
    env = dict(os.environ)
    env.update(
        STREETSENSE_DATABASE_URL=url,
        STREETSENSE_DATABASE_TIMESCALE="off",
        STREETSENSE_MQTT_URL=mqtt_url,
        STREETSENSE_MQTT_PROTOCOL="3.1.1",
        STREETSENSE_MQTT_SHARED_GROUP="",
        STREETSENSE_MQTT_TOPIC_PREFIX=PREFIX,
        STREETSENSE_INGEST_PARTITION=part,
        STREETSENSE_INGEST_METRICS_PORT="0",
        STREETSENSE_INGEST_DEVICE_RATE_PER_S="0",
    )
    offset = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streetsense.cli", "ingest", "--client-id", client_id],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.time() + READY_S
    while time.time() < deadline:
        with log.open("rb") as text:
            text.seek(offset)
            if b"subscribed; ingesting" in text.read():
                return process
        time.sleep(0.1)
    raise TimeoutError(f"ingest {part} did not subscribe; see {log}")


def drain(
    url: str, load: Load, start: Callable[[int, str], subprocess.Popen[bytes]], processes: int
) -> tuple[float, int, float]:
    """Queue the stream for N ingest sessions while away, then time their drain.

    The drain is timed from the first message any process received (readings.received_at) to
    the poll that saw every device's last reading committed: processes start one after the
    other, and the first drains while the next starts.

    Returns:
        seconds of the drain, rows stored, CPU seconds of the ingest processes.
    """
    ids = [f"bench-part-{uuid.uuid4().hex[:8]}" for _ in range(processes)]
    for number, client_id in enumerate(ids):  # each process's session, then away
        process = start(number, client_id)
        process.terminate()
        process.wait(30)
    load.run()
    consumers, cpu_before = [], 0.0
    for number, client_id in enumerate(ids):
        consumers.append(start(number, client_id))
        # from its subscription on: the first drains while the next starts
        cpu_before += cpu_seconds(consumers[-1].pid)
    done = Progress(url, load, by_sequence=True).follow(timeout=load.count * 0.05 + 300)
    cpu = sum(cpu_seconds(c.pid) for c in consumers) - cpu_before
    for consumer in consumers:
        consumer.terminate()
        consumer.wait(30)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), extract(epoch FROM min(received_at)) FROM readings"
        ).fetchone()
    assert row is not None
    return done - float(row[1] or done), int(row[0]), cpu


def measure(broker: str, processes: int, port: int, cluster: NatsCluster | None,
            args: argparse.Namespace) -> dict[str, object]:  # fmt: skip
    """Run one drain; return its row of figures."""
    devices = [f"dev{i}" for i in range(args.devices)]
    name, url = create_database(devices)
    load = Load(port, devices, args.rate, args.seconds, args.pack)
    workdir = Path(tempfile.mkdtemp(prefix="ss-bench-part-"))
    try:
        if cluster is not None:
            mqtt_url = cluster.url

            def start(number: int, client_id: str) -> subprocess.Popen[bytes]:
                log = workdir / f"{client_id}.log"
                return start_partition(url, mqtt_url, f"{number + 1}/{processes}", client_id, log)

        else:

            def start(number: int, client_id: str) -> subprocess.Popen[bytes]:
                return start_ours(url, port, workdir / f"{client_id}.log", client_id)

        elapsed, rows, cpu = drain(url, load, start, processes)
        messages = load.count * len(devices)
        readings = messages * args.pack
        return {
            "broker": "NATS x3, partitions" if cluster is not None else "Mosquitto, $share",
            "processes": processes,
            "readings": readings,
            "publish_msg_s": round(messages / max(1e-9, load.finished_at - load.start)),
            "drain_s": round(elapsed, 2),
            "readings_s": round(readings / elapsed),
            "lost": readings - rows,
            "ingest_cpu_us": round(cpu / readings * 1e6, 2),
        }
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2_000, help="published messages per second")
    parser.add_argument("--seconds", type=float, default=5, help="duration of the publishing")
    parser.add_argument("--pack", type=int, default=20, help="readings per message")
    parser.add_argument("--devices", type=int, default=10, help="publishers (one per device)")
    parser.add_argument("--processes", default="1,2,3", help="ingest processes per run")
    parser.add_argument("--brokers", default="nats,mosquitto")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole set")
    args = parser.parse_args()
    names = "broker processes readings publish_msg_s drain_s readings_s lost ingest_cpu_us"
    columns = names.split()
    print(f"{args.rate:g} msg/s x {args.seconds:g} s published first, {args.pack} readings per "
          f"message, {args.devices} publishers; then drained")  # fmt: skip
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns), flush=True)
    root = Path(tempfile.mkdtemp(prefix="ss-bench-brokers-"))
    for _round in range(args.rounds):
        for broker in args.brokers.split(","):
            for processes in (int(p) for p in args.processes.split(",")):
                # a fresh broker per run: no session or stream of a previous run in the way
                if broker == "nats":
                    cluster = NatsCluster(root / f"nats-{uuid.uuid4().hex[:6]}").start()
                    stop = cluster.stop
                    port, nats = cluster.nodes[0].mqtt_port, cluster
                else:
                    mosquitto = persistent_mosquitto(root / f"mq-{uuid.uuid4().hex[:6]}").start()
                    stop = mosquitto.stop
                    port, nats = mosquitto.port, None
                try:
                    row = measure(broker, processes, port, nats, args)
                finally:
                    stop()
                print("| " + " | ".join(str(row[c]) for c in columns) + " |", flush=True)


if __name__ == "__main__":
    main()
