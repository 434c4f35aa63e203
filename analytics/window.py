"""The stretch of history one fit looks at, with the intermediates models share.

Several models fitted on the same rows (the candidates of `auto`) need the same slot sums,
profiles, leave-one-out profiles and deviations from them. A `Window` computes each once, the
same way whichever model asks first, so sharing never changes a result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.localtime import RelativeSlots, Slots
from analytics.panel import FloatArray
from analytics.profile import (
    Observed,
    Profile,
    Seasons,
    fill_missing,
    last_value,
    row_mean,
    slot_sums,
    slot_sums_at,
)


@dataclass(frozen=True, slots=True, eq=False)
class Baseline:
    """Weekly and daily profiles of each row, in sample (leave-one-out) and ahead.

    In-sample arrays cover the window's last `width` columns; `deviation` is the data minus the
    in-sample weekly profile there.
    """

    weekly: FloatArray
    daily: FloatArray
    weekly_ahead: FloatArray
    daily_ahead: FloatArray
    deviation: FloatArray

    @property
    def width(self) -> int:
        """Return how many columns the in-sample arrays cover."""
        return int(self.weekly.shape[1])

    def last(self, width: int) -> Baseline:
        """Return the same baseline over only its last `width` columns (views)."""
        cut = self.width - width
        return Baseline(
            self.weekly[:, cut:], self.daily[:, cut:], self.weekly_ahead, self.daily_ahead,
            self.deviation[:, cut:],
        )  # fmt: skip


class Window:
    """Right-aligned rows (n, width) of one fit, their season slots and shared intermediates."""

    def __init__(
        self, values: FloatArray, seasons: Seasons, h: int, slots: Slots | None = None
    ) -> None:
        """Wrap `values` forecast `h` steps ahead; `slots` default to UTC positions."""
        self.values = values
        self.seasons = seasons
        self.h = h
        self.slots: Slots = slots or RelativeSlots()
        self._observed: Observed | None = None
        self._sums: dict[int, tuple[FloatArray, FloatArray]] = {}
        self._week_sums: tuple[FloatArray, FloatArray] | None = None
        self._profiles: dict[tuple[int, int], Profile] = {}
        self._baselines: dict[int, Baseline] = {}
        self._row_mean: FloatArray | None = None
        self._last_value: FloatArray | None = None
        # What a model learnt per row that outlives the fit (e.g. a fitted decay), by key.
        self.state: dict[str, FloatArray] = {}

    @property
    def width(self) -> int:
        """Return the number of columns."""
        return int(self.values.shape[1])

    @property
    def observed(self) -> Observed:
        """Return the observed mask and zero-filled values, computed on first use."""
        if self._observed is None:
            self._observed = Observed.of(self.values)
        return self._observed

    def week_sums(self) -> tuple[FloatArray, FloatArray]:
        """Return the sum and count of finite values per slot of each week alone, each
        (n, weeks, slots of a week); week 0 is the latest seven days (the last `week` columns)."""
        if self._week_sums is None:
            period = self.seasons.week
            age = (self.width - 1 - np.arange(self.width)) // period
            weeks = int(age.max(initial=0)) + 1
            slots = age * period + self.slots.columns(self.width, period)
            total, count = slot_sums_at(self.observed, slots, weeks * period)
            n = self.values.shape[0]
            self._week_sums = (total.reshape(n, weeks, period), count.reshape(n, weeks, period))
        return self._week_sums

    def sums(self, period: int) -> tuple[FloatArray, FloatArray]:
        """Return the sum and count of finite values per slot of `period`, each (n, period)."""
        if period not in self._sums:
            if self.seasons.week % period == 0:
                # A week's slots fold onto a day's (or any period dividing the week): adding up
                # the small per-week sums is cheaper than another pass over the columns.
                total, count = self.week_sums()
                n, folds = total.shape[0], self.seasons.week // period
                self._sums[period] = (
                    total.sum(axis=1).reshape(n, folds, period).sum(axis=1),
                    count.sum(axis=1).reshape(n, folds, period).sum(axis=1),
                )
            elif isinstance(self.slots, RelativeSlots):
                self._sums[period] = slot_sums(self.observed, period)
            else:
                slots = self.slots.columns(self.width, period)
                self._sums[period] = slot_sums_at(self.observed, slots, period)
        return self._sums[period]

    def profile(self, period: int, half_width: int = 0) -> Profile:
        """Return the profile of `period` slots pooled over +-half_width neighbouring slots."""
        key = (period, half_width)
        if key not in self._profiles:
            self._profiles[key] = Profile.of(self.sums(period), period, half_width)
        return self._profiles[key]

    def row_mean(self) -> FloatArray:
        """Return each row's mean as an (n, 1) column, NaN for empty rows."""
        if self._row_mean is None:
            self._row_mean = row_mean(self.observed)
        return self._row_mean

    def last_value(self) -> FloatArray:
        """Return each row's last finite value as an (n, 1) column, NaN for empty rows."""
        if self._last_value is None:
            self._last_value = last_value(self.observed)
        return self._last_value

    def ahead(self, period: int, half_width: int = 0) -> FloatArray:
        """Return the profile mean at each forecast step, (n, h)."""
        return self.profile(period, half_width).ahead(self.slots.ahead(self.h, period))

    def baseline(self, half_width: int, width: int) -> Baseline:
        """Return both profiles on all columns, in sample over the last `width` columns.

        Each profile falls back to the other, then to the row mean. A wider baseline computed
        before is cut down rather than recomputed: every in-sample value depends on its own
        column only.
        """
        width = min(width, self.width)
        known = self._baselines.get(half_width)
        if known is None or known.width < width:
            known = self._baseline(half_width, width)
            self._baselines[half_width] = known
        return known if known.width == width else known.last(width)

    def _baseline(self, half_width: int, width: int) -> Baseline:
        """Compute the baseline over the last `width` columns."""
        week_period, day_period = self.seasons.week, self.seasons.day
        week = self.profile(week_period, half_width)
        day = self.profile(day_period, half_width)
        mean = self.row_mean()
        recent = self.values[:, self.width - width :]
        observed = self.observed.last(width)
        weekly = week.leave_one_out(observed, self.slots.columns(width, week_period))
        daily = day.leave_one_out(observed, self.slots.columns(width, day_period))
        weekly_ahead = week.ahead(self.slots.ahead(self.h, week_period))
        daily_ahead = day.ahead(self.slots.ahead(self.h, day_period))
        mean_ahead = np.broadcast_to(mean, weekly_ahead.shape)
        weekly_in = fill_missing(weekly, daily, np.broadcast_to(mean, weekly.shape))
        return Baseline(
            weekly=weekly_in,
            daily=fill_missing(daily, weekly, np.broadcast_to(mean, daily.shape)),
            weekly_ahead=fill_missing(weekly_ahead, daily_ahead, mean_ahead),
            daily_ahead=fill_missing(daily_ahead, weekly_ahead, mean_ahead),
            deviation=recent - weekly_in,
        )
