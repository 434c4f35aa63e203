"""Ingest's binary COPY into TimescaleDB: every reading stored once, compressed chunks included.

Run on a native TimescaleDB (STREETSENSE_TEST_TIMESCALE_URL); PGlite has no COPY, so there
they are skipped with that reason. The rows go through store.writes.ReadingWriter, the writer
ingest commits with (a direct COPY, and the staged COPY + merge once a batch holds duplicates),
and through the ingest service itself over the broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from harness.ingest import SITE, AckWatcher, Publisher, ingest_thread, register, wait_until
from harness.ingest import readings as device_readings
from store.reading_rows import ReadingRow, ReadingRows
from store.writes import ReadingWriter
from streetsense.config import Settings
from streetsense.topics import Topics
from tests.timescale.test_timescale import scalars, timescale_settings

pytestmark = [pytest.mark.timescale, pytest.mark.usefixtures("needs_copy")]
# Far enough back for chunks to be compressed by hand, inside the 400-day retention.
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=20)
RECEIVED = datetime.now(UTC)
SPOTS = 20


def gateway_rows(days: range, minutes: range) -> list[ReadingRow]:
    """Rows of 5 gateways with 20 spots each, one reading a minute, plus a lane counter."""
    rows: list[ReadingRow] = []
    for day in days:
        for minute in minutes:
            at = DAY + timedelta(days=day, minutes=minute)
            seq = day * 10_000 + minute
            for gateway in range(5):
                for spot in range(SPOTS):
                    observed = at + timedelta(seconds=spot)
                    value = float((minute + spot) % 2)
                    rows.append((f"gw{gateway}", "occupied", f"s{spot}", observed, RECEIVED,
                                 value, seq, False))  # fmt: skip
            for kind in ("vehicle_count", "mean_speed"):
                rows.append(("loop", kind, "l1", at, RECEIVED, float(minute % 7), seq, False))
    return rows


def write(conn: psycopg.Connection, writer: ReadingWriter, rows: list[ReadingRow]) -> int:
    """Commit rows as ingest does (encoded for a binary COPY); return how many were new."""
    with conn.transaction():
        return sum(writer.write(conn, ReadingRows(rows)).values())


def stored(conn: psycopg.Connection) -> tuple[int, int]:
    """Return (rows, distinct identities) in readings."""
    row = conn.execute(
        "SELECT count(*), count(DISTINCT (device_id, kind, sub_id, observed_at)) FROM readings"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def compress_all(conn: psycopg.Connection) -> int:
    """Compress (or recompress) every chunk of readings; return how many are compressed."""
    conn.execute("SELECT count(compress_chunk(c)) FROM show_chunks('readings') AS c")
    return int(
        scalars(
            conn,
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'readings' AND is_compressed",
        )[0]  # type: ignore[call-overload]
    )


def test_binary_copy_stores_every_reading_across_chunks(tsdb: psycopg.Connection) -> None:
    writer = ReadingWriter()
    rows = gateway_rows(range(3), range(0, 60, 3))
    assert write(tsdb, writer, rows) == len(rows) == 3 * 20 * (5 * SPOTS + 2)
    chunks = scalars(tsdb, "SELECT count(*) FROM show_chunks('readings')")
    assert chunks == [3]
    # The same batch again: the direct COPY meets the unique key, the staged merge skips all.
    assert write(tsdb, writer, rows) == 0
    assert stored(tsdb) == (len(rows), len(rows))


def test_duplicates_are_refused_on_compressed_and_partly_compressed_chunks(
    tsdb: psycopg.Connection,
) -> None:
    writer = ReadingWriter(staged_after_conflict=0)  # every batch tries the direct COPY first
    first = gateway_rows(range(2), range(0, 60, 2))
    assert write(tsdb, writer, first) == len(first)
    assert compress_all(tsdb) == 2
    assert write(tsdb, writer, first) == 0  # every one a duplicate of a compressed row
    # New minutes into the compressed chunks (they become partly compressed), with repeats.
    later = gateway_rows(range(2), range(1, 60, 2))
    half = len(later) // 2
    assert write(tsdb, writer, later[:half] + first[:500]) == half
    assert write(tsdb, writer, later) == len(later) - half
    assert write(tsdb, writer, first) + write(tsdb, writer, later) == 0
    assert compress_all(tsdb) == 2  # recompression folds the new rows in
    assert write(tsdb, writer, later) + write(tsdb, writer, first) == 0
    assert stored(tsdb) == (len(first) + len(later),) * 2


def test_ingest_writes_through_copy_and_refuses_resends_after_compression(
    tsdb: psycopg.Connection,
    settings: Settings,
    topics: Topics,
    timescale_url: str,
) -> None:
    on_timescale = timescale_settings(settings, timescale_url)
    devices = [f"dev{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    register(timescale_url, devices)
    try:
        # Recent, inside ingest's late-data window; the chunk is compressed by hand below.
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        packs = {d: [device_readings(d, s, 50, t0) for s in range(1, 1001, 50)] for d in devices}
        with ingest_thread(on_timescale) as service:
            acks = AckWatcher(on_timescale.mqtt.url, topics)
            publisher = Publisher(on_timescale.mqtt.url, topics)
            for device, batches in packs.items():
                for batch in batches:
                    publisher.send_readings(SITE, device, batch)
            assert wait_until(lambda: all(acks.acks.get(d) == 1000 for d in devices))
            assert compress_all(tsdb) >= 1
            for batch in packs[devices[0]]:  # the agent missed our ack: it sends all again
                publisher.send_readings(SITE, devices[0], batch)
            assert wait_until(
                lambda: service.metrics.value("streetsense_ingest_readings_duplicate_total") == 1000
            )
            publisher.close()
            acks.close()
        assert stored(tsdb) == (4000, 4000)
    finally:
        with psycopg.connect(timescale_url, autocommit=True) as conn:
            conn.execute("DELETE FROM device_state")
            conn.execute("DELETE FROM device_sequences")
