"""Special days' effects, estimated from the history: public holidays ahead forecast as the
history's holidays look, and school holidays (a city's file) as a level the data show."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from analytics.calendar_file import Period
from analytics.models import build
from analytics.panel import FloatArray, from_matrix
from analytics.special_days import Calendar, day_number
from analytics.special_effects import HOLIDAYS, SUNDAY, WEEKDAY, estimate

BERLIN = ZoneInfo("Europe/Berlin")
STEP = 1800
DAY = 48
# Wednesday 29 May 2024, 23:30 in Berlin: Corpus Christi (a Hessian holiday) is next day.
END = int(datetime(2024, 5, 29, 23, 30, tzinfo=BERLIN).timestamp())
# Held before the end: Good Friday, Easter Monday, 1 May, Ascension Day, Whit Monday.
HOLIDAYS_BEFORE = {"2024-03-29", "2024-04-01", "2024-05-01", "2024-05-09", "2024-05-20"}
EASTER_BREAK = Period("Osterferien", "school", date(2024, 3, 25), date(2024, 4, 13))
MIDDAY = 26  # 13:00


def _series(
    *, holidays: set[str], school: float = 1.0, weeks: int = 10, end: int = END
) -> FloatArray:
    """Return one car park ending at `end`: 100 at weekday middays, 10 on weekends and on
    `holidays`, `school` times that during the Easter school holidays."""
    width = weeks * 7 * DAY
    local = [datetime.fromtimestamp(int(t), BERLIN) for t in end - STEP * np.arange(width)[::-1]]
    hour = np.array([t.hour + t.minute / 60 for t in local])
    quiet = np.array([t.weekday() >= 5 or t.date().isoformat() in holidays for t in local])
    inside = np.array([EASTER_BREAK.first <= t.date() <= EASTER_BREAK.last for t in local])
    shape = np.exp(-(((hour - 13.0) / 3.0) ** 2))
    noise = np.random.default_rng(weeks).normal(0.0, 1.0, width)
    return (np.where(quiet, 10.0, 100.0) * shape * np.where(inside, school, 1.0) + noise)[None, :]


def _forecast(values: FloatArray, end: int = END, **options: object) -> FloatArray:
    data = from_matrix(values, step=STEP, end=end, capacity=np.array([150.0]))
    model = build("auto", horizon=2 * DAY, timezone="Europe/Berlin", **options)
    mean: FloatArray = model.fit(data).predict(2 * DAY).mean[0]
    return mean


def test_a_holiday_ahead_is_forecast_as_the_history_shows_holidays() -> None:
    values = _series(holidays=HOLIDAYS_BEFORE)
    told = _forecast(values, holidays="DE-HE")
    plain = _forecast(values)
    # Thursday 30 May (Corpus Christi) is quiet like the holidays before it; Friday is not.
    assert told[MIDDAY] == pytest.approx(10.0, abs=1.0)
    assert plain[MIDDAY] > 50.0  # forecast as a Thursday before
    assert told[DAY + MIDDAY] == pytest.approx(100.0, abs=3.0)


def test_holidays_like_ordinary_days_leave_the_forecast_as_it_was() -> None:
    values = _series(holidays=set())
    effects, history = estimate(values, END, STEP, BERLIN, Calendar("DE-HE"))
    assert effects.holiday_choice == WEEKDAY and effects.holiday_profile is None
    assert history is values
    assert _forecast(values, holidays="DE-HE")[MIDDAY] == pytest.approx(100.0, abs=5.0)


def test_one_holiday_in_the_history_is_too_few_to_judge() -> None:
    # Four weeks before 29 May hold only Ascension Day and Whit Monday... and 1 May: cut to two
    # weeks, which hold Whit Monday alone.
    values = _series(holidays=HOLIDAYS_BEFORE, weeks=2)
    effects, _ = estimate(values, END, STEP, BERLIN, Calendar("DE-HE"))
    assert effects.holiday_choice == WEEKDAY
    values = _series(holidays=HOLIDAYS_BEFORE, weeks=4)
    effects, _ = estimate(values, END, STEP, BERLIN, Calendar("DE-HE"))
    assert effects.holiday_choice in (SUNDAY, HOLIDAYS)


# Monday 15 April 2024, 23:30: the first ordinary week after the Easter school holidays.
AFTER_EASTER = int(datetime(2024, 4, 14, 23, 30, tzinfo=BERLIN).timestamp())


def test_school_holidays_in_the_history_do_not_pull_down_the_weeks_after() -> None:
    values = _series(holidays=set(), school=0.5, weeks=6, end=AFTER_EASTER)
    told = _forecast(values, end=AFTER_EASTER, periods=(EASTER_BREAK,))
    plain = _forecast(values, end=AFTER_EASTER)
    assert told[MIDDAY] == pytest.approx(100.0, abs=3.0)
    assert plain[MIDDAY] < 90.0


def test_a_school_holiday_ahead_is_forecast_at_its_estimated_level() -> None:
    values = _series(holidays=set(), school=0.5, weeks=6, end=AFTER_EASTER)
    autumn = Period("Herbstferien", "school", date(2024, 4, 16), date(2024, 4, 20))
    told = _forecast(values, end=AFTER_EASTER, periods=(EASTER_BREAK, autumn))
    # Monday is an ordinary day, Tuesday the first day of the next school holidays.
    assert told[MIDDAY] == pytest.approx(100.0, abs=3.0)
    assert told[DAY + MIDDAY] == pytest.approx(50.0, abs=3.0)
    effects, history = estimate(values, AFTER_EASTER, STEP, BERLIN, Calendar("", (EASTER_BREAK,)))
    assert effects.factors["school"] == pytest.approx([0.5], abs=0.01)
    # Its readings are scaled back to ordinary days' (the 13:00 of weekdays: 100).
    local = [
        datetime.fromtimestamp(int(t), BERLIN)
        for t in AFTER_EASTER - STEP * np.arange(values.shape[1])[::-1]
    ]
    midday = [k for k, t in enumerate(local) if EASTER_BREAK.first <= t.date() <= EASTER_BREAK.last
              and t.weekday() < 5 and t.hour == 13 and t.minute == 0]  # fmt: skip
    assert values[0, midday].mean() == pytest.approx(50.0, abs=1.0)
    assert history[0, midday].mean() == pytest.approx(100.0, abs=1.0)


def test_bands_of_a_step_at_half_its_ordinary_level_are_half_as_wide() -> None:
    values = _series(holidays=set(), school=0.5, weeks=6, end=AFTER_EASTER)
    data = from_matrix(values, step=STEP, end=AFTER_EASTER, capacity=np.array([150.0]))
    autumn = Period("Herbstferien", "school", date(2024, 4, 16), date(2024, 4, 20))
    widths = []
    for periods in ((EASTER_BREAK,), (EASTER_BREAK, autumn)):
        model = build("auto", horizon=2 * DAY, timezone="Europe/Berlin", periods=periods)
        bands = model.fit(data).predict(2 * DAY)
        widths.append(bands.hi[0] - bands.lo[0])
    # The same history, so the same calibration: only the autumn break's steps differ.
    np.testing.assert_allclose(widths[1][:DAY], widths[0][:DAY])
    ratio = widths[1][DAY + MIDDAY] / widths[0][DAY + MIDDAY]
    assert ratio == pytest.approx(0.5, abs=0.03)


def test_periods_that_look_ordinary_change_nothing() -> None:
    values = _series(holidays=set(), school=1.0, weeks=6, end=AFTER_EASTER)
    rng = np.random.default_rng(3)
    values = values + rng.normal(0.0, 2.0, values.shape)
    autumn = Period("Herbstferien", "school", date(2024, 4, 16), date(2024, 4, 20))
    told = _forecast(values, end=AFTER_EASTER, periods=(EASTER_BREAK, autumn))
    np.testing.assert_array_equal(told, _forecast(values, end=AFTER_EASTER))


def test_the_library_brings_hesses_school_holidays_and_a_file_adds_periods_by_kind() -> None:
    autumn = [day_number(date(2024, 10, 14)), day_number(date(2024, 10, 25))]
    hesse = Calendar("DE-HE").period_days(*autumn)
    assert hesse["school"].tolist() == list(range(autumn[0], autumn[1] + 1))
    assert Calendar("DK").period_days(*autumn) == {}  # the library has none for Denmark
    fair = Period("Messe", "event", date(2024, 10, 20), date(2024, 10, 27))
    both = Calendar("DE-HE", (fair,)).period_days(*autumn)
    assert sorted(both) == ["event", "school"] and both["event"].size == 6
