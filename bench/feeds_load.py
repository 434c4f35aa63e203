"""Open feeds under load: request rate and p99 with a city of 2,000 lots and 5,000 segments,
and the time from a committed reading to SSE and MQTT subscribers.

The baseline is `/health` served by the same process in the same run (the least work our
stack does per request); the lots endpoints are reported as a fraction of it, and DATEX II and
ParkAPI against `/v1/parking/lots` too. Lots have space categories (disabled spaces, EV
charging in garages, a disabled spot per kerbside zone) and every tenth has opening hours, so
the standards documents carry what a real city's would. The DATEX II status build is also
timed in-process against building the JSON lots page of all lots (`--builds N`).

    PYTHONPATH=. .venv/bin/python bench/feeds_load.py [--lots 2000] [--segments 5000]
        [--duration 10] [--connections 32] [--changes 30] [--builds 20]

Needs PostgreSQL ($STREETSENSE_TEST_DATABASE_URL, default postgres@127.0.0.1:5432), `wrk`
(apt-get install -y wrk) and `mosquitto`; creates and drops a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from feeds import datex2, formats, parkapi
from feeds.engine import FeedEngine
from feeds.table_version import table_version
from harness.scratch import scratch_database
from harness.services import Mosquitto, free_port
from store.registry import store_registry
from store.rollups import refresh
from store.writes import write_readings
from streetsense.config import load_settings, with_overrides
from streetsense.readings import Reading
from streetsense.registry import Registry, parse_registry

REPO = Path(__file__).resolve().parents[1]
SPOTS_PER_ON_STREET = 10


def city(lots: int, segments: int) -> Registry:
    """Return a registry: half garages with counters, half kerbside zones with spot sensors."""
    site = "bench"
    data: dict[str, list[dict[str, object]]] = {
        "site": [{"id": site, "name": "Bench"}],
        "lot": [],
        "device": [],
        "spot": [],
        "segment": [],
    }
    for i in range(lots):
        lat, lon = 56.10 + (i // 50) * 0.002, 10.15 + (i % 50) * 0.002
        on_street = i % 2 == 1
        data["lot"].append({
            "id": f"lot{i}", "site": site, "name": f"Lot {i}", "area": f"area{i % 20}",
            "kind": "on_street" if on_street else "off_street",
            "capacity": SPOTS_PER_ON_STREET if on_street else 300, "lat": lat, "lon": lon,
            "spaces": {"disabled": 1} if on_street else {"disabled": 6, "ev_charging": 10},
            **({"opening_hours": "Mo-Sa 06:00-23:00; Su 08:00-20:00"} if i % 10 == 0 else {}),
        })  # fmt: skip
        kind = "parking" if on_street else "counter"
        data["device"].append({"id": f"dev{i}", "site": site, "kind": kind, "lot": f"lot{i}"})
        if on_street:
            data["spot"] += [
                {"id": f"l{i}s{j}", "lot": f"lot{i}", "device": f"dev{i}", "sensor": f"s{j}",
                 "category": "disabled" if j == 0 else "general"}
                for j in range(SPOTS_PER_ON_STREET)
            ]  # fmt: skip
    for i in range(segments):
        lat, lon = 56.10 + (i // 100) * 0.001, 10.15 + (i % 100) * 0.001
        data["segment"].append({
            "id": f"seg{i}", "site": site, "name": f"Segment {i}", "direction": "n",
            "coordinates": [[lon, lat], [lon + 0.0008, lat]], "speed_limit_kmh": 50,
        })  # fmt: skip
        data["device"].append(
            {"id": f"tc{i}", "site": site, "kind": "traffic", "segment": f"seg{i}"}
        )
    return parse_registry(data)


def readings(registry: Registry, now: datetime) -> list[Reading]:
    """Return current parking state and two flow intervals per segment."""
    out: list[Reading] = []
    for n, lot in enumerate(registry.lots):
        if lot.kind == "off_street":
            out.append(Reading(f"dev{n}", "occupied_spaces", now - timedelta(seconds=60), 100.0))
    for spot in registry.spots:
        occupied = hash(spot.id) % 2 == 0
        out.append(
            Reading(spot.device, "occupied", now - timedelta(seconds=90), float(occupied),
                    sub_id=spot.sensor)
        )  # fmt: skip
    for i in range(len(registry.segments)):
        for minutes in (12, 8):
            at = now - timedelta(minutes=minutes)
            out += [
                Reading(f"tc{i}", "vehicle_count", at, 30.0, sub_id="L1"),
                Reading(f"tc{i}", "mean_speed", at, 40.0, sub_id="L1"),
            ]
    return out


def load_city(url: str, lots: int, segments: int) -> Registry:
    """Store the registry and readings, then refresh the rollups."""
    registry = city(lots, segments)
    now = datetime.now(UTC)
    rows = readings(registry, now)
    with psycopg.connect(url) as conn:
        store_registry(conn, registry, "bench")
        with conn.transaction():
            write_readings(conn, rows, [now] * len(rows))
        settings = with_overrides(
            load_settings(None, environ={}), database={"url": url, "timescale": "off"}
        )
        refresh(conn, settings)
    print(f"loaded {lots} lots, {segments} segments, {len(rows)} readings", file=sys.stderr)
    return registry


@contextmanager
def feeds_server(
    url: str, broker: str | None, prefix: str = "", extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run `streetsense feeds serve` in its own process (MQTT republish only with a broker);
    yield its base URL."""
    with feeds_process(url, broker, prefix, extra_env) as (base, _):
        yield base


@contextmanager
def feeds_process(
    url: str, broker: str | None, prefix: str = "", extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `streetsense feeds serve` in its own process; yield its base URL and the process."""
    port, metrics = free_port(), free_port()
    env = {
        **os.environ,
        "STREETSENSE_DATABASE_URL": url,
        "STREETSENSE_DATABASE_TIMESCALE": "off",
        # One load generator on loopback is one client: lift the per-client limits.
        "STREETSENSE_FEEDS_RATE_PER_MINUTE": "1000000000",
        "STREETSENSE_FEEDS_CONNECTIONS_PER_CLIENT": "0",
        "STREETSENSE_FEEDS_STREAMS_PER_CLIENT": "0",
        "STREETSENSE_FEEDS_METRICS_PORT": str(metrics),
        **(extra_env or {}),
    }
    if broker:
        env |= {"STREETSENSE_MQTT_URL": broker, "STREETSENSE_MQTT_TOPIC_PREFIX": prefix}
    else:
        env["STREETSENSE_FEEDS_REPUBLISH_MQTT"] = "false"
    command = [str(REPO / ".venv/bin/streetsense"), "--log-level", "WARNING", "feeds", "serve"]
    process = subprocess.Popen([*command, "--port", str(port)], env=env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200 and (
                    broker is None or _mqtt_connected(metrics)
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the feeds server did not become healthy")
            time.sleep(0.2)
        yield base, process
    finally:
        process.terminate()
        process.wait(15)


def _mqtt_connected(metrics_port: int) -> bool:
    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).text
    return "streetsense_feeds_mqtt_connected 1.0" in scraped


def wrk(url: str, duration: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    """Run wrk on one URL; return requests/s and p50/p99 latency in ms."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result = {"rps": rate, "non_2xx_3xx": float(errors.group(1)) if errors else 0.0}
    for label, key in (("50%", "p50"), ("99%", "p99")):
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output)
        assert match, output
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]
        result[key] = float(match.group(1)) * scale
    return result


def change_latency(
    url: str, base: str, broker: str, prefix: str, changes: int, lots: int, offset: int = 0
) -> dict[str, list[float]]:
    """Commit counter readings one by one; time their arrival at an SSE and an MQTT client."""
    sse: queue.Queue[tuple[str, int, float]] = queue.Queue()
    mqtt: queue.Queue[tuple[str, int, float]] = queue.Queue()
    stop = threading.Event()

    def read_stream() -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30.0)) as client,
                client.stream("GET", base + "/v1/parking/stream") as response,
            ):
                for line in response.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith('data: {"id"'):
                        lot = json.loads(line[6:])
                        sse.put((lot["id"], lot["occupied"], time.monotonic()))
        except httpx.HTTPError:
            if not stop.is_set():
                raise

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    subscriber = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)

    def on_message(_client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        lot = json.loads(message.payload)
        mqtt.put((lot["id"], lot["occupied"], time.monotonic()))

    subscriber.on_message = on_message
    host, port = broker.removeprefix("mqtt://").split(":")
    subscriber.connect(host, int(port))
    subscriber.subscribe(f"{prefix}/feeds/parking/#", qos=1)
    subscriber.loop_start()
    time.sleep(3)  # let the snapshot and retained messages pass
    for q in (sse, mqtt):
        while not q.empty():
            q.get_nowait()
    delays: dict[str, list[float]] = {"sse": [], "mqtt": []}
    with psycopg.connect(url) as conn:
        for n in range(changes):
            lot, value = n * 2 % lots, 150 + (n + offset) % 100  # even lots: garages
            with conn.transaction():
                reading = Reading(f"dev{lot}", "occupied_spaces", datetime.now(UTC), float(value))
                write_readings(conn, [reading], [datetime.now(UTC)])
            committed = time.monotonic()
            for name, q in (("sse", sse), ("mqtt", mqtt)):
                delays[name].append(_await(q, f"lot{lot}", value) - committed)
            time.sleep(0.2)
    stop.set()
    subscriber.loop_stop()
    subscriber.disconnect()
    return delays


def _await(q: queue.Queue[tuple[str, int, float]], lot: str, value: int) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = q.get(timeout=30)
        if got[0] == lot and got[1] == value:
            return got[2]
    raise TimeoutError(f"{lot}={value} never arrived")


def main() -> int:
    """Run the benchmark and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--changes", type=int, default=30)
    parser.add_argument("--builds", type=int, default=20)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:6]}/streetsense/v1"
    with tempfile.TemporaryDirectory() as tmp, scratch_database("ss_bench_feeds") as url:
        broker = Mosquitto(Path(tmp)).start()
        try:
            load_city(url, args.lots, args.segments)
            build_times(url, args.builds)
            with feeds_server(url, broker.url, prefix) as base:
                report(base, url, broker.url, prefix, args)
        finally:
            broker.stop()
    return 0


def build_times(url: str, builds: int) -> None:
    """Time building the DATEX II status, ParkAPI v3 and the JSON of every lot, in-process,
    from the same snapshot the server would hold."""
    settings = with_overrides(
        load_settings(None, environ={}), database={"url": url, "timescale": "off"}
    )
    engine = FeedEngine(settings)

    async def load() -> None:
        await engine._full()  # one snapshot, read as the service does, without its loop
        await engine._refresh_context()

    asyncio.run(load())
    engine._drop_connection()
    lots = engine.snapshot.lots
    now = datetime.now(UTC)
    version = table_version(lots)
    candidates: dict[str, Callable[[], bytes]] = {
        "JSON of every lot (lot_dict + orjson)": lambda: orjson.dumps(
            [formats.lot_dict(lot) for lot in lots]
        ),
        "DATEX II status (all lots)": lambda: datex2.status_document(
            lots, version, now, country="DK", publisher="Bench"
        ),
        "DATEX II table (all lots)": lambda: datex2.table_document(
            lots, version, now, country="DK", publisher="Bench", timezone="Europe/Copenhagen"
        ),
        "ParkAPI v3 parking sites (all lots)": lambda: orjson.dumps(parkapi.v3_sites(lots, now)),
    }
    timings = {}
    for name, build in candidates.items():
        build()  # warm caches (opening hours, imports)
        seconds = []
        for _ in range(builds):
            start = time.perf_counter()
            body = build()
            seconds.append(time.perf_counter() - start)
        timings[name] = (statistics.median(seconds) * 1000, max(seconds) * 1000, len(body))
    baseline = timings["JSON of every lot (lot_dict + orjson)"][0]
    print(f"\nbuild of {len(lots)} lots, in-process, median of {builds}\n")
    print("| document | median ms | max ms | vs JSON | bytes |")
    print("|---|---|---|---|---|")
    for name, (median, worst, size) in timings.items():
        print(f"| {name} | {median:.1f} | {worst:.1f} | {median / baseline:.2f} | {size} |")


def report(base: str, url: str, broker: str, prefix: str, args: argparse.Namespace) -> None:
    """Measure and print every figure."""
    gzip = {"Accept-Encoding": "gzip"}
    lots = httpx.get(base + "/v1/parking/lots", headers=gzip)
    datex = httpx.get(base + "/v1/parking/datex2/status", headers=gzip)
    few, many = 8, args.connections
    runs = [
        ("/health (baseline)", "/health", {}, many),
        ("/v1/parking/lots (default page of 100, gzip)", "/v1/parking/lots", gzip, many),
        ("/v1/parking/lots (default page of 100, gzip)", "/v1/parking/lots", gzip, few),
        ("/v1/parking/lots (default page, identity)", "/v1/parking/lots", {}, many),
        ("/v1/parking/lots?limit=1000 (gzip)", "/v1/parking/lots?limit=1000", gzip, many),
        ("/v1/parking/lots?format=geojson (all lots, gzip)", "/v1/parking/lots?format=geojson",
         gzip, many),
        ("/v1/parking/lots revalidation (304)", "/v1/parking/lots",
         {"If-None-Match": lots.headers["etag"], **gzip}, many),
        ("/v1/parking/lots?near=56.15,10.2&radius_m=1500",
         "/v1/parking/lots?near=56.15,10.2&radius_m=1500", gzip, many),
        ("/v1/traffic/segments (default page, gzip)", "/v1/traffic/segments", gzip, many),
        ("/v1/parking/lots?limit=1000&format=json (JSON, all lots)",
         "/v1/parking/lots?limit=1000", gzip, many),
        ("/v1/parking/datex2/status (all lots, gzip)", "/v1/parking/datex2/status", gzip, many),
        ("/v1/parking/datex2/status revalidation (304)", "/v1/parking/datex2/status",
         {"If-None-Match": datex.headers["etag"], **gzip}, many),
        ("/v1/parking/datex2/table (gzip)", "/v1/parking/datex2/table", gzip, many),
        ("/v1/parking/parkapi/v3/parking-sites (gzip)", "/v1/parking/parkapi/v3/parking-sites",
         gzip, many),
    ]  # fmt: skip
    wrk(base + "/v1/parking/lots", 2, many, gzip)  # warm-up, not reported
    results = [(name, c, wrk(base + path, args.duration, c, h)) for name, path, h, c in runs]
    baseline = results[0][2]["rps"]
    print(f"\nwrk -t2 -d{args.duration}s, {args.lots} lots, {args.segments} segments\n")
    print("| request | connections | req/s | vs baseline | p50 ms | p99 ms | non-2xx/3xx |")
    print("|---|---|---|---|---|---|---|")
    for name, connections, r in results:
        print(
            f"| {name} | {connections} | {r['rps']:.0f} | {r['rps'] / baseline:.2f} | "
            f"{r['p50']:.1f} | {r['p99']:.1f} | {r['non_2xx_3xx']:.0f} |"
        )
    idle = change_latency(url, base, broker, prefix, args.changes, args.lots)
    # The same again while wrk keeps the lots endpoint busy.
    seconds = int(args.changes * 0.5) + 10
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{few}", f"-d{seconds}s", "-H", "Accept-Encoding: gzip",
         base + "/v1/parking/lots"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    busy = change_latency(url, base, broker, prefix, args.changes, args.lots, args.changes)
    load.wait()
    print(f"\nchange -> subscriber, {args.changes} committed counter readings, one at a time\n")
    print("| channel | server | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for state, delays in (("idle", idle), (f"under wrk -c{few} load", busy)):
        for name, values in delays.items():
            ms = sorted(v * 1000 for v in values)
            p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
            print(f"| {name} | {state} | {statistics.median(ms):.0f} | {p95:.0f} | {ms[-1]:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
