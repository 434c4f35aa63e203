"""Baseline models: persistence, seasonal naive (day, week) and the time-of-week average."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from analytics.base import SeriesModel
from analytics.panel import FloatArray, IntArray
from analytics.profile import Seasons, fill_missing
from analytics.window import Window

# Seasons a seasonal naive forecast may look back when the latest one is a gap.
_LOOKBACK_SEASONS = 4


class Persistence(SeriesModel):
    """Repeat the last observed value."""

    name: ClassVar[str] = "naive"
    uses_holidays: ClassVar[bool] = False

    def history(self, seasons: Seasons) -> int:
        """Return one day: enough to find a last value across short gaps."""
        return seasons.day

    def _fit_predict(self, window: Window) -> FloatArray:
        """Repeat each row's last finite value h times."""
        return np.repeat(window.last_value(), window.h, axis=1)


class SeasonalNaive(SeriesModel):
    """Repeat the value one season ago, or an earlier season's when that one is a gap."""

    name: ClassVar[str] = "snaive_week"
    uses_holidays: ClassVar[bool] = False
    weekly: ClassVar[bool] = True

    def _period(self, seasons: Seasons) -> int:
        """Return the season length in slots."""
        return seasons.week if self.weekly else seasons.day

    def history(self, seasons: Seasons) -> int:
        """Return enough seasons to look past gaps."""
        return self._period(seasons) * _LOOKBACK_SEASONS

    def _fit_predict(self, window: Window) -> FloatArray:
        """Take, per step, the value at the same slot in the latest season that has one."""
        period = self._period(window.seasons)
        columns = latest_columns(
            window.slots.columns(window.width, period), period, _LOOKBACK_SEASONS
        )[window.slots.ahead(window.h, period)]
        y = window.values
        out = np.full((y.shape[0], window.h), np.nan)
        for k in range(_LOOKBACK_SEASONS):
            valid = columns[:, k] >= 0
            taken = np.full((y.shape[0], window.h), np.nan)
            taken[:, valid] = y[:, columns[valid, k]]
            out = fill_missing(out, taken)
        return out


def latest_columns(slots: IntArray, period: int, count: int) -> IntArray:
    """Return (period, count): per slot, its latest `count` columns, newest first, -1 if none."""
    columns = np.arange(slots.size, dtype=np.int64)
    order = np.lexsort((-columns, slots))
    ordered = slots[order]
    first = np.searchsorted(ordered, ordered, side="left")
    rank = np.arange(slots.size) - first
    out = np.full((period, count), -1, dtype=np.int64)
    kept = rank < count
    out[ordered[kept], rank[kept]] = columns[order][kept]
    return out


class SeasonalNaiveDay(SeasonalNaive):
    """Repeat the value one day ago."""

    name: ClassVar[str] = "snaive_day"
    weekly: ClassVar[bool] = False


class TimeOfWeekMean(SeriesModel):
    """Forecast the mean of past values at the same time of week (of day when weeks are short)."""

    name: ClassVar[str] = "tow_mean"
    uses_holidays: ClassVar[bool] = False

    def history(self, seasons: Seasons) -> int:
        """Return the averaged weeks."""
        return seasons.week * self.weeks

    def _fit_predict(self, window: Window) -> FloatArray:
        """Average each slot of the week, falling back to the day, then to the row mean."""
        weekly = window.ahead(window.seasons.week)
        daily = window.ahead(window.seasons.day)
        return fill_missing(weekly, daily, np.broadcast_to(window.row_mean(), weekly.shape))
