"""Chart builders draw what a planner reads: names in legends, local hours, dated axes."""

from __future__ import annotations

import pandas as pd

from dashboard import charts

ZONE = "Europe/Copenhagen"


def test_history_is_labelled_by_name_and_drawn_in_the_citys_hours() -> None:
    buckets = pd.date_range("2026-12-01 07:00", periods=3, freq="1h", tz="UTC").tz_convert(ZONE)
    history = pd.DataFrame({"lot_id": "lot-001", "bucket": buckets, "occupancy": [0.1, 0.2, 0.3]})
    empty = pd.DataFrame(columns=["lot_id", "at", "yhat", "lo80", "hi80"])
    chart = charts.series_with_forecast(
        history, empty, series="lot_id", value="occupancy", title="occupancy",
        names={"lot-001": "Harbour garage"}, zone=ZONE,
    ).to_dict()  # fmt: skip
    [rows] = [v for v in chart["datasets"].values() if v and "occupancy" in v[0]]
    assert {row["shown"] for row in rows} == {"Harbour garage"}
    # 07:00 UTC is 08:00 in Copenhagen in winter: the wall-clock hour, drawn on a UTC scale
    assert rows[0]["bucket"].startswith("2026-12-01T08:00:00")
    encoding = chart["layer"][0]["encoding"]["x"]
    assert encoding["scale"] == {"type": "utc"}
    assert encoding["axis"]["title"] == f"{ZONE} time"


def test_a_week_of_history_gets_dated_labels_and_a_day_gets_hours() -> None:
    week = pd.Series(pd.date_range("2026-12-01", periods=8, freq="1D", tz="UTC"))
    day = pd.Series(pd.date_range("2026-12-01", periods=24, freq="1h", tz="UTC"))
    assert charts.time_axis(week, ZONE).to_dict()["format"] == "%a %d %b"
    assert charts.time_axis(day, ZONE).to_dict()["format"] == "%a %H:%M"
