"""One alert evaluation over a large city: 2,000 lots, 5,000 segments, 20,000 devices.

Builds the city in a scratch database (registry, six hours of spot events, one hour of
traffic, device health, a speed forecast run and an occupancy-rate run), then times
`alerts.engine.run_once` with every default rule: the first evaluation (which opens the
alerts of the stuck, low and silent devices), steady evaluations of every rule (nothing
changes), the service's rounds a minute apart (rules with `every_min` skipped until due), and a
storm (a district's devices go silent at once). The baseline is reading the inputs alone
(`Snapshot` with every rule's query), so the lifecycle's share shows.

With `--brin`, instead: the traffic incident rule's reads on readings' BRIN index without and
with `autosummarize` (migration 051), the same city built twice in a private cluster with
autovacuum on (this machine's server runs without), readings written in batches by receive
time as ingest commits them: right after the write, once autovacuum has had its rounds, and
after a VACUUM.

    nice -n 10 .venv/bin/python bench/alerts_scale.py [--lots 2000] [--segments 5000]
        [--devices 20000] [--repeat 5] [--traffic-every-min 1] [--brin]

Needs PostgreSQL ($STREETSENSE_TEST_DATABASE_URL, default postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import psycopg
from psycopg import sql

from alerts.engine import run_once
from alerts.evaluate import evaluate
from alerts.rules import RuleSet, load_rules
from alerts.snapshot import Snapshot
from harness.ingest import wait_until
from harness.postgres import PrivateCluster, server_bindir
from harness.scratch import scratch_database
from harness.services import database_admin_url
from store import rollups
from store.device_state import DeviceStateUpdate, upsert_device_state
from store.forecasts import Run, write_run
from store.registry import store_registry
from store.writes import write_readings
from streetsense.config import load_settings, with_overrides
from streetsense.readings import Reading
from streetsense.registry import parse_registry

SPOTS = 10
AREAS = ("old-town", "business", "harbour", "riverside", "north", "stadium")


Entries = dict[str, list[dict[str, object]]]


def registry(lots: int, segments: int, devices: int) -> tuple[Entries, list[str]]:
    """Return registry entries: half the lots with spot gateways, half with counters, one
    counter per segment, and lamps for the remaining devices."""
    site = "bench"
    e: Entries = {"site": [{"id": site, "name": "Bench"}], "lot": [], "device": [],
                  "spot": [], "segment": []}  # fmt: skip
    for i in range(lots):
        street = i % 2 == 0
        e["lot"].append({"id": f"lot{i}", "site": site, "name": f"Lot {i}", "area": AREAS[i % 6],
                         "kind": "on_street" if street else "off_street",
                         "capacity": SPOTS if street else 200, "lat": 56.0,
                         "lon": 10.0})  # fmt: skip
        kind = "parking" if street else "counter"
        e["device"].append({"id": f"p{i}", "site": site, "kind": kind, "lot": f"lot{i}"})
        if street:
            e["spot"] += [{"id": f"l{i}s{j}", "lot": f"lot{i}", "device": f"p{i}",
                           "sensor": f"s{j}"} for j in range(SPOTS)]  # fmt: skip
    for i in range(segments):
        e["segment"].append({"id": f"seg{i}", "site": site, "name": f"Road {i}",
                             "area": AREAS[i % 6], "speed_limit_kmh": 50, "capacity_vph": 1800,
                             "coordinates": [[10.0, 56.0], [10.01, 56.0]]})  # fmt: skip
        e["device"].append({"id": f"t{i}", "site": site, "kind": "traffic", "segment": f"seg{i}"})
    for i in range(max(devices - lots - segments, 0)):
        e["device"].append({"id": f"lamp{i}", "site": site, "kind": "light",
                            "segment": f"seg{i % segments}"})  # fmt: skip
    return e, [str(d["id"]) for d in e["device"]]


def traffic(readings: list[Reading], received: list[datetime], args: argparse.Namespace,
            now: datetime, rng: np.random.Generator) -> None:  # fmt: skip
    """Add one hour of traffic on two lanes of every segment, counted as the edge agents do
    (every minute by default)."""
    every = timedelta(minutes=args.traffic_every_min)
    counted = int(timedelta(hours=1) / every)
    newest = datetime.fromtimestamp(now.timestamp() // every.total_seconds()
                                    * every.total_seconds(), UTC) - every  # fmt: skip
    vehicles = 60.0 * args.traffic_every_min / 5
    # oldest first, every segment's interval together: the order ingest writes them in
    for k in reversed(range(counted)):
        at = newest - every * k
        for i in range(args.segments):
            for lane in ("l1", "l2"):
                readings += [Reading(f"t{i}", "vehicle_count", at,
                                     float(rng.poisson(vehicles)), lane),
                             Reading(f"t{i}", "mean_speed", at, float(rng.normal(45, 4)), lane),
                             Reading(f"t{i}", "detector_occupancy", at, float(rng.uniform(5, 15)),
                                     lane)]  # fmt: skip
                received += [at + every] * 3


def write_in_batches(
    conn: psycopg.Connection,
    readings: list[Reading],
    received: list[datetime],
    *,
    by_receive_time: bool,
) -> None:
    """Write readings in one transaction, or as ingest commits them: each receive time's
    batch on its own."""
    if not by_receive_time:
        with conn.transaction():
            write_readings(conn, readings, received)
        return
    batches: dict[datetime, list[Reading]] = {}
    for reading, moment in zip(readings, received, strict=True):
        batches.setdefault(moment, []).append(reading)
    for moment, batch in sorted(batches.items()):
        with conn.transaction():
            write_readings(conn, batch, [moment] * len(batch))


def fill(conn: psycopg.Connection, args: argparse.Namespace, now: datetime) -> list[str]:
    """Store the city and its recent data; return the device ids."""
    entries, ids = registry(args.lots, args.segments, args.devices)
    store_registry(conn, parse_registry(entries), "bench")
    conn.commit()
    rng = np.random.default_rng(1)
    readings: list[Reading] = []
    received: list[datetime] = []
    for i in range(0, args.lots, 2):  # six hours of spot events and hourly heartbeats
        for j in range(SPOTS):
            stuck = i % 50 == 0 and j == 0
            for minute in range(0, 360, 60 if stuck else 45):
                at = now - timedelta(minutes=360 - minute)
                value = 1.0 if stuck else float(rng.integers(0, 2))
                readings.append(Reading(f"p{i}", "occupied", at, value, f"s{j}"))
                received.append(at)
    for i in range(1, args.lots, 2):
        at = now - timedelta(minutes=2)
        readings.append(Reading(f"p{i}", "occupied_spaces", at, float(rng.integers(0, 210))))
        received.append(at)
    step = timedelta(minutes=5)
    last = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC) - step
    traffic(readings, received, args, now, rng)
    # the same times of week in the four weeks before, which the traffic rule compares with;
    # refreshed first, alone, so the lots' occupancy is not rebuilt over four weeks
    past: list[Reading] = []
    for week in range(1, 5):
        for i in range(args.segments):
            for k in range(-3, 7):  # the judged steps and the band's shift either side
                at = last - step * k - timedelta(weeks=week)
                past += [Reading(f"t{i}", "vehicle_count", at, 60.0, "l1"),
                         Reading(f"t{i}", "mean_speed", at, 45.0, "l1")]  # fmt: skip
    settings = with_overrides(load_settings(None, environ={}), database={"timescale": "off"})
    with conn.transaction():
        write_readings(conn, past, [r.observed_at + step for r in past])
    conn.autocommit = True
    rollups.refresh(conn, settings, until=now, since=now - timedelta(weeks=4, hours=1))
    conn.autocommit = False
    write_in_batches(conn, readings, received, by_receive_time=args.brin)
    conn.autocommit = True
    rollups.refresh(conn, settings, until=now, since=now - timedelta(hours=7))
    conn.autocommit = False
    health = []
    for n, device in enumerate(ids):
        status = {"battery": 3.0 if n % 400 == 0 else 3.9, "buffer_depth": float(n % 7),
                  "buffer_dropped": 0.0}  # fmt: skip
        health.append(DeviceStateUpdate(device, "bench", now - timedelta(minutes=1), True,
                                        now - timedelta(minutes=1), status, now, 1, 0))  # fmt: skip
    with conn.transaction():
        upsert_device_state(conn, health)
    # a run whose data ended before every minute the incident rule reads (12 minutes)
    data_end = last - 4 * step
    speed_ids = [f"seg{i}" for i in range(args.segments)]
    mean = np.full((args.segments, 36), 45.0)
    with conn.transaction():
        speed_run = Run("speed", 300, now, data_end - timedelta(days=28), data_end, 36, "bench")
        write_run(conn, speed_run, speed_ids, mean, mean - 8, mean + 8,
                  ["bench"] * args.segments)  # fmt: skip
        lot_ids = [f"lot{i}" for i in range(args.lots)]
        rate = np.full((args.lots, 96), 0.6)
        rate_end = datetime.fromtimestamp(now.timestamp() // 900 * 900, UTC)
        write_run(conn, Run("occupancy_rate", 900, now, rate_end - timedelta(days=28), rate_end,
                            96, "bench"), lot_ids, rate, rate - 0.1, rate + 0.1,
                  ["bench"] * args.lots)  # fmt: skip
    conn.commit()
    return ids


def silence(conn: psycopg.Connection, devices: list[str], at: datetime) -> None:
    """Mark devices last seen at `at` (and every other one seen just now)."""
    with conn.transaction():
        conn.execute(
            "UPDATE device_state SET last_seen_at = %s WHERE device_id = ANY(%s)", (at, devices)
        )


INCIDENT_RULE = "traffic-incident"
# Autovacuum serves a BRIN index's summarization requests in its rounds (a minute apart by
# default); the wait ends as soon as every filled range of readings is summarized.
SUMMARIZED_WITHIN_S = 300.0


def incident_inputs_s(url: str, rules: RuleSet, now: datetime, repeat: int) -> list[float]:
    """Time the traffic incident rule's reads and conditions alone, `repeat` times."""
    rule = next(r for r in rules.rules if r.name == INCIDENT_RULE)
    times = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(repeat):
            began = time.perf_counter()
            with conn.transaction():
                evaluate(rule, Snapshot(conn, now))
            times.append(time.perf_counter() - began)
    return times


def unsummarized_ranges(url: str) -> int:
    """Return how many block ranges of readings_observed_brin have no summary (pageinspect)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        row = conn.execute(
            "SELECT ceil(pg_relation_size('readings') / 8192.0 / 128)::int, count(*)"
            " FROM brin_revmap_data(get_raw_page('readings_observed_brin', 1)) AS m(pages)"
            " WHERE pages <> '(0,0)'::tid"
        ).fetchone()
    return int(row[0]) - int(row[1]) if row else -1


def brin_comparison(args: argparse.Namespace, rules: RuleSet, now: datetime) -> dict[str, object]:
    """Build the city without and with autosummarize; time the incident rule's reads."""
    out: dict[str, object] = {}
    # Autovacuum's rounds every second stand for a city's ingest, which fills a few ranges a
    # minute between rounds a minute apart: the bench writes an hour in minutes, and the
    # queue of summarization requests (256, both BRIN indexes) would overflow at the default.
    settings = {"autovacuum": "on", "autovacuum_naptime": "1"}
    waited = SUMMARIZED_WITHIN_S
    with PrivateCluster(server_bindir(database_admin_url()), settings=settings) as cluster:
        for label, option in (("with_autosummarize", "on"), ("without", "off")):
            with scratch_database("ss_bench_brin", admin_url=cluster.url) as url:
                with psycopg.connect(url) as conn:
                    # migration 051 turned it on; "off" is the index as before it
                    conn.execute(
                        sql.SQL(
                            "ALTER INDEX readings_observed_brin SET (autosummarize = {})"
                        ).format(sql.SQL(option))
                    )
                    # A city's readings table grows by under 20% between its own vacuums;
                    # this one would be vacuumed after every write, hiding the difference.
                    # Analyzed it is, as a city's is: the planner then reads the newest
                    # minutes through the BRIN index (without statistics it scans the table).
                    conn.execute(
                        "ALTER TABLE readings SET (autovacuum_vacuum_insert_threshold = -1)"
                    )
                    conn.commit()
                    built = time.perf_counter()
                    fill(conn, args, now)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("ANALYZE readings")  # statistics only: no range is summarized
                written = time.perf_counter()
                print(f"{label}: city built in {written - built:.0f} s", file=sys.stderr)
                fresh = incident_inputs_s(url, rules, now, args.repeat)
                pending = unsummarized_ranges(url)
                if option == "on":  # the newest range fills still: it waits for the next
                    summarized = partial(lambda u: unsummarized_ranges(u) <= 1, url)
                    wait_until(summarized, SUMMARIZED_WITHIN_S, 1.0)
                    waited = time.perf_counter() - written
                else:  # as long after the write as the other took to be summarized
                    time.sleep(max(0.0, waited - (time.perf_counter() - written)))
                left = unsummarized_ranges(url)
                settled = incident_inputs_s(url, rules, now, args.repeat)
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("VACUUM readings")
                    pages = conn.execute("SELECT pg_relation_size('readings') / 8192").fetchone()
                vacuumed = incident_inputs_s(url, rules, now, args.repeat)
                out[label] = {
                    "fresh_s_median": round(statistics.median(fresh), 3),
                    "after_wait_s_median": round(statistics.median(settled), 3),
                    "after_vacuum_s_median": round(statistics.median(vacuumed), 3),
                    "waited_s": round(waited),
                    "unsummarized_ranges_fresh": pending,
                    "unsummarized_ranges_after_wait": left,
                    "heap_pages": pages[0] if pages else None,
                }
        log = cluster.log.read_text(errors="replace")
        out["summarization_requests_not_recorded"] = log.count("was not recorded")
    return out


def main() -> int:
    """Build the city, time the evaluations, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lots", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--traffic-every-min", type=int, default=1,
                        help="the traffic detectors' interval (the edge agents count every "
                        "minute; 5 for older loops)")  # fmt: skip
    parser.add_argument("--brin", action="store_true",
                        help="time the incident rule's reads without and with the BRIN "
                        "index's autosummarize (private cluster, autovacuum on)")  # fmt: skip
    args = parser.parse_args()
    rules = load_rules(None)
    now = datetime.now(UTC).replace(microsecond=0)
    if args.brin:
        print(json.dumps(brin_comparison(args, rules, now), indent=1))
        return 0
    with scratch_database("ss_bench_alerts") as url, psycopg.connect(url) as conn:
        built = time.perf_counter()
        ids = fill(conn, args, now)
        print(f"city built in {time.perf_counter() - built:.0f} s", file=sys.stderr)
        with psycopg.connect(url, autocommit=True) as run_conn:
            reads = []
            per_rule: dict[str, list[float]] = {}
            for _ in range(args.repeat):
                started = time.perf_counter()
                with run_conn.transaction():
                    snap = Snapshot(run_conn, now)
                    for rule in rules.rules:
                        began = time.perf_counter()
                        evaluate(rule, snap)
                        per_rule.setdefault(rule.name, []).append(time.perf_counter() - began)
                reads.append(time.perf_counter() - started)
            last_run: dict[str, datetime] = {}
            first = run_once(run_conn, rules, now, "UTC", last_run)
            # every rule, every time: what the 2 s target is about
            steady = [run_once(run_conn, rules, now + timedelta(seconds=k + 1), "UTC").seconds
                      for k in range(args.repeat)]  # fmt: skip
            # the service's rounds a minute apart: rules with every_min wait until due
            rounds = [run_once(run_conn, rules, now + timedelta(minutes=k + 1), "UTC",
                               last_run).seconds for k in range(args.repeat)]  # fmt: skip
            district = [d for d in ids if d.startswith("lamp")][:500]
            silence(conn, district, now - timedelta(hours=1))
            storm = run_once(run_conn, rules, now + timedelta(seconds=30), "UTC")
            outbox = run_conn.execute("SELECT count(*) FROM alert_events").fetchone()
            active = run_conn.execute(
                "SELECT rule, count(*) FROM alerts WHERE state = 'firing' GROUP BY 1 ORDER BY 1"
            ).fetchall()
    result = {
        "lots": args.lots, "segments": args.segments, "devices": len(ids),
        "traffic_every_min": args.traffic_every_min,
        "inputs_only_s_median": round(statistics.median(reads), 3),
        "first_evaluation_s": round(first.seconds, 3),
        "steady_evaluation_s_median": round(statistics.median(steady), 3),
        "steady_evaluation_s_max": round(max(steady), 3),
        "service_round_s_median": round(statistics.median(rounds), 3),
        "storm_500_offline_s": round(storm.seconds, 3),
        "storm_fired": storm.outcomes["device-offline"].fired,
        "events_total": outbox[0] if outbox else 0,
        "firing_by_rule": dict(active),
        "inputs_by_rule_s_median": {k: round(statistics.median(v), 3)
                                    for k, v in per_rule.items()},
        "lifecycle_share_of_steady": round(
            1 - statistics.median(reads) / statistics.median(steady), 3),
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
