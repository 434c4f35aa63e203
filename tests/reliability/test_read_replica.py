"""Readers on a streaming replica: the feeds and every dashboard page run read-only, unchanged.

A private primary holds a simulated city (three days, rollups, forecasts); pg_basebackup makes
a hot standby of it. The feeds and the dashboard are pointed at the standby's URL alone: every
endpoint and page must answer from it, and a reading committed on the primary must reach the
feeds through replication.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from analytics.job import run_once
from feeds.app import create_app
from feeds.server import FeedsServer, server_config
from harness import simcity
from harness.ingest import wait_until
from harness.ingest_services import PrivatePostgres
from harness.replica import StreamingReplica
from harness.services import free_port
from store.writes import write_readings
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.readings import Reading
from tests.dashboard.conftest import run_page

pytestmark = [pytest.mark.cluster]
PAGES = ["city_now", "parking", "traffic", "devices", "forecast_quality", "export", "alerts"]


@pytest.fixture(scope="module")
def replica() -> Iterator[StreamingReplica]:
    """Return a hot standby of a primary that holds a simulated city; both removed after."""
    primary = PrivatePostgres().init()
    standby: StreamingReplica | None = None
    try:
        settings = _settings(primary.url)
        with psycopg.connect(primary.url) as conn:
            simcity.fill(conn, settings, simcity.bucket_now())
            conn.autocommit = True
            run_once(conn)
        standby = StreamingReplica(primary).clone()
        yield standby
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


def _settings(url: str) -> Settings:
    return with_overrides(
        load_settings(None, environ={}),
        database={"url": url, "timescale": "off"},
        feeds={"rate_per_minute": 1_000_000, "republish_mqtt": False},
        city={"timezone": simcity.TIMEZONE},
    )


@pytest.fixture(scope="module")
def feeds(replica: StreamingReplica) -> Iterator[str]:
    """Return the URL of a feeds server reading the replica only."""
    port = free_port()
    app = create_app(_settings(replica.url))
    server = FeedsServer(server_config(app, "127.0.0.1", port, timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, name="feeds-replica", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: _status(url + "/health") == 200, 30), "feeds not healthy"
    yield url
    server.should_exit = True
    thread.join(10)


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_the_replica_is_a_streaming_read_only_standby(replica: StreamingReplica) -> None:
    with psycopg.connect(replica.url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM readings")
    with psycopg.connect(replica.primary.url, autocommit=True) as conn:
        streaming = conn.execute("SELECT state FROM pg_stat_replication").fetchall()
    assert streaming == [("streaming",)]


def test_every_feed_answers_from_the_replica(replica: StreamingReplica, feeds: str) -> None:
    with psycopg.connect(replica.url) as conn:
        lot = conn.execute("SELECT min(lot_id) FROM lots").fetchone()
        segment = conn.execute("SELECT min(segment_id) FROM segments").fetchone()
    assert lot and lot[0] and segment and segment[0]
    paths = [
        "/v1/parking/lots", f"/v1/parking/lots/{lot[0]}", f"/v1/parking/lots/{lot[0]}/history",
        f"/v1/parking/lots/{lot[0]}/forecast", "/v1/traffic/segments",
        f"/v1/traffic/segments/{segment[0]}", "/v1/parking/datex2/table",
        "/v1/parking/datex2/status", "/v1/parking/parkapi/v1",
        "/v1/parking/parkapi/v3/parking-sites",
    ]  # fmt: skip
    answers = {path: _status(feeds + path) for path in paths}
    assert answers == dict.fromkeys(paths, 200)
    with httpx.stream("GET", feeds + "/v1/parking/stream", timeout=10) as live:
        assert live.status_code == 200
        first = next(live.iter_lines())
    assert first.startswith(("event:", "data:", "id:", ":", "retry:"))
    forecast = httpx.get(f"{feeds}/v1/parking/lots/{lot[0]}/forecast", timeout=5).json()
    assert forecast["issued_at"] is not None, "the forecast made on the primary is not served"


def test_a_count_committed_on_the_primary_reaches_the_feeds_through_replication(
    replica: StreamingReplica, feeds: str, report: Callable[..., None]
) -> None:
    with psycopg.connect(replica.primary.url) as conn:
        row = conn.execute(
            "SELECT d.device_id, d.lot_id, l.capacity FROM devices d JOIN lots l USING (lot_id)"
            " WHERE d.kind = 'counter' ORDER BY d.device_id LIMIT 1"
        ).fetchone()
        assert row is not None, "the simulated city has no counted lot"
        device, lot, capacity = row
        occupied = max(0, int(capacity) - 7)  # 7 free: a count the simulation did not make
        now = datetime.now(UTC)
        with conn.transaction():
            write_readings(conn, [Reading(device, "occupied_spaces", now, occupied)], [now])
    committed = time.monotonic()
    lag = replica.lag_s()

    def shows_seven_free() -> bool:
        response = httpx.get(f"{feeds}/v1/parking/lots/{lot}", timeout=5)
        return response.status_code == 200 and response.json().get("available") == 7

    assert wait_until(shows_seven_free, 60), "the replicated count never reached the feeds"
    report("read_replica", replay_lag_s=round(lag, 3),
           in_feeds_s=round(time.monotonic() - committed, 2))  # fmt: skip


@pytest.mark.parametrize("page", PAGES)
def test_every_dashboard_page_runs_on_the_replica(
    replica: StreamingReplica, page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETSENSE_DATABASE_URL", replica.url)
    monkeypatch.setenv("STREETSENSE_CITY_TIMEZONE", simcity.TIMEZONE)
    monkeypatch.delenv("STREETSENSE_CONFIG", raising=False)
    at = run_page(page)
    assert not at.error, [e.value for e in at.error]
    assert at.title or at.header or at.subheader, f"{page} rendered nothing"
