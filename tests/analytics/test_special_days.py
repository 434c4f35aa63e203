"""Public holidays: found in local time, left out of the history only when they differ."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.base import Matrix, without_holidays
from analytics.models import build
from analytics.panel import from_matrix
from analytics.profile import Seasons
from analytics.special_days import check_region, holiday_columns

BERLIN = ZoneInfo("Europe/Berlin")
STEP = 1800
DAY = 48
# Monday 27 May 2024, 00:00 in Berlin: the Monday before (20 May) was Whit Monday.
END = int(datetime(2024, 5, 26, 23, 30, tzinfo=BERLIN).timestamp())


def _weeks(holiday_like_sunday: bool, weeks: int = 4) -> np.ndarray:
    """Return one series of `weeks` weeks ending Sunday 26 May 2024 23:30 Berlin: busy
    weekdays (100 at midday), quiet weekends (10); Whit Monday quiet when asked."""
    width = weeks * 7 * DAY
    times = END - STEP * np.arange(width - 1, -1, -1)
    local = [datetime.fromtimestamp(int(t), BERLIN) for t in times]
    hour = np.array([t.hour + t.minute / 60 for t in local])
    quiet = np.array([t.weekday() >= 5 for t in local])
    if holiday_like_sunday:
        quiet |= np.array([t.date().isoformat() == "2024-05-20" for t in local])
    shape = np.exp(-(((hour - 13.0) / 3.0) ** 2))
    return np.where(quiet, 10.0 * shape, 100.0 * shape)[None, :]


def test_holiday_slots_follow_the_local_calendar() -> None:
    width = 7 * DAY
    mask = holiday_columns("DE-HE", END, width, STEP, BERLIN)
    times = END - STEP * np.arange(width - 1, -1, -1)
    days = {datetime.fromtimestamp(int(t), BERLIN).date().isoformat() for t in times[mask]}
    assert days == {"2024-05-20"}
    assert mask.sum() == DAY  # from local midnight to local midnight, not UTC's
    assert not holiday_columns("US", END, width, STEP, BERLIN).any()  # not a US holiday


def test_a_holiday_unlike_its_weekday_does_not_drag_down_the_next_one() -> None:
    values = _weeks(holiday_like_sunday=True)
    data = from_matrix(values, step=STEP, end=END, capacity=np.array([120.0]))
    ordinary = _weeks(holiday_like_sunday=False)[0, -7 * DAY : -6 * DAY]  # a plain Monday
    plain = build("anchored", horizon=DAY, timezone="Europe/Berlin").fit(data).predict(DAY)
    aware = build("anchored", horizon=DAY, timezone="Europe/Berlin", holidays="DE-HE")
    told = aware.fit(data).predict(DAY)
    midday = slice(22, 32)
    assert np.abs(told.mean[0, midday] - ordinary[midday]).max() < 2.0
    assert np.abs(plain.mean[0, midday] - ordinary[midday]).max() > 10.0


def test_holidays_like_ordinary_days_are_kept() -> None:
    values = _weeks(holiday_like_sunday=False)
    matrix = Matrix(values, STEP, np.array([np.nan]), np.array([END]), BERLIN)
    kept = without_holidays(matrix, "DE-HE", Seasons.of(STEP))
    np.testing.assert_array_equal(kept.values, values)
    quiet = Matrix(_weeks(True), STEP, np.array([np.nan]), np.array([END]), BERLIN)
    # Whit Monday differs, so every holiday goes: 1 May, Ascension Day and Whit Monday
    assert np.isnan(without_holidays(quiet, "DE-HE", Seasons.of(STEP)).values).sum() == 3 * DAY


def test_an_unknown_region_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        check_region("XX")
    assert datetime.fromtimestamp(END, UTC).isoformat() == "2024-05-26T21:30:00+00:00"
