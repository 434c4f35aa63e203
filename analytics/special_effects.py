"""What special days do to a group of series, estimated from its history, and applied.

Two effects, each used only when the history shows it:
- **Periods** (school holidays, a city's events; `analytics.calendar_file`, and the `school`
  days of the `holidays` library where it has them): one level factor per series and kind of
  period, the ratio of its readings in such periods to its ordinary time-of-week profile. It is
  used when, pooled over the group and judged one period day at a time with the factor
  estimated without that day, scaling the profile by it misses those days by less than the
  profile alone. Then readings in the periods are divided by it in the history (so the
  ordinary weeks' profiles are not pulled down by them) and forecasts of steps in a period are
  multiplied by it.
- **Public holidays in the horizon**: forecast as their weekday (today's way), as the series'
  Sunday profile, or as its profile of the history's holidays, whichever misses the history's
  holidays least, pooled over the group, each holiday judged on a profile made without it.
  At least two holidays with readings are needed; with fewer, holidays stay as their weekday.

Work is done per group of rows sharing an end (one group in the job and the backtest), so
column calendars are one-dimensional and memory stays that of the values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np

from analytics.localtime import utc_offsets
from analytics.panel import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray
from analytics.parallel import by_rows
from analytics.profile import Observed, slot_sums_at
from analytics.special_days import Calendar

logger = logging.getLogger(__name__)

# A period's factor is kept within these bounds: beyond them it is not a level but a closure.
FACTOR_BOUNDS = (0.2, 5.0)
# Distinct days needed to judge an effect one day at a time.
MIN_DAYS = 2
# Pooled judgements (is there an effect, which way holidays ahead go) are made on at most this
# many series of a group, evenly spread: one decision needs far fewer than 10,000 series, and
# judging a series costs several passes over its history.
JUDGED_ROWS = 512
# A series whose ordinary readings miss their profile by less than this share of their level
# is stuck (a counter repeating one value) and has no say in pooled judgements.
STUCK = 1e-3
# Holidays ahead leave their weekday's profile only for one missing the history's holidays by
# at most this share of the weekday's miss.
CLEARLY_BETTER = 0.9
WEEKDAY, SUNDAY, HOLIDAYS = "weekday", "sunday", "holidays"
_SUNDAY = 6


@dataclass(frozen=True, slots=True, eq=False)
class Columns:
    """Local calendar of consecutive slots: day number (days since 1970-01-01, local), slot of
    the day and slot of the week (Monday 00:00 is 0)."""

    day: IntArray
    slot: IntArray
    week_slot: IntArray

    @classmethod
    def of(cls, first: int, count: int, step: int, zone: ZoneInfo | None) -> Columns:
        """Return the calendar of `count` slots from epoch second `first`, `step` apart."""
        times = first + step * np.arange(count, dtype=np.int64)
        local = times + (utc_offsets(times, zone) if zone is not None and count else 0)
        day = local // SECONDS_PER_DAY
        slot = (local % SECONDS_PER_DAY) // step
        per_day = SECONDS_PER_DAY // step
        # Day 0 (1 January 1970) was a Thursday: weekday 3 with Monday 0.
        return cls(day, slot, ((day + 3) % 7) * per_day + slot)

    @property
    def weekday(self) -> IntArray:
        """Return each slot's weekday (Monday 0)."""
        return (self.day + 3) % 7


@dataclass(frozen=True, slots=True, eq=False)
class Effects:
    """What a fit estimated for one group of rows.

    `factors` holds, per kind of period whose effect shows, each row's level factor;
    `holiday_profile` (rows, slots of a day) is what a public holiday ahead is forecast as
    (None: as its weekday), named by `holiday_choice`.
    """

    factors: dict[str, FloatArray] = field(default_factory=dict)
    holiday_profile: FloatArray | None = None
    holiday_choice: str = WEEKDAY


def estimate(
    values: FloatArray,
    end: int,
    step: int,
    zone: ZoneInfo | None,
    calendar: Calendar,
    workers: int | None = None,
) -> tuple[Effects, FloatArray]:
    """Estimate the effects for rows sharing the end `end`; return them and the history to fit
    on (readings in periods of a kind that shows scaled to ordinary days). Row-wise sums over
    the whole history run a slice of rows at a time on `workers` threads."""
    width = values.shape[1]
    columns = Columns.of(end - step * (width - 1), width, step, zone)
    first, last = int(columns.day[0]), int(columns.day[-1])
    holiday = np.isin(columns.day, calendar.holiday_days(first, last))
    periods = {
        kind: np.isin(columns.day, days) for kind, days in calendar.period_days(first, last).items()
    }
    periods = {kind: inside for kind, inside in periods.items() if inside.any()}
    if not holiday.any() and not periods:
        return Effects(), values
    ordinary = ~holiday
    for inside in periods.values():
        ordinary &= ~inside
    day_slots = SECONDS_PER_DAY // step
    profile = _Ordinary(values, ordinary, columns, day_slots, workers)
    factors = {}
    adjusted = values
    for kind, inside in periods.items():
        factor = _period_factor(values, inside, columns, profile, kind)
        if factor is not None:
            factors[kind] = factor
            if adjusted is values:
                adjusted = values.copy()
            adjusted[:, inside] = values[:, inside] / factor[:, None]
    choice, holiday_profile = _holiday_profile(values, holiday, columns, profile, day_slots)
    return Effects(factors, holiday_profile, choice), adjusted


def apply_ahead(
    mean: FloatArray,
    effects: Effects,
    end: int,
    step: int,
    zone: ZoneInfo | None,
    calendar: Calendar,
) -> FloatArray:
    """Return forecasts of `h` steps after `end` with the estimated effects applied."""
    if not effects.factors and effects.holiday_profile is None:
        return mean
    h = mean.shape[1]
    ahead = Columns.of(end + step, h, step, zone)
    first, last = int(ahead.day[0]), int(ahead.day[-1])
    out = mean.copy()
    periods = calendar.period_days(first, last)
    for kind, factor in effects.factors.items():
        inside = np.isin(ahead.day, periods.get(kind, np.zeros(0, dtype=np.int64)))
        out[:, inside] *= factor[:, None]
    if effects.holiday_profile is not None:
        steps = np.flatnonzero(np.isin(ahead.day, calendar.holiday_days(first, last)))
        chosen = effects.holiday_profile[:, ahead.slot[steps]]
        out[:, steps] = np.where(np.isfinite(chosen), chosen, out[:, steps])
    return out


class _Ordinary:
    """Each row's time-of-week profile of ordinary days and its typical miss of them."""

    def __init__(
        self,
        values: FloatArray,
        ordinary: BoolArray,
        columns: Columns,
        day_slots: int,
        workers: int | None = None,
    ) -> None:
        """Sum the ordinary readings by slot of the week; judge the miss leave-one-out on at
        most `JUDGED_ROWS` rows, evenly spread (the others have no say in pooled judgements)."""
        week = 7 * day_slots
        use = np.isfinite(values) & ordinary[None, :]

        def sums(rows: slice) -> tuple[FloatArray, FloatArray]:
            return _sums(values[rows], use[rows], columns.week_slot, week)

        parts = by_rows(sums, values.shape[0], workers=workers)
        total = np.concatenate([part[0] for part in parts]) if parts else np.zeros((0, week))
        count = np.concatenate([part[1] for part in parts]) if parts else np.zeros((0, week))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.week = np.where(count > 0, total / count, np.nan)
        n = values.shape[0]
        judged = np.linspace(0, n - 1, min(n, JUDGED_ROWS)).round().astype(np.int64)
        self.typical = np.full(n, np.nan)
        self.typical[judged] = _typical_miss(
            values[judged], use[judged], total[judged], count[judged], columns.week_slot
        )
        self.columns = columns
        self.values = values
        self.use = use
        self.day_slots = day_slots

    def at(self, mask: BoolArray) -> FloatArray:
        """Return the weekly profile at the columns in `mask`, (rows, selected)."""
        return self.week[:, self.columns.week_slot[mask]]

    def weights(self) -> FloatArray:
        """Return 1 / typical miss per row (0 where it is unknown or zero): each row counts
        alike in pooled judgements, whatever its size."""
        good = np.isfinite(self.typical) & (self.typical > 0)
        return np.where(good, 1.0 / np.where(good, self.typical, 1.0), 0.0)

    def sunday(self) -> FloatArray:
        """Return each row's ordinary Sunday profile by slot of the day, (rows, day)."""
        sundays = self.columns.weekday == _SUNDAY
        return _mean_by_slot(
            self.values[:, sundays], self.use[:, sundays], self.columns.slot[sundays],
            self.day_slots,
        )  # fmt: skip


def _typical_miss(
    values: FloatArray, use: BoolArray, total: FloatArray, count: FloatArray, slots: IntArray
) -> FloatArray:
    """Return each row's mean miss of its ordinary readings by the profile without each."""
    filled = np.where(use, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        own_total = total[:, slots] - filled
        own_count = count[:, slots] - use
        others = np.where(own_count > 0, own_total / own_count, np.nan)
    miss = np.where(use, np.abs(values - others), np.nan)
    # A row that (nearly) never misses, a stuck counter, would outweigh every other in a
    # pooled judgement: it has no say (NaN).
    level = _nanmean(np.where(use, np.abs(values), np.nan))
    typical = _nanmean(miss)
    result: FloatArray = np.where(typical > STUCK * level, typical, np.nan)
    return result


def _period_factor(
    values: FloatArray, inside: BoolArray, columns: Columns, ordinary: _Ordinary, kind: str
) -> FloatArray | None:
    """Return each row's level factor in periods of one kind, or None when, judged a day at a
    time with the factor estimated without that day, it does not beat the ordinary profile."""
    cols = np.flatnonzero(inside)
    profile = ordinary.at(inside)
    seen = values[:, cols]
    use = np.isfinite(seen) & np.isfinite(profile) & (profile > 0)
    days, day_index = np.unique(columns.day[cols], return_inverse=True)
    if days.size < MIN_DAYS or not use.any():
        return None
    v = np.where(use, seen, 0.0)
    p = np.where(use, profile, 0.0)
    onehot = np.zeros((cols.size, days.size))
    onehot[np.arange(cols.size), day_index] = 1.0
    v_day, p_day = v @ onehot, p @ onehot
    v_all, p_all = v_day.sum(axis=1), p_day.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        without_day = (v_all[:, None] - v_day) / (p_all[:, None] - p_day)
        factor = np.where(p_all > 0, v_all / p_all, np.nan)
    without_day = np.clip(without_day, *FACTOR_BOUNDS)[:, day_index]
    judged = use & np.isfinite(without_day)
    scaled = np.where(judged, np.abs(seen - without_day * profile), 0.0).sum(axis=1)
    plain = np.where(judged, np.abs(seen - profile), 0.0).sum(axis=1)
    weight = ordinary.weights()
    with_factor, without = float(weight @ scaled), float(weight @ plain)
    shown = judged.any() and with_factor < without
    logger.debug(
        "%s periods: scaled miss %.1f against %.1f unscaled: %s", kind, with_factor, without, shown
    )
    if not shown:
        return None
    group = float(np.nanmedian(factor)) if np.isfinite(factor).any() else 1.0
    result: FloatArray = np.clip(np.where(np.isfinite(factor), factor, group), *FACTOR_BOUNDS)
    return result


def _holiday_profile(
    values: FloatArray, holiday: BoolArray, columns: Columns, ordinary: _Ordinary, day_slots: int
) -> tuple[str, FloatArray | None]:
    """Return how holidays ahead are best forecast (weekday, sunday or holidays) and the
    profile by slot of the day for the latter two (None for weekday)."""
    cols = np.flatnonzero(holiday)
    if cols.size == 0:
        return WEEKDAY, None
    seen = values[:, cols]
    observed = np.isfinite(seen)
    days, day_index = np.unique(columns.day[cols], return_inverse=True)
    if np.unique(day_index[observed.any(axis=0)]).size < MIN_DAYS:
        return WEEKDAY, None
    slot = columns.slot[cols]
    total, count = _sums(seen, observed, slot, day_slots)
    # Each holiday is judged on the profile of the other holidays: its own day taken out.
    own_total = np.zeros(seen.shape)
    own_count = np.zeros(seen.shape)
    for d in range(days.size):
        on_day = day_index == d
        day_total, day_count = _sums(seen[:, on_day], observed[:, on_day], slot[on_day], day_slots)
        own_total[:, on_day] = day_total[:, slot[on_day]]
        own_count[:, on_day] = day_count[:, slot[on_day]]
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (total[:, slot] - own_total) / (count[:, slot] - own_count)
        holidays_profile = np.where(count > 0, total / count, np.nan)
    sunday = ordinary.sunday()
    candidates = {WEEKDAY: ordinary.at(holiday), SUNDAY: sunday[:, slot], HOLIDAYS: others}
    judged = observed.copy()
    for guess in candidates.values():
        judged &= np.isfinite(guess)
    if not judged.any():
        return WEEKDAY, None
    weight = ordinary.weights()
    misses = {
        name: float(weight @ np.where(judged, np.abs(seen - guess), 0.0).sum(axis=1))
        for name, guess in candidates.items()
    }
    choice = min(misses, key=lambda name: misses[name])
    # Today's way (the weekday) stays unless another is clearly better: a near tie is noise.
    if misses[choice] >= CLEARLY_BETTER * misses[WEEKDAY]:
        choice = WEEKDAY
    logger.debug("holidays ahead: misses %s, chose %s", misses, choice)
    if choice == WEEKDAY:
        return WEEKDAY, None
    return choice, sunday if choice == SUNDAY else holidays_profile


def _sums(
    values: FloatArray, use: BoolArray, slots: IntArray, period: int
) -> tuple[FloatArray, FloatArray]:
    """Return per row the sum and count of the used values by their column's slot."""
    return slot_sums_at(Observed(use, np.where(use, values, 0.0)), slots, period)


def _mean_by_slot(values: FloatArray, use: BoolArray, slots: IntArray, period: int) -> FloatArray:
    """Return per row the mean of the used values by slot, NaN where a slot has none."""
    total, count = _sums(values, use, slots, period)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(count > 0, total / count, np.nan)
    return mean


def _nanmean(x: FloatArray) -> FloatArray:
    """Return each row's mean of finite values, NaN where none."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(finite, x, 0.0).sum(axis=1) / count
    return mean
