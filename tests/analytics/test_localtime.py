"""Seasons counted on the city's wall clock: daily patterns stay put across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.csvio import parse_time
from analytics.localtime import hour_of_day, utc_offsets, zone_of
from analytics.models import build
from analytics.panel import Panel, from_long, from_matrix

CPH = ZoneInfo("Europe/Copenhagen")
# Clocks in Copenhagen went forward at 2024-03-31 01:00 UTC (02:00 CET -> 03:00 CEST).
SPRING = int(datetime(2024, 3, 31, 1, tzinfo=UTC).timestamp())
STEP = 1800
DAY = 48


def test_offsets_change_at_the_exact_second() -> None:
    times = np.array([SPRING - 3600, SPRING - 1, SPRING, SPRING + 1800], dtype=np.int64)
    np.testing.assert_array_equal(utc_offsets(times, CPH), [3600, 3600, 7200, 7200])
    autumn = int(datetime(2024, 10, 27, 1, tzinfo=UTC).timestamp())
    times = np.arange(autumn - 7200, autumn + 7200, 600, dtype=np.int64)
    expected = np.where(times < autumn, 7200, 3600)
    np.testing.assert_array_equal(utc_offsets(times, CPH), expected)


def test_naive_timestamps_are_read_in_the_zone() -> None:
    assert parse_time("2024-03-10T08:00:00", CPH) == parse_time("2024-03-10T07:00:00Z")
    assert parse_time("2024-04-10T08:00:00", CPH) == parse_time("2024-04-10T06:00:00Z")
    assert parse_time("2024-04-10T08:00:00+02:00", UTC) == parse_time("2024-04-10T06:00:00")


def test_zone_names() -> None:
    assert zone_of("UTC") is None
    assert zone_of("Europe/Copenhagen") == CPH
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'; give an IANA name"):
        zone_of("Mars/Olympus")


def morning_peak(days_after_change: int = 5, weeks: int = 4) -> Panel:
    """Return one series at 30 min: 10 all day, 110 from 08:00 to 08:30 Copenhagen time."""
    end = SPRING + days_after_change * 86_400
    times = end - STEP * np.arange(weeks * 7 * DAY)[::-1]
    local = [datetime.fromtimestamp(int(t), CPH) for t in times]
    values = np.array([110.0 if (m.hour, m.minute) == (8, 0) else 10.0 for m in local])
    return from_matrix(values[None, :], step=STEP, end=int(times[-1]))


def peak_hours_utc(panel: Panel, model: str, timezone: str) -> list[int]:
    """Return the UTC hour of the highest forecast on each of the next two days."""
    mean = build(model, horizon=2 * DAY, timezone=timezone).fit(panel).predict(2 * DAY).mean[0]
    start = datetime.fromtimestamp(int(panel.end[0]), UTC)
    hours = []
    for day in range(2):
        step = int(np.argmax(mean[day * DAY : (day + 1) * DAY])) + day * DAY
        hours.append((start + timedelta(seconds=STEP * (step + 1))).hour)
    return hours


@pytest.mark.parametrize(
    "model", ["snaive_week", "tow_mean", "profile_es", "profile_ridge", "auto"]
)
def test_local_seasons_keep_the_morning_peak_at_eight_after_spring_forward(model: str) -> None:
    data = morning_peak()
    # 08:00 CEST is 06:00 UTC; before the change most weeks had it at 07:00 UTC.
    assert peak_hours_utc(data, model, "Europe/Copenhagen") == [6, 6]


def test_utc_seasons_shift_the_morning_peak_by_an_hour() -> None:
    assert peak_hours_utc(morning_peak(), "tow_mean", "UTC") == [7, 7]


def test_local_forecast_is_exact_on_a_clean_pattern() -> None:
    data = morning_peak()
    mean = build("tow_mean", horizon=DAY, timezone="Europe/Copenhagen").fit(data).predict(DAY)
    assert sorted(np.unique(mean.mean[0])) == [10.0, 110.0]


def test_series_ending_at_different_times_are_fitted_as_if_alone() -> None:
    """In a local zone rows are grouped by their end; each still sees only its own calendar."""
    first, second = morning_peak(5), morning_peak(2, weeks=3)
    codes = np.repeat([0, 1], [first.values.size, second.values.size]).astype(np.int64)
    seconds = np.concatenate([
        first.end[0] - STEP * np.arange(first.values.size)[::-1],
        second.end[0] - STEP * np.arange(second.values.size)[::-1],
    ])  # fmt: skip
    values = np.concatenate([first.values, second.values])
    both = from_long(codes, seconds, values, ids=("a", "b"), step=STEP)
    model = "profile_es"
    together = build(model, horizon=DAY, timezone="Europe/Copenhagen").fit(both).predict(DAY)
    for row, alone in enumerate((first, second)):
        single = build(model, horizon=DAY, timezone="Europe/Copenhagen").fit(alone).predict(DAY)
        np.testing.assert_array_equal(together.mean[row], single.mean[0])


def test_hours_of_day_follow_the_local_clock_across_a_change_to_summer_time() -> None:
    # 2024-03-31 in Berlin: 00:30 UTC is 01:30 CET, 01:30 UTC is 03:30 CEST
    times = np.array([[1_711_845_000, 1_711_848_600]], dtype=np.int64)
    np.testing.assert_array_equal(hour_of_day(times, ZoneInfo("Europe/Berlin")), [[1, 3]])
    np.testing.assert_array_equal(hour_of_day(times, None), [[0, 1]])
