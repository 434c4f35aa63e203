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
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from analytics.panel import BoolArray, FloatArray, IntArray

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


def holidays_differ(values: FloatArray, holiday: BoolArray, week: int) -> tuple[bool, float]:
    """Return whether holidays miss the ordinary days' time-of-week profile by more than
    ordinary days miss it themselves, pooled over rows, and the ratio of the two misses.

    Each row's misses are taken relative to its own ordinary miss, so large series do not
    decide for all. Ordinary days are judged leave-one-out, as a holiday is.
    """
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
    typical = _mean_where(ordinary_miss, ordinary)
    on_holiday = _mean_where(holiday_miss, holiday & np.isfinite(values))
    usable = np.isfinite(typical) & (typical > 0) & np.isfinite(on_holiday)
    if not usable.any():
        return False, float("nan")
    ratio = float(np.mean(on_holiday[usable] / typical[usable]))
    return ratio > 1.0, ratio


def _mean_where(x: FloatArray, where: BoolArray) -> FloatArray:
    """Return each row's mean of x where `where` holds and x is finite, NaN where none."""
    use = where & np.isfinite(x)
    count = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(use, x, 0.0).sum(axis=1) / count
    return mean
