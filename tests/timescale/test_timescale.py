"""TimescaleDB: the schema uses its features, and rollups give the plain PostgreSQL numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest

from store.export import ExportRequest, export
from store.registry import store_registry
from store.revisions import Revisions, write_revisions
from store.rollup_invalidations import note_late_commit
from store.rollups import refresh
from store.rollups_writes import insert_readings
from store.writes import write_readings
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading
from tests.store.support import at, city, load_city, spot, write
from tests.store.test_late_commit import LATE_RECEIVED, WATERMARK, stalled_batch
from tests.store.test_late_data import first_batch

pytestmark = pytest.mark.timescale

# readings' compression (migration 009): (column, segmentby index, orderby index)
COMPRESSION = [
    ("device_id", 1, None),
    ("kind", 2, None),
    ("sub_id", None, 1),
    ("observed_at", None, 2),
]
ROLLUPS = ("occupancy_5m", "occupancy_1h", "occupancy_1d", "flow_5m", "flow_1h", "flow_1d")
COLUMNS = {
    "occupancy": "lot_id, bucket, occupied, capacity, occupancy, samples",
    "flow": "segment_id, bucket, vehicle_count, mean_speed, detector_occupancy, samples",
}


def scalars(conn: psycopg.Connection, query: str) -> list[object]:
    """Return the first column of a query's rows."""
    return [row[0] for row in conn.execute(query)]


def test_schema_uses_timescale_features(tsdb: psycopg.Connection) -> None:
    hypertables = scalars(tsdb, "SELECT hypertable_name FROM timescaledb_information.hypertables")
    assert {"readings", "occupancy_5m", "occupancy_1h", "occupancy_1d"} <= set(hypertables)
    caggs = scalars(tsdb, "SELECT view_name FROM timescaledb_information.continuous_aggregates")
    assert sorted(caggs) == ["flow_lanes_1d", "flow_lanes_1h", "flow_lanes_5m"]
    jobs = set(
        tsdb.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        ).fetchall()
    )
    assert ("policy_compression", "readings") in jobs
    assert ("policy_retention", "readings") in jobs
    for table in ("occupancy_5m", "occupancy_1h", "occupancy_1d"):
        assert ("policy_compression", table) in jobs
    for view in caggs:
        assert ("policy_refresh_continuous_aggregate", view) in jobs
        assert ("policy_compression", view) in jobs
    # the contract's relations exist under the same names as on plain PostgreSQL
    for relation in (*ROLLUPS, "lot_now", "segment_now"):
        tsdb.execute(f"SELECT * FROM {relation} LIMIT 0")


def test_hypertables_carry_our_indexes_and_settings(tsdb: psycopg.Connection) -> None:
    def indexes(table: str) -> set[str]:
        return set(scalars(tsdb, f"SELECT indexname FROM pg_indexes WHERE tablename = '{table}'"))

    # TimescaleDB's default B-tree on the time column is gone (migration 009): the unique key
    # and the BRIN indexes serve every query, as on plain PostgreSQL.
    assert indexes("readings") == {
        "readings_identity",
        "readings_observed_brin",
        "readings_received_brin",
    }
    for table in ("occupancy_5m", "occupancy_1h", "occupancy_1d"):
        assert indexes(table) == {f"{table}_pkey", f"{table}_bucket"}
    settings = tsdb.execute(
        "SELECT attname, segmentby_column_index, orderby_column_index"
        " FROM timescaledb_information.compression_settings"
        " WHERE hypertable_name = 'readings' ORDER BY 2, 3"
    ).fetchall()
    # every column of the unique key is in segmentby or orderby: a re-sent reading is checked
    # against the batches of its own series only
    assert settings == COMPRESSION
    # the flow tiers hold what refresh folded in, as plain PostgreSQL's flow tables do
    modes = scalars(
        tsdb, "SELECT DISTINCT materialized_only FROM timescaledb_information.continuous_aggregates"
    )
    assert modes == [True]


def city_readings() -> list[Reading]:
    """Return a morning of a small city: spot events, a counter, two lanes and a radar."""
    readings = [spot(f"s{(i % 4) + 1}", i * 3.7, i % 3 != 0) for i in range(40)]
    readings += [Reading("counter", "occupied_spaces", at(m), 50.0 + m) for m in range(0, 150, 7)]
    for minute in range(0, 150, 1):
        for lane, base in (("l1", 10.0), ("l2", 25.0)):
            count = base + (minute * 7) % 11
            readings += [
                Reading("loop", "vehicle_count", at(minute), count, lane),
                Reading("loop", "mean_speed", at(minute), 30.0 + (minute * 13) % 40, lane),
                Reading("loop", "detector_occupancy", at(minute), (minute * 3) % 50, lane),
            ]
    readings += [Reading("radar", "mean_speed", at(m + 0.5), 44.0) for m in range(0, 150, 5)]
    return readings


def rollup_rows(conn: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Return every rollup's contract columns, sorted."""
    found = {}
    for table in ROLLUPS:
        columns = COLUMNS[table.split("_")[0]]
        found[table] = conn.execute(f"SELECT {columns} FROM {table} ORDER BY 1, 2").fetchall()
    found["lot_now"] = conn.execute("SELECT * FROM lot_now ORDER BY 1").fetchall()
    conn.commit()
    return found


def assert_same(left: Sequence[tuple[object, ...]], right: Sequence[tuple[object, ...]]) -> None:
    """Assert two row lists are equal, floats to 1e-9 relative."""
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                assert math.isclose(x, y, rel_tol=1e-9), (a, b)
            else:
                assert x == y, (a, b)


def timescale_settings(settings: Settings, url: str) -> Settings:
    """Return the test settings pointed at the TimescaleDB server."""
    return with_overrides(settings, database={"url": url, "timescale": "on"})


def write_both(
    db: psycopg.Connection,
    tsdb: psycopg.Connection,
    readings: list[Reading],
    received: datetime,
    path: str = "insert",
) -> None:
    """Write the same readings to plain PostgreSQL (COPY) and TimescaleDB (INSERT or COPY)."""
    write(db, readings, received_at=received)
    if path == "copy":
        with tsdb.transaction():
            write_readings(tsdb, readings, [received] * len(readings))
    else:
        insert_readings(tsdb, readings, [received] * len(readings))


@pytest.mark.parametrize("path", ["insert", "copy"])
def test_rollups_match_plain_postgresql(
    db: psycopg.Connection,
    tsdb: psycopg.Connection,
    settings: Settings,
    timescale_url: str,
    path: str,
    request: pytest.FixtureRequest,
) -> None:
    if path == "copy":
        request.getfixturevalue("needs_copy")
    load_city(db)
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    readings = city_readings()
    late = readings[::5]
    on_time = [r for i, r in enumerate(readings) if i % 5]
    write_both(db, tsdb, on_time, at(151), path)
    refresh(db, settings, until=at(150))
    refresh(tsdb, timescale_settings(settings, timescale_url), until=at(150))
    first = rollup_rows(db)
    assert first["flow_5m"] and first["occupancy_5m"]
    # late readings and duplicates reach both backends' rollups alike
    write_both(db, tsdb, late + on_time[:50], at(200), path)
    refresh(db, settings, until=at(150))
    refresh(tsdb, timescale_settings(settings, timescale_url), until=at(150))
    plain, timescale = rollup_rows(db), rollup_rows(tsdb)
    assert plain["flow_1h"] != first["flow_1h"]
    for relation in (*ROLLUPS, "lot_now"):
        assert_same(plain[relation], timescale[relation])


def test_refresh_up_to_now(
    tsdb: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    now = datetime.now(UTC)
    insert_readings(tsdb, [Reading("loop", "vehicle_count", now, 3.0, "l1")], [now])
    result = refresh(tsdb, timescale_settings(settings, timescale_url))
    assert result.segments == 1
    for relation in ("flow_5m", "flow_1h", "flow_1d"):
        assert scalars(tsdb, f"SELECT vehicle_count FROM {relation}") == [3.0]


def test_noted_late_commit_reaches_occupancy_and_aggregates(
    tsdb: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    on_timescale = timescale_settings(settings, timescale_url)
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    insert_readings(tsdb, first_batch(), [at(1)] * len(first_batch()))
    refresh(tsdb, on_timescale, until=at(30))
    counter = [Reading("counter", "occupied_spaces", at(15), 50.0)]
    insert_readings(tsdb, counter, [WATERMARK])
    assert refresh(tsdb, on_timescale, until=at(30)).watermark == WATERMARK
    stalled = stalled_batch()
    with tsdb.transaction():  # committed long after LATE_RECEIVED, below the rescan margin
        insert_readings(tsdb, stalled, [LATE_RECEIVED] * len(stalled))
        note_late_commit(tsdb, {r.device_id for r in stalled}, min(r.observed_at for r in stalled))
    refresh(tsdb, on_timescale, until=at(30))
    assert scalars(tsdb, "SELECT count(*) FROM rollup_invalidations") == [0]
    market = "SELECT occupied FROM occupancy_5m WHERE lot_id = 'market' ORDER BY bucket"
    assert scalars(tsdb, market) == [1.0, 2.0, 1.5, 1.0, 0.0, 0.0]
    assert scalars(tsdb, "SELECT vehicle_count FROM flow_5m ORDER BY bucket") == [40.0]


class Rows:
    """A sink that keeps every exported row."""

    def __init__(self) -> None:
        self.rows: list[tuple[object, ...]] = []

    def write(self, rows: Sequence[tuple[object, ...]]) -> None:
        self.rows += rows

    def close(self) -> None:
        """Nothing to finish."""


def test_export_streams_from_timescale(
    db: psycopg.Connection, tsdb: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    load_city(db)
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    write_both(db, tsdb, city_readings(), at(151))
    refresh(db, settings, until=at(150))
    refresh(tsdb, timescale_settings(settings, timescale_url), until=at(150))
    request = ExportRequest("flow", at(0), at(150), segment="ring", resolution="1h")
    plain, timescale = Rows(), Rows()
    export(db, request, plain)
    tsdb.autocommit = False  # server-side cursors live in a transaction
    export(tsdb, request, timescale)
    assert len(plain.rows) == 3
    assert_same(plain.rows, timescale.rows)


def test_a_revised_count_reaches_the_aggregates(
    tsdb: psycopg.Connection, settings: Settings, timescale_url: str
) -> None:
    on_timescale = timescale_settings(settings, timescale_url)
    with tsdb.transaction():
        store_registry(tsdb, city(), "tests")
    now = datetime.now(UTC)
    sent = Reading("loop", "vehicle_count", now, 0.0, "l1", seq=1)
    insert_readings(tsdb, [sent], [now])
    refresh(tsdb, on_timescale)
    revisions = Revisions()
    revisions.add(replace(sent, value=12.0, seq=2, revision=1), datetime.now(UTC))
    with tsdb.transaction():
        assert write_revisions(tsdb, revisions).replaced == 1
    refresh(tsdb, on_timescale)
    for relation in ("flow_5m", "flow_1h", "flow_1d"):
        assert scalars(tsdb, f"SELECT vehicle_count FROM {relation}") == [12.0]
