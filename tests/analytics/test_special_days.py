"""Public holidays: found in local time, left out of the history only when they differ."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.base import Matrix, without_holidays
from analytics.calendar_file import Period
from analytics.models import build
from analytics.panel import from_matrix
from analytics.profile import Seasons
from analytics.special_days import check_region, holiday_columns, holidays_differ

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


@pytest.mark.parametrize("workers", [1, 2])
def test_whether_holidays_differ_is_pooled_over_every_row(workers: int) -> None:
    # More rows than are judged at once: every row counts once, wherever the slices fall.
    rng = np.random.default_rng(3)
    alike = np.repeat(_weeks(holiday_like_sunday=False), 200, axis=0)
    unlike = np.repeat(_weeks(holiday_like_sunday=True), 100, axis=0)
    values = np.concatenate([alike, unlike]) + rng.normal(0, 1.0, (300, alike.shape[1]))
    holiday = np.repeat(holiday_columns("DE-HE", END, values.shape[1], STEP, BERLIN)[None], 300, 0)
    week = 7 * DAY
    _, ratio_alike = holidays_differ(values[:200], holiday[:200], week, workers)
    _, ratio_unlike = holidays_differ(values[200:], holiday[200:], week, workers)
    differ, ratio = holidays_differ(values, holiday, week, workers)
    assert ratio == pytest.approx((200 * ratio_alike + 100 * ratio_unlike) / 300, rel=1e-12)
    assert ratio_alike < 1.0 < ratio_unlike
    assert differ == (ratio > 1.0)


@pytest.mark.parametrize("with_break", [True, False])
def test_a_fit_gaps_holidays_in_its_own_copy_never_in_the_callers_data(with_break: bool) -> None:
    # Holidays unlike ordinary days, and a school break that lowers the level or does not:
    # the fit scales the break in a history of its own and gaps the holidays there, or (no
    # copy made) in a new one.
    end = int(datetime(2024, 1, 2, 23, 30, tzinfo=BERLIN).timestamp())
    width = 4 * 7 * DAY
    local = [datetime.fromtimestamp(int(end - STEP * k), BERLIN) for k in range(width)][::-1]
    hour = np.array([t.hour + t.minute / 60 for t in local])
    day = np.array([t.date() for t in local])
    level = np.where(
        np.isin(day, [date(2023, 12, 25), date(2023, 12, 26), date(2024, 1, 1)]), 5, 100
    )
    level = np.where(with_break & (day >= date(2023, 12, 27)), 0.5 * level, level)
    rng = np.random.default_rng(5)
    values = level * np.exp(-(((hour - 13.0) / 3.0) ** 2)) + rng.normal(0, 1, (20, width))
    data = from_matrix(values, step=STEP, end=end)
    before = data.values.copy()
    school = Period("Weihnachtsferien", "school", date(2023, 12, 27), date(2024, 1, 13))
    options = {"horizon": DAY, "timezone": "Europe/Berlin", "holidays": "DE-HE"}
    model = build("anchored", periods=(school,), **options).fit(data)
    np.testing.assert_array_equal(data.values, before)
    assert (model.predict(DAY).mean[:, 26].mean() < 60) == with_break  # the break's level
