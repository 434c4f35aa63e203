"""`simulate run --backfill 28d` end to end: broker -> `streetsense ingest` -> PostgreSQL.

    .venv/bin/python bench/simulators_backfill.py [--days 28]

Starts a private Mosquitto, creates a scratch database on the test server
($STREETSENSE_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres),
loads the default city's registry, runs ingest in its own process, then publishes the history
and waits until every distinct reading is stored. Reports wall time and readings per second,
against the same history published to the broker alone in the same run (the baseline).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.services import Mosquitto, database_admin_url
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.mqtt import PacedPublisher
from simulators.packs import Outbound, SequenceBook
from simulators.registry_file import registry_tables
from simulators.runner import backfill
from store.migrate import migrate
from store.registry import store_registry
from streetsense.config import DatabaseSettings, load_settings, with_overrides
from streetsense.readings import decode_readings
from streetsense.registry import parse_registry
from streetsense.topics import DeviceTopic, Topics

REPO = Path(__file__).resolve().parents[1]


def scratch_database(admin: str) -> str:
    """Create and migrate a scratch database; return its URL."""
    name = f"ss_bench_sim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    with psycopg.connect(url) as conn:
        migrate(conn, DatabaseSettings(timescale="off"))
    return url


def drop_database(admin: str, url: str) -> None:
    """Drop the scratch database."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


def count(url: str) -> int:
    """Return how many readings the store holds."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


@contextmanager
def ingest_process(url: str, broker: str, prefix: str, window_s: int, log: Path) -> Iterator[None]:
    """Run `streetsense ingest` in its own process for the duration of the block."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env.update(
        STREETSENSE_DATABASE_URL=url,
        STREETSENSE_DATABASE_TIMESCALE="off",
        STREETSENSE_MQTT_URL=broker,
        STREETSENSE_MQTT_TOPIC_PREFIX=prefix,
        STREETSENSE_INGEST_LATE_WINDOW_S=str(window_s),
        STREETSENSE_INGEST_METRICS_PORT="0",
        PYTHONPATH=str(REPO),
    )
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "streetsense.cli", "ingest"],
            env=env, stdout=sink, stderr=sink, cwd=REPO,
        )  # fmt: skip
    try:
        time.sleep(3)  # let ingest subscribe before the first message
        yield
    finally:
        process.terminate()
        process.wait(60)


def keys_of(topics: Topics, keys: set[tuple[object, ...]]) -> Callable[[Outbound], None]:
    """Return a callback adding the reading keys of each published message to `keys`."""

    def remember(message: Outbound) -> None:
        parsed = topics.parse(message.topic)
        assert isinstance(parsed, DeviceTopic) and parsed.channel.stream is not None
        decoded = decode_readings(message.payload, parsed.device_id, parsed.channel.stream)
        keys.update((r.device_id, r.kind, r.sub_id, r.observed_at) for r in decoded.readings)

    return remember


def run(days: float, workdir: Path, url: str, broker: str) -> list[str]:
    """Publish the history twice (broker alone, then with ingest); return the table rows."""
    city, calendar = generate_city(CitySpec(seed=1)), Calendar(seed=1)
    with psycopg.connect(url) as conn:
        store_registry(conn, parse_registry(registry_tables(city)), "bench")
    prefix = "bench/streetsense/v1"
    settings = with_overrides(
        load_settings(None, environ={}), mqtt={"url": broker, "topic_prefix": prefix}
    )
    topics, keys = Topics(prefix), set[tuple[object, ...]]()
    end = time.time()
    start = end - days * 86_400
    with PacedPublisher(settings, role="baseline") as publisher:
        alone = backfill(
            city, calendar, Topics("bench-baseline/v1"), publisher, SequenceBook(),
            start=start, end=end, progress=False,
        )  # fmt: skip
    window_s = int((days + 1) * 86_400)
    with ingest_process(url, broker, prefix, window_s, workdir / "ingest.log"):
        began = time.monotonic()
        with PacedPublisher(settings, role="bench") as publisher:
            tally = backfill(
                city, calendar, topics, publisher, SequenceBook(),
                start=start, end=end, progress=False, on_message=keys_of(topics, keys),
            )  # fmt: skip
        published_s = time.monotonic() - began
        deadline = time.monotonic() + 1_800
        while count(url) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.5)
        stored_s, stored = time.monotonic() - began, count(url)
    return [
        f"| history | {days:g} days, {tally.readings:,} readings, {tally.messages:,} messages |",
        f"| baseline: to the broker alone | {alone.seconds:.1f} s |",
        f"| published with ingest running | {published_s:.1f} s |",
        f"| all stored in PostgreSQL | {stored_s:.1f} s ({stored / stored_s:,.0f} readings/s) |",
        f"| stored / distinct published | {stored:,} / {len(keys):,} |",
        f"| end to end / broker alone | {stored_s / alone.seconds:.2f}x the time |",
    ]


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=28.0)
    days = parser.parse_args().days
    admin = database_admin_url()
    with tempfile.TemporaryDirectory() as workdir:
        broker = Mosquitto(Path(workdir)).start()
        url = scratch_database(admin)
        try:
            rows = run(days, Path(workdir), url, broker.url)
        finally:
            broker.stop()
            drop_database(admin, url)
    print("| measure | value |")
    print("|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
