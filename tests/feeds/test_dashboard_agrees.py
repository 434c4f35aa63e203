"""Planners and apps see the same live numbers: the dashboard's City now against the feeds.

The dashboard used to read `lot_now`, which moves only when the analytics job refreshes the
rollups (every 5 minutes), while its caption said "Refreshed every 30 s"; the feeds count from
the newest readings as they are committed. Both now count from the same readings.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from tests.feeds.conftest import Server, counter, spot, write

ENTRY = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def test_city_now_shows_the_feeds_live_counts_before_any_rollup_refresh(
    feeds: Server, city: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    write(city, [counter("harbour-counter", 250, now), spot("market-gw", "s3", True, now)])
    deadline = time.monotonic() + 20
    with feeds.client() as client:
        while True:
            lots = {lot["id"]: lot for lot in client.get("/v1/parking/lots").json()["lots"]}
            if lots["harbour"]["occupied"] == 250 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert (lots["harbour"]["occupied"], lots["market"]["occupied"]) == (250, 3)

    monkeypatch.setenv("STREETSENSE_DATABASE_URL", feeds.settings.database.url)
    monkeypatch.delenv("STREETSENSE_CONFIG", raising=False)
    page = AppTest.from_file(str(ENTRY), default_timeout=60)
    page.run()
    assert not page.exception, [e.value for e in page.exception]
    shown = {metric.label: metric.value for metric in page.metric}
    free = sum(lot["available"] for lot in lots.values() if lot["available"] is not None)
    assert shown["Spaces free"] == f"{free:,}"
    fullest = page.dataframe[0].value.set_index("name")
    for lot in lots.values():
        if lot["occupied"] is not None:
            taken = f"{lot['occupied']:,} / {lot['capacity']:,}"
            assert fullest.loc[lot["name"], "taken"] == taken, lot["name"]
