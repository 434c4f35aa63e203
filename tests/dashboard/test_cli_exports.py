"""The `streetsense dashboard` command and the export formats, without a browser."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboard import exports
from dashboard.cli import streamlit_environment
from dashboard.controls import resolve_tier
from streetsense.cli import main


def test_the_command_refuses_to_start_without_a_database(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("STREETSENSE_DATABASE_URL", raising=False)
    monkeypatch.delenv("STREETSENSE_CONFIG", raising=False)
    monkeypatch.chdir("/")
    assert main(["dashboard", "--port", "0"]) == 2
    assert "STREETSENSE_DATABASE_URL" in caplog.text


def test_settings_reach_streamlit_through_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "streetsense.toml"
    env = streamlit_environment(str(config), "127.0.0.1", 8765, {"PATH": "/bin"})
    assert env["STREETSENSE_CONFIG"] == str(config.resolve())
    assert env["STREAMLIT_SERVER_ADDRESS"] == "127.0.0.1"
    assert env["STREAMLIT_SERVER_PORT"] == "8765"
    assert env["STREAMLIT_SERVER_HEADLESS"] == "true"
    assert env["PATH"] == "/bin"


def test_tiers_are_chosen_by_range_and_coarsened_past_the_point_limit() -> None:
    end = datetime(2026, 11, 23, tzinfo=UTC)
    assert resolve_tier(end - pd.Timedelta(hours=6), end, None) == "5m"
    assert resolve_tier(end - pd.Timedelta(days=30), end, None) == "1h"
    assert resolve_tier(end - pd.Timedelta(days=365), end, None) == "1d"
    # A year at 5 minutes would be 105,120 points per series: coarsened to days.
    assert resolve_tier(end - pd.Timedelta(days=365), end, "5m") == "1d"


def test_exports_round_trip_in_csv_and_parquet() -> None:
    frame = pd.DataFrame({
        "lot_id": ["a", "b"],
        "bucket": pd.to_datetime(["2026-11-23T10:00:00Z", "2026-11-23T11:00:00Z"]).tz_convert(
            "Europe/Copenhagen"
        ),
        "occupancy": [0.25, 0.9],
    })  # fmt: skip
    back = pd.read_parquet(io.BytesIO(exports.to_parquet(frame)))
    pd.testing.assert_frame_equal(back, frame)
    text = exports.to_csv(frame).decode()
    assert text.splitlines()[1] == "a,2026-11-23T11:00:00+0100,0.25"
