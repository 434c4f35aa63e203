"""Server-Sent Events: snapshot first, changes only, Last-Event-ID resume."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import psycopg

from streetsense.readings import Reading
from tests.feeds.clients import Event, events
from tests.feeds.conftest import Server, counter, spot, write

TIMEOUT = httpx.Timeout(10.0, read=10.0)


def _collect(
    server: Server,
    until: int,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    after_first: Callable[[], None] | None = None,
) -> list[Event]:
    got: list[Event] = []
    with (
        server.client(timeout=TIMEOUT) as client,
        client.stream("GET", "/v1/parking/stream", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in events(response):
            got.append(event)
            if len(got) == 1 and after_first is not None:
                after_first()
            if len(got) >= until:
                break
    return got


def _writer(database_url: str, readings: list[Reading]) -> Callable[[], None]:
    def run() -> None:
        with psycopg.connect(database_url) as conn:
            write(conn, readings)

    return run


def test_new_client_gets_snapshot_then_only_changes(feeds: Server, database_url: str) -> None:
    change = _writer(database_url, [counter("harbour-counter", 150, datetime.now(UTC))])
    snapshot, event = _collect(feeds, 2, after_first=change)
    assert snapshot.event == "snapshot"
    assert {lot["id"] for lot in snapshot.data["lots"]} == {"harbour", "market", "station"}
    assert event.event == "lot"
    assert event.data["id"] == "harbour"
    assert event.data["available"] == 250
    assert int(event.id or 0) > int(snapshot.id or 0)


def test_resume_after_last_event_id_replays_missed_changes(
    feeds: Server, database_url: str
) -> None:
    change = _writer(database_url, [counter("harbour-counter", 120, datetime.now(UTC))])
    first = _collect(feeds, 2, after_first=change)
    seen = first[-1].id
    assert seen is not None
    # A change while the client is away.
    _writer(database_url, [spot("market-gw", "s3", True, datetime.now(UTC))])()
    deadline = time.monotonic() + 10
    with feeds.client() as client:
        while client.get("/v1/parking/lots/market").json()["available"] != 0:
            assert time.monotonic() < deadline, "the change never reached the feed"
            time.sleep(0.1)
    resumed = _collect(feeds, 1, headers={"Last-Event-ID": seen})
    assert resumed[0].event == "lot"
    assert resumed[0].data["id"] == "market"
    assert resumed[0].data["available"] == 0
    assert int(resumed[0].id or 0) > int(seen)


def test_resume_from_unknown_id_starts_with_snapshot(feeds: Server) -> None:
    got = _collect(feeds, 1, headers={"Last-Event-ID": "1"})
    assert got[0].event == "snapshot"


def test_lot_filter(feeds: Server, database_url: str) -> None:
    now = datetime.now(UTC)
    change = _writer(
        database_url, [counter("harbour-counter", 10, now), spot("market-gw", "s1", False, now)]
    )
    got = _collect(feeds, 2, params={"lot": "market"}, after_first=change)
    assert [lot["id"] for lot in got[0].data["lots"]] == ["market"]
    assert got[1].data["id"] == "market"
    assert got[1].data["available"] == 2
