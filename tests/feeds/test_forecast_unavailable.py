"""A lot or segment without a forecast says why (issue 13): the analytics job's reason for
leaving its series out (m014), as a code for apps and a sentence for people."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from store.forecasts import Run, Skipped, write_run
from streetsense.config import Settings
from tests.feeds.conftest import Server, feeds_settings

HORIZON = 36  # 3 h of 5-minute steps
SHORT = "readings span 3.0 h; a forecast needs at least 24 h of readings"
STUCK = "all 288 readings are 7: a stuck counter is not forecast"


def write_skipping_run(
    conn: psycopg.Connection, stream: str, forecast: str, skipped: list[Skipped]
) -> None:
    """Store a run of a stream that forecasts one series and leaves others out."""
    now = datetime.now(UTC)
    data_end = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    mean = np.full((1, HORIZON), 50.0)
    run = Run(stream, 300, now, data_end - timedelta(days=7), data_end, HORIZON, "auto")
    write_run(conn, run, [forecast], mean, mean - 5, mean + 5, ["auto"], skipped=skipped)


@pytest.fixture
def skipping_feeds(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> Server:
    """Harbour forecast, station left out (too short); ring road forecast, quay left out of
    the flow run (stuck counter) and of the speed run (no data)."""
    write_skipping_run(city, "occupancy", "harbour", [Skipped("station", "too_short", SHORT)])
    write_skipping_run(city, "flow", "ring-eb", [Skipped("quay-wb", "constant", STUCK)])
    write_skipping_run(
        city, "speed", "ring-eb", [Skipped("quay-wb", "no_data", "no reading in the window")]
    )
    city.commit()
    return start_server(feeds_settings(settings))


def test_a_lot_left_out_by_the_job_says_why(skipping_feeds: Server) -> None:
    with skipping_feeds.client() as client:
        station = client.get("/v1/parking/lots/station").json()
        document = client.get("/v1/parking/lots/station/forecast").json()
        lots = {lot["id"]: lot for lot in client.get("/v1/parking/lots").json()["lots"]}
    forecast = station["forecast"]
    assert [forecast[f"available_{m}m"] for m in (15, 30, 60)] == [None, None, None]
    assert (forecast["reason_code"], forecast["reason"]) == ("too_short", SHORT)
    assert (document["reason_code"], document["reason"]) == ("too_short", SHORT)
    assert lots["station"]["forecast"]["reason_code"] == "too_short"
    # forecast: no reason; not in the run at all: the feeds' own reason
    assert lots["harbour"]["forecast"]["available_15m"] is not None
    assert "reason_code" not in lots["harbour"]["forecast"]
    assert lots["market"]["forecast"]["reason_code"] == "no_recent_run"


def test_a_segment_left_out_by_the_job_says_why(skipping_feeds: Server) -> None:
    with skipping_feeds.client() as client:
        quay = client.get("/v1/traffic/segments/quay-wb").json()
        steps = client.get("/v1/traffic/segments/quay-wb/forecast?horizon=60").json()
        ring = client.get("/v1/traffic/segments/ring-eb").json()
    assert (quay["forecast"]["reason_code"], quay["forecast"]["reason"]) == ("constant", STUCK)
    assert quay["speed_forecast"]["reason_code"] == "no_data"
    assert (steps["steps"], steps["reason_code"], steps["reason"]) == ([], "constant", STUCK)
    assert "reason_code" not in ring["forecast"] and "reason_code" not in ring["speed_forecast"]
