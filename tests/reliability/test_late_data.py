"""Fault 8 through real ingest: clock skew and out-of-order delivery.

Late readings inside `ingest.late_window_s` update the rollups exactly as if they had come on
time; readings older than the window or ahead of `ingest.future_tolerance_s` are rejected and
kept with their reason.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from harness.ingest import IngestProcess, Publisher, count, wait_log, wait_until
from store.rollups import refresh
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics
from tests.store.support import at, load_city
from tests.store.test_late_data import first_batch, late_batch, snapshot

pytestmark = pytest.mark.faults
SITE = "centre"


def _send(publisher: Publisher, topics: Topics, batch: list[Reading]) -> None:
    """Publish each reading alone, newest first (out of order), on its device's channel."""
    for reading in sorted(batch, key=lambda r: r.observed_at, reverse=True):
        channel = Channel.PARKING if reading.device_id == "gw" else Channel.TRAFFIC
        publisher.send(topics.device(SITE, reading.device_id, channel), encode_readings([reading]))


def test_late_readings_update_rollups_and_skewed_ones_are_rejected_with_a_reason(
    settings: Settings, topics: Topics, tmp_path: Path, report: Callable[..., None]
) -> None:
    url = settings.database.url
    # The city's data sits on a fixed past day (tests.store.support.T0): the window reaches
    # back to it whatever today's date, and "too old" stays older than the window.
    reach_t0 = int((datetime.now(UTC) - at(0)).total_seconds())
    settings = with_overrides(
        settings, ingest={"late_window_s": settings.ingest.late_window_s + reach_t0}
    )
    with psycopg.connect(url) as conn:
        load_city(conn)
    ingest = IngestProcess(settings, "ingest-late", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    publisher = Publisher(settings.mqtt.url, topics)
    now = datetime.now(UTC).replace(microsecond=0)
    window = timedelta(seconds=settings.ingest.late_window_s)
    too_old = Reading("gw", "occupied", now - window - timedelta(hours=1), 1.0, "s3")
    ahead = Reading("gw", "occupied", now + timedelta(hours=2), 1.0, "s4")
    try:
        _send(publisher, topics, first_batch())
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 4)
        with psycopg.connect(url) as conn:
            refresh(conn, settings, until=at(30))
            on_time = snapshot(conn)
        _send(publisher, topics, [*late_batch(), too_old, ahead])
        assert wait_until(lambda: count(url, "SELECT count(*) FROM rejected_messages") == 2)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") == 8)
    finally:
        publisher.close()
        assert ingest.terminate() == 0
    with psycopg.connect(url) as conn:
        refresh(conn, settings, until=at(30))
        late = snapshot(conn)
        rejected: dict[str, str] = dict(
            conn.execute("SELECT reason_code, reason FROM rejected_messages")
        )
        conn.execute("TRUNCATE occupancy_5m, occupancy_1h, occupancy_1d, flow_5m, flow_1h,"
                     " flow_1d, occupancy_now, rollup_state")  # fmt: skip
        conn.commit()
        refresh(conn, settings, until=at(30))
        rebuilt = snapshot(conn)
    market = {row[1]: row[2] for row in late["occupancy_5m"] if row[0] == "market"}
    report("late_and_skewed", sent=10, stored=8, rejected=len(rejected), lost=0, duplicated=0)
    assert late["occupancy_5m"] != on_time["occupancy_5m"]
    assert [market[at(m)] for m in (0, 5, 10, 15, 20, 25)] == [1.0, 2.0, 1.5, 1.0, 0.0, 0.0]
    assert late["flow_5m"][0][2:5] == (40.0, (10 * 50 + 30 * 30) / 40, None)
    assert late == rebuilt  # as if every reading had come on time
    assert set(rejected) == {"too_late", "future"}
    assert "late_window_s" in rejected["too_late"]
    assert "future_tolerance_s" in rejected["future"]
