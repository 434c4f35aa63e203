"""Ingest throughput and publish-to-commit latency: ingest vs the naive pipeline vs the ceiling.

All three consume the same paced QoS 1 stream, produced by C publishers (`mosquitto_pub -l`, one
per device), through a private Mosquitto started from deploy/mosquitto/streetsense.conf:
- ingest: `streetsense ingest` (one process);
- naive: paho callback, one INSERT per message, autocommit (what most tutorials write);
- ceiling: `mosquitto_sub -q 1 | psql -c '\\copy ...'`, raw messages, no decoding at all.
With `--backlog` the stream is published first, into the broker's queue for the consumer's
persistent session, and then drained: the consumer's own capacity, without the load generator
(10 publishers and their Python driver, about half a core) on the same two cores.
Each reading's observed time is its planned publish time, so publish-to-commit latency is read
from the database: a poller notes when each device's newest stored reading passes each time.

    .venv/bin/python bench/ingest_throughput.py [--rate 25000] [--pack 1] [--seconds 10]
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.proc import children, cpu_seconds
from harness.ingest_services import persistent_mosquitto
from ingest.service import APPLICATION_NAME
from store.migrate import migrate
from streetsense.config import DatabaseSettings

ADMIN = os.environ.get("STREETSENSE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres")
PREFIX = "bench/streetsense/v1"
SITE = "s1"
POLL_S = 0.02


def create_database(devices: list[str]) -> tuple[str, str]:
    """Create a fresh migrated database with the devices registered; return (name, url)."""
    name = f"ss_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(ADMIN, dbname=name)
    with psycopg.connect(url) as conn:
        migrate(conn, DatabaseSettings(timescale="off"))
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO sites VALUES (%s, %s)", (SITE, SITE))
        for device in devices:
            conn.execute(
                "INSERT INTO devices (device_id, site_id, kind) VALUES (%s, %s, 'parking')",
                (device, SITE),
            )
        conn.execute("CREATE TABLE raw_messages (topic text, payload text)")
    return name, url


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def sys_dropped(port: int) -> int:
    """Read the broker's count of dropped publishes from $SYS (retained, every sys_interval)."""
    out = subprocess.run(
        [
            "mosquitto_sub",
            "-p",
            str(port),
            "-C",
            "1",
            "-W",
            "8",
            "-t",
            "$SYS/broker/publish/messages/dropped",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    # Mosquitto publishes this topic only once something was dropped: absent means 0.
    return int(out) if out.isdigit() else 0


class Load:
    """Paced C publishers, one per device; message i of a device is due at start + i/rate."""

    def __init__(self, port: int, devices: list[str], rate: float, seconds: float, pack: int):
        self.devices = devices
        self.per_device_rate = rate / len(devices)
        self.count = int(self.per_device_rate * seconds)
        self.pack = pack
        self.start = time.time() + 1.0
        self.publishers = [
            subprocess.Popen(
                [
                    "mosquitto_pub",
                    "-p",
                    str(port),
                    "-q",
                    "1",
                    "-M",
                    "1000",
                    "-l",
                    "-t",
                    f"{PREFIX}/{SITE}/{device}/parking",
                ],
                stdin=subprocess.PIPE,
            )
            for device in devices
        ]
        self.finished_at = 0.0

    def planned(self, index: int) -> float:
        return self.start + index / self.per_device_rate

    def observed(self, seq: int) -> float:
        """Return the observed time carried by a device's reading number `seq` (0: none)."""
        if seq <= 0:
            return 0.0
        index, position = divmod(seq - 1, self.pack)
        return self.planned(index) + position * 1e-5

    def line(self, index: int) -> bytes:
        # One %-format per message: the load generator shares the two cores with the pipeline
        # under test, and 20 f-strings per message cost it a fifth of a core at 7,500 msg/s.
        first = index * self.pack + 1
        return self._template % (self.planned(index), *range(first, first + self.pack))

    @functools.cached_property
    def _template(self) -> bytes:
        records = ['{"bt":%.6f,"n":"occupied","vb":true,"seq":%d}']
        records += [
            f'{{"t":{j * 1e-5:.5f},"n":"occupied","vb":false,"seq":%d}}'
            for j in range(1, self.pack)
        ]
        return ("[" + ",".join(records) + "]\n").encode()

    def run(self) -> None:
        sent = 0
        while sent < self.count:
            due = min(self.count, int((time.time() - self.start) * self.per_device_rate) + 1)
            if due > sent:
                for publisher in self.publishers:
                    assert publisher.stdin is not None
                    publisher.stdin.write(b"".join(self.line(i) for i in range(sent, due)))
                    publisher.stdin.flush()
                sent = due
            time.sleep(0.005)
        for publisher in self.publishers:
            assert publisher.stdin is not None
            publisher.stdin.close()
        for publisher in self.publishers:
            publisher.wait(300)
        self.finished_at = time.time()


class CpuMeter:
    """CPU used by ingest (its process and any children) and by its database backend.

    Per reading this tells a machine's share of each, which throughput on a shared 2-core box
    cannot: everything there competes for the same cores.
    """

    def __init__(self, url: str, consumers: list[subprocess.Popen[bytes]]) -> None:
        self.pids = [c.pid for c in consumers]
        with psycopg.connect(url) as conn:
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                " AND datname = current_database()",
                (APPLICATION_NAME,),
            ).fetchall()
        self.backends = [int(row[0]) for row in found]
        self.start = self._sample()

    def _sample(self) -> tuple[float, float]:
        ours = sum(cpu_seconds(p) + sum(map(cpu_seconds, children(p))) for p in self.pids)
        return ours, sum(map(cpu_seconds, self.backends))

    def per_reading_us(self, readings: int) -> dict[str, float | str]:
        """CPU microseconds per reading since the meter started: ingest's, the database's."""
        ours, database = self._sample()
        if not self.backends:
            return {}
        return {
            "ingest_cpu_us": round((ours - self.start[0]) / readings * 1e6, 2),
            "db_cpu_us": round((database - self.start[1]) / readings * 1e6, 2),
        }


class Progress:
    """Poll each device's newest stored observation; derive throughput and latency."""

    def __init__(self, url: str, load: Load, *, by_sequence: bool) -> None:
        self.url = url
        self.load = load
        self.by_sequence = by_sequence
        self.samples: list[tuple[float, list[float]]] = []

    def newest(self, conn: psycopg.Connection) -> list[float]:
        if self.by_sequence:
            return self._newest_by_sequence(conn)
        # ORDER BY ... LIMIT 1, not max(): on a table without statistics yet the planner
        # aggregates every reading of the device for max().
        rows = conn.execute(
            "SELECT (SELECT extract(epoch FROM observed_at) FROM readings r "
            "WHERE r.device_id = d AND kind = 'occupied' AND sub_id = '' "
            "ORDER BY observed_at DESC LIMIT 1) "
            "FROM unnest(%s::text[]) AS d",
            (self.load.devices,),
        ).fetchall()
        return [float(row[0]) if row[0] is not None else 0.0 for row in rows]

    def _newest_by_sequence(self, conn: psycopg.Connection) -> list[float]:
        # ingest commits each device's contiguous sequence number with its readings. Reading
        # that row costs the database nothing; probing readings 50 times a second stepped over
        # every not yet committed index entry and took a fifth of a core from the pipeline.
        found = dict(
            conn.execute(
                "SELECT device_id, contiguous_seq FROM device_sequences WHERE device_id = ANY(%s)",
                (self.load.devices,),
            ).fetchall()
        )
        return [self.load.observed(int(found.get(d, 0))) for d in self.load.devices]

    def follow(self, timeout: float) -> float:
        """Poll until every device's last message is stored; return that time (or timeout)."""
        last = self.load.planned(self.load.count - 1)
        deadline = time.time() + timeout
        with psycopg.connect(self.url, autocommit=True) as conn:
            while time.time() < deadline:
                now = time.time()
                newest = self.newest(conn)
                self.samples.append((now, newest))
                if min(newest) >= last - 1e-4:
                    return now
                time.sleep(POLL_S)
        return float("nan")

    def latencies(self) -> list[float]:
        """Latency of every 100th message of each device: first poll that saw it, minus plan."""
        found = []
        for device in range(len(self.load.devices)):
            position = 0
            for index in range(0, self.load.count, 100):
                planned = self.load.planned(index)
                while position < len(self.samples) and self.samples[position][1][device] < (
                    planned - 1e-4
                ):
                    position += 1
                if position == len(self.samples):
                    break
                found.append(self.samples[position][0] - planned)
        return found


def start_ours(
    url: str, port: int, log: Path, client_id: str | None = None
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        STREETSENSE_DATABASE_URL=url,
        STREETSENSE_MQTT_URL=f"mqtt://127.0.0.1:{port}",
        STREETSENSE_MQTT_TOPIC_PREFIX=PREFIX,
        STREETSENSE_INGEST_METRICS_PORT="0",
        STREETSENSE_INGEST_DEVICE_RATE_PER_S="0",
        STREETSENSE_DATABASE_TIMESCALE="off",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streetsense.cli",
            "ingest",
            "--client-id",
            client_id or f"bench-{uuid.uuid4()}",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 20
    while "subscribed; ingesting" not in log.read_text() and time.time() < deadline:
        time.sleep(0.1)
    return process


def start_naive(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--naive-worker", url, str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    time.sleep(2.0)
    return process


def naive_worker(url: str, port: int) -> None:
    """The tutorial pipeline: paho callback, decode, one INSERT per message, autocommit."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from streetsense.kinds import Stream
    from streetsense.readings import decode_readings

    conn = psycopg.connect(url, autocommit=True)

    def on_message(_client: object, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[-2]
        readings = decode_readings(msg.payload, device, Stream.PARKING).readings
        values = sql.SQL(", ").join(sql.SQL("(%s, %s, '', %s, now(), %s, %s)") for _ in readings)
        params = [x for r in readings for x in (r.device_id, r.kind, r.observed_at, r.value, r.seq)]
        conn.execute(
            sql.SQL(
                "INSERT INTO readings (device_id, kind, sub_id, observed_at, received_at, "
                "value, seq) VALUES {} ON CONFLICT DO NOTHING"
            ).format(values),
            params,
        )

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"{PREFIX}/+/+/parking", qos=1)  # its data topics, not the retained acks
    client.loop_forever()


def run_ceiling(url: str, port: int, load: Load) -> tuple[float, int]:
    """Pipe mosquitto_sub into psql \\copy; return (seconds from first planned to done, rows)."""
    total = load.count * len(load.devices)
    command = (
        f"mosquitto_sub -p {port} -q 1 -i bench-ceiling -t '{PREFIX}/+/+/parking' -C {total}"
        " -F '%t\t%p'"
        f" | psql '{url}' -q -c '\\copy raw_messages (topic, payload) FROM STDIN'"
    )
    shell = subprocess.Popen(command, shell=True)
    time.sleep(1.0)
    thread = threading.Thread(target=load.run)
    thread.start()
    shell.wait(600)
    done = time.time()
    thread.join()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM raw_messages").fetchone()
    return done - load.start, int(row[0]) if row else 0


def drain_ours(
    url: str, port: int, load: Load, workdir: Path, processes: int, cpu: dict[str, float | str]
) -> tuple[float, int]:
    """Queue the whole stream for ingest's sessions while away, then time the drain."""
    client_ids = [f"bench-backlog-{uuid.uuid4()}" for _ in range(processes)]
    for number, client_id in enumerate(client_ids):  # the sessions, in the shared group
        start_ours(url, port, workdir / f"session{number}.log", client_id).terminate()
    load.run()  # published while ingest is away: all of it waits in the broker
    consumers = [
        start_ours(url, port, workdir / f"drain{number}.log", client_id)
        for number, client_id in enumerate(client_ids)
    ]
    started = time.time()  # once the first subscribed (the log says so within 0.1 s)
    meter = CpuMeter(url, consumers)
    progress = Progress(url, load, by_sequence=True)
    done = progress.follow(timeout=load.count * 0.05 + 120)
    cpu.update(meter.per_reading_us(load.count * len(load.devices) * load.pack))
    for consumer in consumers:
        consumer.terminate()
        consumer.wait(30)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return done - started, int(row[0]) if row else 0


def drain_ceiling(url: str, port: int, load: Load) -> tuple[float, int]:
    """The ceiling's pipe, draining the same backlog from a persistent session."""
    total = load.count * len(load.devices)
    topic = f"{PREFIX}/+/+/parking"
    # -W 1: subscribe, wait a second, leave the session behind to queue the stream
    subprocess.run(
        [
            "mosquitto_sub",
            "-p",
            str(port),
            "-q",
            "1",
            "-c",
            "-i",
            "bench-drain",
            "-t",
            topic,
            "-W",
            "1",
        ],
        check=False,
        capture_output=True,
    )
    load.run()
    started = time.time()
    subprocess.run(
        f"mosquitto_sub -p {port} -q 1 -c -i bench-drain -t '{topic}' -C {total} -F '%t\t%p'"
        f" | psql '{url}' -q -c '\\copy raw_messages (topic, payload) FROM STDIN'",
        shell=True,
        check=True,
        timeout=600,
    )
    done = time.time()
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM raw_messages").fetchone()
    return done - started, int(row[0]) if row else 0


def measure(pipeline: str, port: int, args: argparse.Namespace) -> dict[str, float | str]:
    devices = [f"dev{i}" for i in range(args.devices)]
    name, url = create_database(devices)
    seconds = args.naive_messages / args.rate if pipeline == "naive" else args.seconds
    load = Load(port, devices, args.rate, seconds, args.pack)
    dropped_before = sys_dropped(port)
    workdir = Path(os.environ.get("BENCH_LOGS") or tempfile.mkdtemp(prefix="ss-bench-"))
    try:
        result: dict[str, float | str] = {"latency_p50_ms": "n/a", "latency_p99_ms": "n/a"}
        if args.backlog and pipeline in ("ingest", "ceiling"):
            if pipeline == "ingest":
                elapsed, rows = drain_ours(url, port, load, workdir, args.processes, result)
            else:
                elapsed, rows = drain_ceiling(url, port, load)
        elif pipeline == "ceiling":
            elapsed, rows = run_ceiling(url, port, load)
        else:
            consumers = [
                (start_ours if pipeline == "ingest" else start_naive)(
                    url, port, workdir / f"{pipeline}{number}.log"
                )
                for number in range(args.processes if pipeline == "ingest" else 1)
            ]
            meter = CpuMeter(url, consumers) if pipeline == "ingest" else None
            progress = Progress(url, load, by_sequence=pipeline == "ingest")
            thread = threading.Thread(target=load.run)
            thread.start()
            done = progress.follow(timeout=seconds * 40 + 60)
            thread.join()
            cpu = meter.per_reading_us(load.count * len(devices) * args.pack) if meter else {}
            for consumer in consumers:
                consumer.terminate()
                consumer.wait(30)
            elapsed = done - load.start
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM readings").fetchone()
            rows = int(row[0]) if row else 0
            latencies = sorted(progress.latencies())
            result = {"latency_p50_ms": "n/a", "latency_p99_ms": "n/a", **cpu}
            if latencies:
                result |= {
                    "latency_p50_ms": round(1000 * statistics.median(latencies)),
                    "latency_p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))]),
                }
        messages = load.count * len(devices)
        expected = messages * (1 if pipeline == "ceiling" else args.pack)
        offered = messages / max(1e-9, load.finished_at - load.start)
        result.update(
            pipeline=pipeline
            if pipeline != "ingest" or args.processes == 1
            else f"ingest x{args.processes}",
            messages=messages,
            offered_msg_s=round(offered),
            msg_s=round(messages / elapsed),
            readings_s=round(messages * args.pack / elapsed),
            lost=expected - rows,
            broker_dropped=sys_dropped(port) - dropped_before,
        )
        return result
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25_000, help="offered messages per second")
    parser.add_argument("--pack", type=int, default=1, help="readings per message")
    parser.add_argument("--seconds", type=float, default=10, help="duration of the offered load")
    parser.add_argument(
        "--naive-messages", type=int, default=10_000, help="fewer: it falls far behind"
    )
    parser.add_argument("--devices", type=int, default=10, help="publishers (one per device)")
    parser.add_argument("--pipelines", default="ingest,naive,ceiling")
    parser.add_argument(
        "--backlog", action="store_true", help="queue the stream first, then time the drain"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="ingest processes sharing the subscription"
    )
    parser.add_argument("--naive-worker", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_worker:
        naive_worker(args.naive_worker[0], int(args.naive_worker[1]))
        return
    columns = "pipeline messages offered_msg_s msg_s readings_s latency_p50_ms latency_p99_ms"
    columns += " lost broker_dropped ingest_cpu_us db_cpu_us"
    names = columns.split()
    print(
        f"rate {args.rate:g} msg/s offered, {args.pack} reading(s) per message, "
        f"{args.devices} publishers" + (", drained from a backlog" if args.backlog else "")
    )
    print("| " + " | ".join(names) + " |")
    print("|" + "---|" * len(names), flush=True)
    broker = persistent_mosquitto(Path(tempfile.mkdtemp(prefix="ss-bench-mq-"))).start()
    rows = []
    try:
        for pipeline in args.pipelines.split(","):
            rows.append(measure(pipeline, broker.port, args))
            print("| " + " | ".join(str(rows[-1].get(c, "")) for c in names) + " |", flush=True)
    finally:
        broker.stop()
    by = {str(r["pipeline"]): r for r in rows}
    if "ingest" in by and "ceiling" in by:
        print(
            f"ingest / ceiling: {float(by['ingest']['msg_s']) / float(by['ceiling']['msg_s']):.2f}"
        )
    if "ingest" in by and "naive" in by:
        print(f"ingest / naive: {float(by['ingest']['msg_s']) / float(by['naive']['msg_s']):.2f}")


if __name__ == "__main__":
    main()
