"""Rebuilding the lots and segments with nothing new keeps what is served, its version and
its ETag: each one's forecast counts from its own moment, and counting it again from a later
one every 30 s would make every client download everything again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from feeds import engine
from harness.ingest import wait_until
from streetsense.config import Settings
from tests.feeds.conftest import Server, feeds_settings
from tests.feeds.test_forecast_anchoring import STEP, _run, anchored_city

__all__ = ["anchored_city"]  # the fixture

REFRESHES = "streetsense_feeds_context_refreshes_total"


def wait_for_refreshes(server: Server, count: int) -> None:
    """Wait until the engine has re-read forecasts and rebuilt every lot `count` more times,
    the last one in a later second than now (times are published to the second)."""
    later = time.time() // 1 + 1
    target = [(server.metric(REFRESHES) or 0.0) + count]

    def rebuilt() -> bool:
        done = server.metric(REFRESHES) or 0.0
        if time.time() < later:  # count the rebuilds from the later second on
            target[0] = done + count
            return False
        return done >= target[0]

    assert wait_until(rebuilt, 30), "the feeds did not rebuild the lots"


def test_rebuilds_without_new_data_keep_the_etags(
    anchored_city: psycopg.Connection,
    settings: Settings,
    start_server: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "CONTEXT_S", 0.2)  # rebuild every lot often, for the test
    monkeypatch.setattr(engine, "FULL_S", 0.2)
    server = start_server(feeds_settings(settings))
    with server.client() as client:
        first = client.get("/v1/parking/lots")
        roads = client.get("/v1/traffic/segments")
        wait_for_refreshes(server, 2)
        again = client.get("/v1/parking/lots", headers={"If-None-Match": first.headers["ETag"]})
        roads_again = client.get(
            "/v1/traffic/segments", headers={"If-None-Match": roads.headers["ETag"]}
        )
        ring = {road["id"]: road for road in roads.json()["segments"]}["ring-eb"]
        assert ring["speed_forecast"]["anchored_at"] is not None  # forecasts are served
        assert roads_again.status_code == 304
        lots = {lot["id"]: lot for lot in first.json()["lots"]}
        assert lots["harbour"]["forecast"]["anchored_at"] is not None  # a forecast is served
        assert again.status_code == 304
        # a new run is news: served at the next rebuild
        data_end = datetime.fromtimestamp(datetime.now(UTC).timestamp() // 300 * 300, UTC)
        _run(anchored_city, "occupancy", "harbour", data_end, 200.0, 10.0,
             (data_end - STEP, 200.0, 1800.0))  # fmt: skip
        anchored_city.commit()
        wait_for_refreshes(server, 2)
        changed = client.get("/v1/parking/lots", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    harbour = {lot["id"]: lot for lot in changed.json()["lots"]}["harbour"]
    # 200 taken, not 160: fewer free spaces an hour ahead
    assert harbour["forecast"]["available_60m"] < lots["harbour"]["forecast"]["available_60m"]
    age = datetime.now(UTC) - datetime.fromisoformat(harbour["forecast"]["from"])
    assert timedelta(0) <= age < timedelta(minutes=5)
