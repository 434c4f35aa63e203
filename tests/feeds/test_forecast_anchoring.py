"""Forecasts in the feeds start from what the same response says now (issue 13).

The stored runs start from the job's last bucket; the feeds re-anchor them on the live count
(lots) or the latest 5-minute bucket (segments), the difference fading with each series'
half-life: forecast(at) + (live - forecast(now)) * 0.5 ** ((at - now) / half_life).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from store.dashboard_forecasts import forecast_series
from store.forecasts import Anchors, Run, write_run
from store.rollups import refresh
from streetsense.config import Settings
from tests.feeds.conftest import Server, feeds_settings, traffic, write

STEP = timedelta(minutes=5)
HORIZON = 36  # 3 h of 5-minute steps
FRESH = timedelta(minutes=10)  # how old a live value may be and still anchor


def _run(
    conn: psycopg.Connection,
    stream: str,
    series: str,
    data_end: datetime,
    value: float,
    band: float,
    anchor: tuple[datetime, float, float],
) -> None:
    """Store a flat forecast of one series and the anchor it started from."""
    mean = np.full((1, HORIZON), value)
    run = Run(stream, 300, datetime.now(UTC), data_end - timedelta(days=7), data_end, HORIZON,
              "auto")  # fmt: skip
    observed_at, observed_value, half_life = anchor
    anchors = Anchors(
        np.array([observed_at.timestamp()]), np.array([observed_value]), np.array([half_life])
    )
    write_run(conn, run, [series], mean, mean - band, mean + band, ["auto"], anchors=anchors)


@pytest.fixture
def anchored_city(city: psycopg.Connection, settings: Settings) -> psycopg.Connection:
    """Harbour: 100 of 400 taken now, forecast flat at 160 taken from a bucket 5 minutes
    before the run's end (half-life 30 min). Ring road: flow flat at 10 per 5 minutes (the
    departure persists), speed flat at 40 km/h (half-life 10 min), slower live traffic."""
    now = datetime.now(UTC)
    flows = []
    for minutes in (14, 12, 9, 7):
        flows += traffic("ring-counter", "L1", now - timedelta(minutes=minutes), 20, 12.0)
    write(city, flows)
    city.commit()
    refresh(city, settings)
    data_end = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC)
    before = data_end - STEP
    _run(city, "occupancy", "harbour", data_end, 160.0, 10.0, (before, 160.0, 1800.0))
    _run(city, "flow", "ring-eb", data_end, 10.0, 2.0, (before - STEP, 10.0, float("nan")))
    _run(city, "speed", "ring-eb", data_end, 40.0, 5.0, (before - STEP, 40.0, 600.0))
    city.commit()
    return city


@pytest.fixture
def anchored_feeds(
    anchored_city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> Server:
    """Return a running feeds server over the anchored city."""
    return start_server(feeds_settings(settings))


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_lots_forecast_starts_from_its_free_spaces_now(anchored_feeds: Server) -> None:
    with anchored_feeds.client() as client:
        lot = client.get("/v1/parking/lots/harbour").json()
        document = client.get("/v1/parking/lots/harbour/forecast").json()
    assert lot["available"] == 300  # 100 of 400 taken: the stored run said 240 free
    forecast = lot["forecast"]
    # 160 + (100 - 160) * 0.5 ** (minutes / 30), as free spaces of 400
    assert [forecast[f"available_{m}m"] for m in (15, 30, 60)] == [282, 270, 255]
    assert [forecast[f"available_{m}m_lo80"] for m in (15, 30, 60)] == [272, 260, 245]
    assert [forecast[f"available_{m}m_hi80"] for m in (15, 30, 60)] == [292, 280, 265]
    assert forecast["anchored_at"] == forecast["from"] is not None
    assert document["anchored_at"] == forecast["anchored_at"]
    assert [p["available"] for p in document["points"]] == [282, 270, 255]
    assert [p["available_lo80"] for p in document["points"]] == [272, 260, 245]
    start = _at(forecast["from"])
    assert [_at(p["at"]) - start for p in document["points"]] == [
        timedelta(minutes=m) for m in (15, 30, 60)
    ]


def test_a_segments_forecasts_start_from_its_latest_bucket(anchored_feeds: Server) -> None:
    with anchored_feeds.client() as client:
        segment = client.get("/v1/traffic/segments/ring-eb").json()
        steps = client.get("/v1/traffic/segments/ring-eb/forecast?horizon=60").json()
        csv = client.get("/v1/traffic/segments?format=csv").text
    count, speed, bucket = segment["vehicle_count"], segment["mean_speed"], _at(segment["bucket"])
    assert count is not None and speed == pytest.approx(12.0)
    flow_forecast, speed_forecast = segment["forecast"], segment["speed_forecast"]
    start = _at(speed_forecast["from"])
    assert flow_forecast["anchored_at"] == speed_forecast["anchored_at"] == segment["bucket"]
    # the flow's departure persists (no half-life): every horizon says the live count
    assert [flow_forecast[f"vehicle_count_{m}m"] for m in (15, 30, 60)] == [count] * 3
    assert flow_forecast["vehicle_count_15m_lo80"] == pytest.approx(count - 2, abs=0.05)
    for minutes in (15, 30, 60):
        age = (start + timedelta(minutes=minutes) - bucket).total_seconds()
        expected = 40.0 + (speed - 40.0) * 0.5 ** (age / 600)
        assert speed_forecast[f"mean_speed_{minutes}m"] == pytest.approx(expected, abs=0.1)
        assert speed_forecast[f"mean_speed_{minutes}m_hi80"] == pytest.approx(
            expected + 5, abs=0.15
        )
    assert speed_forecast["mean_speed_15m"] < speed_forecast["mean_speed_60m"] < 40.0
    # every 5 minutes up to the horizon, the same numbers at the shared horizons
    assert [s["minutes_ahead"] for s in steps["steps"]] == list(range(5, 61, 5))
    by_minutes = {s["minutes_ahead"]: s for s in steps["steps"]}
    for minutes in (15, 30, 60):
        assert by_minutes[minutes]["mean_speed"] == speed_forecast[f"mean_speed_{minutes}m"]
        assert by_minutes[minutes]["vehicle_count"] == count
        assert by_minutes[minutes]["flow_vph"] == pytest.approx(count * 12, abs=0.1)
    assert steps["speed_anchored_at"] == segment["bucket"]
    header = csv.splitlines()[0].split(",")
    assert {"forecast_mean_speed_15m", "forecast_mean_speed_60m_hi80"} <= set(header)


def test_a_stale_count_does_not_anchor(
    anchored_city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    anchored_city.execute("UPDATE readings SET observed_at = observed_at - interval '2 hours'")
    anchored_city.commit()
    server = start_server(feeds_settings(settings, stale_after_s=60))
    with server.client() as client:
        lot = client.get("/v1/parking/lots/harbour").json()
    assert lot["stale"] is True
    assert lot["forecast"]["anchored_at"] is None
    assert [lot["forecast"][f"available_{m}m"] for m in (15, 30, 60)] == [240, 240, 240]


def test_the_dashboard_draws_the_same_anchored_forecast(
    anchored_feeds: Server, anchored_city: psycopg.Connection
) -> None:
    now = datetime.now(UTC)
    window = (now - timedelta(hours=1), now + timedelta(hours=2))
    lots = forecast_series(anchored_city, "occupancy", ["harbour"], *window, FRESH, now)
    rows = [dict(zip(lots.columns, row, strict=True)) for row in lots.rows]
    assert rows[0]["at"] == now and rows[0]["yhat"] == pytest.approx(100.0)  # the live count
    assert all(row["anchored"] for row in rows)
    for row in rows[1:]:
        fade = 0.5 ** ((row["at"] - now).total_seconds() / 1800)
        assert row["yhat"] == pytest.approx(160 - 60 * fade)
        assert row["hi80"] - row["yhat"] == pytest.approx(10.0)
    assert rows[-1]["at"] < window[1]
    with anchored_feeds.client() as client:
        feed = client.get("/v1/parking/lots/harbour").json()["forecast"]
    start = _at(feed["from"])
    before = [row["yhat"] for row in rows if row["at"] <= start + timedelta(minutes=30)][-1]
    after = next(row["yhat"] for row in rows if row["at"] >= start + timedelta(minutes=30))
    # the feed's +30 min lies on the dashboard's curve, between its points around it
    assert before - 0.5 <= 400 - feed["available_30m"] <= after + 0.5

    speeds = forecast_series(anchored_city, "speed", ["ring-eb"], *window, FRESH, now)
    first = dict(zip(speeds.columns, speeds.rows[0], strict=True))
    assert first["yhat"] == pytest.approx(12.0)
    for row in speeds.rows[1:]:
        point = dict(zip(speeds.columns, row, strict=True))
        fade = 0.5 ** ((point["at"] - first["at"]).total_seconds() / 600)
        assert point["yhat"] == pytest.approx(40 + (12 - 40) * fade)
    flows = forecast_series(anchored_city, "flow", ["ring-eb"], *window, FRESH, now)
    counts = {round(row[2], 6) for row in flows.rows}
    assert len(counts) == 1 and counts != {10.0}  # the live count, held: no half-life


def test_the_dashboard_keeps_the_stored_forecast_without_a_fresh_count(
    anchored_city: psycopg.Connection,
) -> None:
    later = datetime.now(UTC) + timedelta(minutes=30)  # the count is half an hour old then
    window = (later - timedelta(hours=1), later + timedelta(hours=1))
    lots = forecast_series(anchored_city, "occupancy", ["harbour"], *window, FRESH, later)
    assert lots.rows and not any(row[-1] for row in lots.rows)
    assert {row[2] for row in lots.rows} == {160.0}
