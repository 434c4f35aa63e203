"""The open feeds' database role reaches lot and segment aggregates only: no reading, device or
spot, by any relation, join or function it can use; and the feeds still work under it.

The attack that made this file (issue 14): the feeds role could select `readings`, `devices`
and `spots`, and one join gave any spot's history although `readings_located` was refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import errors, sql

from store.forecasts import Skipped
from store.roles import FEEDS, FEEDS_READS
from streetsense.config import Settings, with_overrides
from tests.feeds.clients import events
from tests.feeds.conftest import CITY, Server, counter, feeds_settings, write
from tests.feeds.test_forecast_unavailable import write_skipping_run

Connect = Callable[[str], psycopg.Connection]
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
# Columns that would tie a row to a device or a spot (and so to a person's car).
IDENTIFYING = frozenset({"device_id", "spot_id", "sensor", "sub_id", "seq", "topic", "payload"})
SPOT_HISTORY = (
    "SELECT r.observed_at, s.spot_id, r.value FROM readings r "
    "JOIN spots s ON s.device_id = r.device_id AND s.sensor = r.sub_id"
)


@pytest.fixture
def feeds_conn(city: psycopg.Connection, login_as: Connect) -> Iterator[psycopg.Connection]:
    """Return a connection of a login user in the feeds role, over the test city."""
    with login_as(FEEDS) as conn:
        yield conn


def _reachable_relations(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Return every relation the connected user may select from (any column), with its columns."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname <> ALL(%s) "
        "AND n.nspname NOT LIKE 'pg\\_temp%%' AND n.nspname NOT LIKE 'pg\\_toast%%' "
        "AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT')) "
        "GROUP BY 1, 2",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    return {f"{schema}.{name}": columns for schema, name, columns in rows}


def test_feeds_role_selects_exactly_the_aggregates(feeds_conn: psycopg.Connection) -> None:
    reachable = _reachable_relations(feeds_conn)
    assert {name.split(".", 1)[1] for name in reachable} == FEEDS_READS
    for name, columns in reachable.items():
        assert not IDENTIFYING & set(columns), f"{name} shows {IDENTIFYING & set(columns)}"


def test_feeds_role_runs_no_privileged_function_but_its_own(
    feeds_conn: psycopg.Connection,
) -> None:
    # A SECURITY DEFINER function runs with its owner's rights: each one callable is a door.
    doors = feeds_conn.execute(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.prosecdef AND n.nspname <> ALL(%s) AND has_function_privilege(p.oid, 'EXECUTE')",
        (list(SYSTEM_SCHEMAS),),
    ).fetchall()
    assert doors == [("feeds_parking_transactions",)]


@pytest.mark.parametrize(
    "statement",
    [
        SPOT_HISTORY,
        "SELECT * FROM readings LIMIT 1",
        "SELECT * FROM devices LIMIT 1",
        "SELECT * FROM spots LIMIT 1",
        "SELECT * FROM occupancy_series LIMIT 1",
        "SELECT * FROM readings_located LIMIT 1",
        "SELECT * FROM device_state LIMIT 1",
        "SELECT * FROM occupancy_sources LIMIT 1",
    ],
)
def test_the_old_ways_to_a_spot_history_are_refused(
    feeds_conn: psycopg.Connection, statement: str
) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        feeds_conn.execute(statement)  # type: ignore[arg-type]


def _secrets() -> tuple[set[str], set[str]]:
    """Return ids that may not appear inside any cell, and sub-ids no cell may equal."""
    ids = {d["id"] for d in CITY["device"]} | {s["id"] for s in CITY["spot"]}
    return ids, {s["sensor"] for s in CITY["spot"]}


def _cells(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _cells(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _cells(item)
    elif value is not None:
        yield str(value)


def test_nothing_the_role_reaches_names_a_device_or_spot(feeds_conn: psycopg.Connection) -> None:
    # Whatever the join, a row can only say which spot it is about through a cell holding a
    # device, spot or sensor id: none of the relations or the function holds one.
    contains, equals = _secrets()
    found = []
    for name in _reachable_relations(feeds_conn):
        schema, relation = name.split(".", 1)
        query = sql.SQL("SELECT * FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(relation)
        )
        found += [(name, row) for row in feeds_conn.execute(query).fetchall()]
    changes = feeds_conn.execute("SELECT * FROM feeds_parking_transactions(NULL, 3600, '{}')")
    found += [("feeds_parking_transactions", row) for row in changes.fetchall()]
    assert any(name.endswith("lot_parking_live") for name, _ in found)  # the scan saw data
    for name, row in found:
        for cell in _cells(list(row)):
            assert cell not in equals, (name, row)
            assert not any(secret in cell for secret in contains), (name, row)


def test_the_function_looks_back_an_hour_at_most(
    city: psycopg.Connection, feeds_conn: psycopg.Connection
) -> None:
    write(city, [counter("harbour-counter", 42, datetime.now(UTC) - timedelta(hours=2))])
    rows = feeds_conn.execute(
        "SELECT transaction_id FROM feeds_parking_transactions(NULL, 1e9, '{}')"
    ).fetchall()
    recent = feeds_conn.execute(
        "SELECT transaction_id FROM feeds_parking_transactions(NULL, 3600, '{}')"
    ).fetchall()
    assert rows == recent and len(rows) == 1  # the city's own batch, not the 2-hour-old one


def test_a_temporary_table_cannot_stand_in_for_readings(feeds_conn: psycopg.Connection) -> None:
    # The function runs with its owner's rights; its search path puts pg_temp last, so a
    # caller's temporary `readings` (here: inviting it to show a fake lot) is never read.
    feeds_conn.execute(
        "CREATE TEMP TABLE readings (device_id text, kind text, sub_id text, "
        "observed_at timestamptz, received_at timestamptz, value float8)"
    )
    feeds_conn.execute(
        "INSERT INTO readings VALUES ('harbour-counter', 'occupied_spaces', '', now(), now(), 1)"
    )
    lots = feeds_conn.execute(
        "SELECT DISTINCT unnest(lot_ids) FROM feeds_parking_transactions(NULL, 3600, '{}')"
    ).fetchall()
    assert sorted(lots) == [("harbour",), ("market",)]
    live = feeds_conn.execute("SELECT counter FROM lot_parking_live WHERE lot_id = 'harbour'")
    assert live.fetchall() == [(100.0,)]


def test_the_feeds_serve_and_stream_under_the_feeds_role(
    city: psycopg.Connection,
    feeds_conn: psycopg.Connection,
    settings: Settings,
    start_server: Callable[..., Server],
) -> None:
    url = psycopg.conninfo.make_conninfo(settings.database.url, user=feeds_conn.info.user)
    server = start_server(with_overrides(feeds_settings(settings), database={"url": url}))
    with (
        server.client(timeout=httpx.Timeout(10.0, read=10.0)) as client,
        client.stream("GET", "/v1/parking/stream") as response,
    ):
        stream = events(response)
        snapshot = next(stream)
        lots = {lot["id"]: lot for lot in snapshot.data["lots"]}
        assert lots["harbour"]["available"] == 300
        assert lots["market"]["available"] == 1
        write(city, [counter("harbour-counter", 150, datetime.now(UTC))])
        change = next(stream)
    assert (change.event, change.data["id"], change.data["available"]) == ("lot", "harbour", 250)


def test_the_feeds_role_reads_why_a_lot_has_no_forecast_but_no_device(
    city: psycopg.Connection,
    feeds_conn: psycopg.Connection,
    settings: Settings,
    start_server: Callable[..., Server],
) -> None:
    # The job's reasons (m014) are per lot or segment; under the feeds role they are served
    # while the device tables stay closed.
    write_skipping_run(city, "occupancy", "harbour", [Skipped("station", "too_short", "short")])
    city.commit()
    with pytest.raises(errors.InsufficientPrivilege):
        feeds_conn.execute("SELECT s.detail FROM forecast_skips s JOIN devices d ON true")
    url = psycopg.conninfo.make_conninfo(settings.database.url, user=feeds_conn.info.user)
    server = start_server(with_overrides(feeds_settings(settings), database={"url": url}))
    with server.client() as client:
        forecast = client.get("/v1/parking/lots/station").json()["forecast"]
    assert (forecast["reason_code"], forecast["reason"]) == ("too_short", "short")
