"""Baseline models: persistence, seasonal naive (day, week) and the time-of-week average."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from analytics.base import SeriesModel
from analytics.panel import FloatArray
from analytics.profile import Profile, Seasons, fill_missing, last_value, row_mean

# Seasons a seasonal naive forecast may look back when the latest one is a gap.
_LOOKBACK_SEASONS = 4


class Persistence(SeriesModel):
    """Repeat the last observed value."""

    name: ClassVar[str] = "naive"

    def history(self, seasons: Seasons) -> int:
        """Return one day: enough to find a last value across short gaps."""
        return seasons.day

    def _fit_predict(self, y: FloatArray, seasons: Seasons, h: int) -> FloatArray:
        """Repeat each row's last finite value h times."""
        return np.repeat(last_value(y), h, axis=1)


class SeasonalNaive(SeriesModel):
    """Repeat the value one season ago, or an earlier season's when that one is a gap."""

    name: ClassVar[str] = "snaive_week"
    weekly: ClassVar[bool] = True

    def _period(self, seasons: Seasons) -> int:
        """Return the season length in slots."""
        return seasons.week if self.weekly else seasons.day

    def history(self, seasons: Seasons) -> int:
        """Return enough seasons to look past gaps."""
        return self._period(seasons) * _LOOKBACK_SEASONS

    def _fit_predict(self, y: FloatArray, seasons: Seasons, h: int) -> FloatArray:
        """Take, per step, the value at the same slot in the latest season that has one."""
        period = self._period(seasons)
        width = y.shape[1]
        steps = np.arange(1, h + 1)
        column = width - 1 + steps - period * np.ceil(steps / period).astype(np.int64)
        out = np.full((y.shape[0], h), np.nan)
        for _ in range(_LOOKBACK_SEASONS):
            valid = column >= 0
            taken = np.full((y.shape[0], h), np.nan)
            taken[:, valid] = y[:, column[valid]]
            out = fill_missing(out, taken)
            column = column - period
        return out


class SeasonalNaiveDay(SeasonalNaive):
    """Repeat the value one day ago."""

    name: ClassVar[str] = "snaive_day"
    weekly: ClassVar[bool] = False


class TimeOfWeekMean(SeriesModel):
    """Forecast the mean of past values at the same time of week (of day when weeks are short)."""

    name: ClassVar[str] = "tow_mean"

    def history(self, seasons: Seasons) -> int:
        """Return the averaged weeks."""
        return seasons.week * self.weeks

    def _fit_predict(self, y: FloatArray, seasons: Seasons, h: int) -> FloatArray:
        """Average each slot of the week, falling back to the day, then to the row mean."""
        weekly = Profile.fit(y, seasons.week).ahead(h)
        daily = Profile.fit(y, seasons.day).ahead(h)
        return fill_missing(weekly, daily, np.broadcast_to(row_mean(y), weekly.shape))
