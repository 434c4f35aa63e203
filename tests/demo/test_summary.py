"""The demo's option parsing and its summary, read from the feeds API and ingest's metrics."""

from __future__ import annotations

import argparse
import http.server
import threading
from collections.abc import Iterator

import pytest

from streetsense.demo.cli import parse_duration
from streetsense.demo.summary import (
    Snapshot,
    has_data,
    has_forecast,
    lots_of,
    readings_total,
    summary_lines,
)

METRICS = b"""# HELP streetsense_ingest_readings_written_total new rows in readings
# TYPE streetsense_ingest_readings_written_total counter
streetsense_ingest_readings_written_total 1234.0
streetsense_ingest_readings_duplicate_total 99.0
streetsense_ingest_readings_written_created 1.7e9
"""


@pytest.mark.parametrize(
    ("text", "seconds"), [("60", 60), ("60s", 60), ("15m", 900), ("2h", 7200), ("28d", 2419200)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "d", "-5s", "5 years", "1e3"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="28d"):
        parse_duration(text)


@pytest.fixture
def metrics_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(METRICS)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/metrics"
    server.shutdown()
    server.server_close()
    thread.join()


def test_readings_total_counts_written_rows_only(metrics_url: str) -> None:
    assert readings_total(metrics_url) == 1234.0


def test_readings_total_is_none_when_ingest_does_not_answer() -> None:
    assert readings_total("http://127.0.0.1:1/metrics") is None


def test_lots_with_live_data_and_forecasts() -> None:
    fresh = {"available": 3, "stale": False, "forecast": {"available_15m": 2.0, "reason": None}}
    stale = {"available": 3, "stale": True, "forecast": {"available_15m": None, "reason": "x"}}
    lots = lots_of({"lots": [fresh, stale], "count": 2})
    assert [has_data(lot) for lot in lots] == [True, False]
    assert [has_forecast(lot) for lot in lots] == [True, False]
    assert lots_of([fresh]) == [fresh]
    assert lots_of(None) == []


def test_summary_counts_live_readings_from_the_baseline() -> None:
    before = Snapshot(at=0.0, readings_total=1000, lots=4, lots_with_data=4, lots_with_forecast=0)
    now = Snapshot(at=10.0, readings_total=1050, lots=4, lots_with_data=4, lots_with_forecast=4)
    first, second = summary_lines(now, before, 10.0, baseline=1000)
    assert "readings/s    5.0" in first
    assert "live readings 50" in first
    assert second == "lots 4   with live data 4   forecasts ready 4"
    unknown = Snapshot(at=1.0, readings_total=None, lots=None, lots_with_data=None,
                       lots_with_forecast=None)  # fmt: skip
    assert "live readings -" in summary_lines(unknown, None, 1.0, baseline=None)[0]
