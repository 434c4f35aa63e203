"""Public holidays of the city's country: found in the history, kept out of the profiles when
the data show they are unlike ordinary days.

Holidays come from the maintained `holidays` calendar library (a region is a country code,
optionally with a subdivision: `DE-HE`, `DK`). Whether they matter is estimated, not assumed:
each series' readings on holidays are compared with its time-of-week profile of ordinary days;
when, pooled over the series fitted together, holidays miss that profile by more than ordinary
days do, their readings are left out of every model's history (as gaps), so a Whit Monday does
not pull down the Mondays after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from analytics.calendar_file import Period
from analytics.panel import BoolArray, FloatArray, IntArray
from analytics.parallel import by_rows

logger = logging.getLogger(__name__)


def check_region(region: str) -> None:
    """Raise ValueError naming the fix when `region` is not a known country[-subdivision]."""
    _calendar(region, 2024)


@lru_cache(maxsize=64)
def _calendar(region: str, year: int) -> frozenset[date]:
    """Return the public holidays of a region in one year."""
    country, _, subdivision = region.partition("-")
    try:
        days = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        raise ValueError(
            f"unknown holiday country '{country}': give an ISO 3166 code such as DE or DK"
        ) from None
    except ValueError as exc:
        raise ValueError(f"holiday region '{region}': {exc}") from None
    return frozenset(days)


@lru_cache(maxsize=64)
def _school_calendar(region: str, year: int) -> frozenset[date]:
    """Return the school holidays the library knows for a region in one year (none for most)."""
    country, _, subdivision = region.partition("-")
    try:
        days = holidays.country_holidays(
            country, subdiv=subdivision or None, years=year, categories=("school",)
        )
    except (NotImplementedError, ValueError):
        return frozenset()
    return frozenset(days)


_EPOCH = date(1970, 1, 1)
SCHOOL = "school"


def day_number(day: date) -> int:
    """Return the days from 1 January 1970 to `day`."""
    return (day - _EPOCH).days


def _numbers(days: frozenset[date] | list[date], first: int, last: int) -> IntArray:
    """Return the sorted day numbers of `days` within [first, last]."""
    numbers = sorted({day_number(day) for day in days})
    return np.array([d for d in numbers if first <= d <= last], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The special days a group of series is fitted with: the public holidays of a region
    (`DE-HE`, `DK`; empty: none) and special periods by kind, those of a city's file
    (`analytics.calendar_file`) and the school holidays the library has for the region."""

    region: str = ""
    periods: tuple[Period, ...] = ()

    def __bool__(self) -> bool:
        """Return whether there is any special day to look for."""
        return bool(self.region or self.periods)

    def holiday_days(self, first: int, last: int) -> IntArray:
        """Return the day numbers of public holidays from day `first` to day `last`."""
        if not self.region:
            return np.zeros(0, dtype=np.int64)
        years = range(_year(first), _year(last) + 1)
        return _numbers([d for y in years for d in _calendar(self.region, y)], first, last)

    def period_days(self, first: int, last: int) -> dict[str, IntArray]:
        """Return, per kind, the day numbers of special periods from day `first` to `last`."""
        by_kind: dict[str, list[date]] = {}
        if self.region:
            for year in range(_year(first), _year(last) + 1):
                by_kind.setdefault(SCHOOL, []).extend(_school_calendar(self.region, year))
        for period in self.periods:
            if day_number(period.last) >= first and day_number(period.first) <= last:
                by_kind.setdefault(period.kind, []).extend(period.days())
        numbers = {kind: _numbers(days, first, last) for kind, days in by_kind.items()}
        return {kind: days for kind, days in numbers.items() if days.size}


def _year(number: int) -> int:
    """Return the year of a day number."""
    return (_EPOCH + timedelta(days=number)).year


def holiday_columns(region: str, end: int, width: int, step: int, zone: ZoneInfo) -> BoolArray:
    """Return which of `width` slots ending at epoch second `end` fall on a holiday (local)."""
    times = end - step * np.arange(width - 1, -1, -1, dtype=np.int64)
    first = datetime.fromtimestamp(int(times[0]), zone).date()
    last = datetime.fromtimestamp(int(times[-1]), zone).date()
    starts, ends = [], []
    for year in range(first.year, last.year + 1):
        for day in sorted(_calendar(region, year)):
            if first <= day <= last:
                midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
                starts.append(midnight.timestamp())
                ends.append((midnight + timedelta(days=1)).timestamp())
    if not starts:
        return np.zeros(width, dtype=bool)
    at = np.searchsorted(np.array(starts), times, side="right") - 1
    inside: BoolArray = (at >= 0) & (times < np.array(ends)[np.maximum(at, 0)])
    return inside


def holiday_mask(
    region: str, end: IntArray, width: int, step: int, zone: ZoneInfo | None
) -> BoolArray:
    """Return (n, width): which slots of right-aligned rows ending at `end` are holidays."""
    where = zone or ZoneInfo("UTC")
    out = np.zeros((end.size, width), dtype=bool)
    for value in np.unique(end):
        out[end == value] = holiday_columns(region, int(value), width, step, where)
    return out


def holidays_differ(
    values: FloatArray, holiday: BoolArray, week: int, workers: int | None = None
) -> tuple[bool, float]:
    """Return whether holidays miss the ordinary days' time-of-week profile by more than
    ordinary days miss it themselves, pooled over rows, and the ratio of the two misses.

    Each row's misses are taken relative to its own ordinary miss, so large series do not
    decide for all. Ordinary days are judged leave-one-out, as a holiday is. Rows are judged
    a slice at a time on `workers` threads (`analytics.parallel`; the same on any number).
    """

    def misses(rows: slice) -> tuple[FloatArray, FloatArray]:
        return _misses(values[rows], holiday[rows], week)

    parts = by_rows(misses, values.shape[0], workers=workers)
    if not parts:
        return False, float("nan")
    typical = np.concatenate([part[0] for part in parts])
    on_holiday = np.concatenate([part[1] for part in parts])
    usable = np.isfinite(typical) & (typical > 0) & np.isfinite(on_holiday)
    if not usable.any():
        return False, float("nan")
    ratio = float(np.mean(on_holiday[usable] / typical[usable]))
    return ratio > 1.0, ratio


def _misses(values: FloatArray, holiday: BoolArray, week: int) -> tuple[FloatArray, FloatArray]:
    """Return each row's mean miss of its ordinary readings and of its holidays by the
    ordinary profile (ordinary ones left out in turn)."""
    n, width = values.shape
    ordinary = np.isfinite(values) & ~holiday
    filled = np.where(ordinary, values, 0.0)
    # Slot sums over whole weeks, the oldest padded, counted from each row's end.
    pad = (-width) % week
    weeks = (width + pad) // week
    padded = np.concatenate([np.zeros((n, pad)), filled], axis=1)
    counted = np.concatenate([np.zeros((n, pad)), ordinary], axis=1)
    total = np.tile(padded.reshape(n, weeks, week).sum(axis=1), weeks)[:, pad:]
    count = np.tile(counted.reshape(n, weeks, week).sum(axis=1), weeks)[:, pad:]
    with np.errstate(invalid="ignore", divide="ignore"):
        left_out = count - ordinary
        ordinary_miss = np.abs(values - (total - filled) / np.where(left_out > 0, left_out, np.nan))
        holiday_miss = np.abs(values - total / np.where(count > 0, count, np.nan))
    return _mean_where(ordinary_miss, ordinary), _mean_where(
        holiday_miss, holiday & np.isfinite(values)
    )


def _mean_where(x: FloatArray, where: BoolArray) -> FloatArray:
    """Return each row's mean of x where `where` holds and x is finite, NaN where none."""
    use = where & np.isfinite(x)
    count = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(use, x, 0.0).sum(axis=1) / count
    return mean
