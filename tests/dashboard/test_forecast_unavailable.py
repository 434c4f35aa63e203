"""Parking and Traffic say why a lot or segment has no forecast where it would be drawn: the
analytics job's reason for leaving its series out (m014), else that none is stored yet."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.conftest import City, query

Run = Callable[[str], AppTest]
SHORT = "readings span 3.0 h; a forecast needs at least 24 h of readings"
STUCK = "all 288 readings are 7: a stuck counter is not forecast"


@contextmanager
def left_out(url: str, stream: str, series_id: str, reason: str, detail: str) -> Iterator[None]:
    """Make the stream's latest run leave one series out with a reason, as the job would."""
    latest = (
        "(SELECT run_id FROM forecast_runs WHERE stream = %s "
        "ORDER BY data_end DESC, issued_at DESC LIMIT 1)"
    )
    hidden = f"{series_id}#hidden"
    query(url, f"UPDATE forecasts SET series_id = %s WHERE series_id = %s AND run_id = {latest} "
               "RETURNING 1", (hidden, series_id, stream))  # fmt: skip
    query(url, f"INSERT INTO forecast_skips SELECT {latest}, %s, %s, %s RETURNING 1",
          (stream, series_id, reason, detail))  # fmt: skip
    st.cache_data.clear()
    try:
        yield
    finally:
        query(url, "DELETE FROM forecast_skips WHERE series_id = %s RETURNING 1", (series_id,))
        query(url, "UPDATE forecasts SET series_id = %s WHERE series_id = %s RETURNING 1",
              (series_id, hidden))  # fmt: skip
        st.cache_data.clear()


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def test_parking_says_why_a_lot_has_no_forecast(app: Run, city: City) -> None:
    at = app("parking")
    lot = sorted(at.multiselect(key="lots").value)[0]
    [(name,)] = query(city.url, "SELECT name FROM lots WHERE lot_id = %s", (lot,))
    assert "No forecast for" not in captions(at)  # every chosen lot has one
    with left_out(city.url, "occupancy", lot, "too_short", SHORT):
        at = app("parking")
    assert f"No forecast for {name} ({SHORT})." in captions(at)


def test_traffic_says_why_a_segment_has_no_flow_forecast(app: Run, city: City) -> None:
    at = app("traffic")
    segment = sorted(at.multiselect(key="segments").value)[0]
    [(name,)] = query(city.url, "SELECT name FROM segments WHERE segment_id = %s", (segment,))
    with left_out(city.url, "flow", segment, "constant", STUCK):
        at = app("traffic")
    shown = captions(at)
    assert f"No flow forecast for {name} ({STUCK})." in shown
    assert "No speed forecast" not in shown
