"""History, trend, flows and forecasts from the rollups and forecast tables."""

from __future__ import annotations

import csv
import io

import psycopg
import pytest

from feeds.model import Congestion, Trend, congestion_level, trend_of
from tests.feeds.conftest import Server, assert_problems


def test_history_has_aggregate_buckets(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        body = client.get("/v1/parking/lots/harbour/history", params={"resolution": "5m"}).json()
    assert body["resolution"] == "5m"
    assert len(body["points"]) >= 4
    point = body["points"][1]  # the first bucket is only partly after the first reading
    assert set(point) == {"bucket", "occupied", "available", "occupancy", "samples"}
    assert point["occupied"] == 50
    assert point["available"] == 350


def test_history_refuses_bad_ranges(busy_feeds: Server) -> None:
    cases = {
        "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z": "must be before",
        "from=2026-01-01T00:00:00&to=2026-01-02T00:00:00Z": "time zone",
        "from=1970-01-01T00:00:00Z": "must lie between",
        "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&resolution=5m": "at most 7 days",
        "resolution=2m": "resolution",
        "from=yesterday": "from",
    }
    with busy_feeds.client() as client:
        assert_problems(client, "/v1/parking/lots/harbour/history", cases)
        unknown = client.get("/v1/parking/lots/nope/history")
    assert unknown.status_code == 404


def test_trend_and_forecast_of_a_lot(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        lot = client.get("/v1/parking/lots/harbour").json()
        forecast = client.get("/v1/parking/lots/harbour/forecast").json()
    assert lot["trend"] == "filling"
    values = [lot["forecast"][f"available_{m}m"] for m in (15, 30, 60)]
    # between the stored steps (the run has no anchor: not re-anchored)
    assert all(400 - 170 <= v <= 400 - 110 and v == int(v) for v in values)
    assert lot["forecast"]["anchored_at"] is None
    assert values[2] < values[0]  # the forecast fills up, so availability falls
    assert lot["forecast"]["issued_at"] is not None
    assert [p["available"] for p in forecast["points"]] == values
    assert [p["horizon_min"] for p in forecast["points"]] == [15, 30, 60]


def test_segment_flow_congestion_and_forecast(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        segment = client.get("/v1/traffic/segments/ring-eb").json()
        jammed = client.get("/v1/traffic/segments", params={"congestion": "severe"}).json()
    assert segment["vehicle_count"] is not None and segment["vehicle_count"] > 0
    assert segment["mean_speed"] == 12.0
    assert segment["congestion"] == "severe"  # 12 km/h on a 50 km/h road
    assert segment["stale"] is False
    assert segment["forecast"]["vehicle_count_15m"] is not None
    assert [s["id"] for s in jammed["segments"]] == ["ring-eb"]


def test_live_counts_match_the_lot_now_rollup(
    busy_feeds: Server, busy_city: psycopg.Connection
) -> None:
    rows = busy_city.execute("SELECT lot_id, occupied FROM lot_now").fetchall()
    with busy_feeds.client() as client:
        lots = {lot["id"]: lot for lot in client.get("/v1/parking/lots").json()["lots"]}
    assert rows
    for lot_id, occupied in rows:
        assert lots[lot_id]["occupied"] == round(occupied), lot_id


def test_trend_and_congestion_rules() -> None:
    assert trend_of(100, 50.0, 400) is Trend.FILLING
    assert trend_of(100, 95.0, 400) is Trend.STEADY  # under 3 % of capacity
    assert trend_of(1, 3.0, 3) is Trend.EMPTYING
    assert trend_of(None, 3.0, 3) is None
    assert congestion_level(45.0, 50.0, None) is Congestion.FREE
    assert congestion_level(30.0, 50.0, None) is Congestion.MODERATE
    assert congestion_level(None, 50.0, 35.0) is Congestion.HEAVY
    assert congestion_level(None, 50.0, None) is Congestion.UNKNOWN


def test_csv_says_what_json_says(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        lots_json = client.get("/v1/parking/lots").json()["lots"]
        lots_csv = client.get("/v1/parking/lots", params={"format": "csv"}).text
        segment = client.get("/v1/traffic/segments/ring-eb").json()
        segments_csv = client.get("/v1/traffic/segments", params={"format": "csv"}).text
    lots = {row["id"]: row for row in csv.DictReader(io.StringIO(lots_csv))}
    for lot in lots_json:  # booleans spelled as in JSON, not Python's True/False
        assert lots[lot["id"]]["stale"] == ("true" if lot["stale"] else "false")
    ring = next(r for r in csv.DictReader(io.StringIO(segments_csv)) if r["id"] == "ring-eb")
    assert ring["stale"] == "false"
    for minutes in (15, 30, 60):  # the forecast columns the lots CSV has
        assert float(ring[f"forecast_vehicle_count_{minutes}m"]) == pytest.approx(
            segment["forecast"][f"vehicle_count_{minutes}m"], abs=0.05
        )
