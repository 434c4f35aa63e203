"""Seasonal slot arithmetic on right-aligned matrices: sums, profiles and their leave-one-out form.

A matrix row ends at its series' last slot. With period p, column t of a width-W matrix lies in
slot (t - W) mod p, so the last column is slot p - 1 and forecast step j (1-based) is slot
(j - 1) mod p, for every row alike; no per-series calendar is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.panel import SECONDS_PER_DAY, FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class Seasons:
    """Slots per day and per season (week by default) at a panel's step."""

    day: int
    week: int

    @classmethod
    def of(cls, step: int, season_days: int = 7) -> Seasons:
        """Return the seasons for a step in seconds; the step must divide a day."""
        if SECONDS_PER_DAY % step:
            raise ValueError(f"step of {step} s does not divide a day; choose one that does")
        day = SECONDS_PER_DAY // step
        return cls(day=day, week=day * season_days)


def column_slots(width: int, period: int) -> IntArray:
    """Return the slot of each of `width` columns."""
    return (np.arange(width, dtype=np.int64) - width) % period


def future_slots(horizon: int, period: int) -> IntArray:
    """Return the slot of each forecast step 1..horizon."""
    return np.arange(horizon, dtype=np.int64) % period


def slot_sums(y: FloatArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Return the sum and the count of finite values per slot, each (n, period)."""
    n, width = y.shape
    full = width // period
    lead = width - full * period
    finite = ~np.isnan(y)
    filled = np.where(finite, y, 0.0)
    total = np.zeros((n, period))
    count = np.zeros((n, period))
    if full:
        total += filled[:, lead:].reshape(n, full, period).sum(axis=1)
        count += finite[:, lead:].reshape(n, full, period).sum(axis=1)
    if lead:
        total[:, period - lead :] += filled[:, :lead]
        count[:, period - lead :] += finite[:, :lead]
    return total, count


def smooth_circular(x: FloatArray, half_width: int) -> FloatArray:
    """Return the circular moving sum of x over +-half_width slots along the last axis."""
    if half_width <= 0:
        return x
    out = x.copy()
    for shift in range(1, half_width + 1):
        out += np.roll(x, shift, axis=-1) + np.roll(x, -shift, axis=-1)
    return out


@dataclass(frozen=True, slots=True)
class Profile:
    """A seasonal profile: smoothed sums and counts per slot, and the period."""

    total: FloatArray
    count: FloatArray
    period: int

    @classmethod
    def fit(cls, y: FloatArray, period: int, half_width: int = 0) -> Profile:
        """Estimate the profile of each row, pooling +-half_width neighbouring slots."""
        total, count = slot_sums(y, period)
        return cls(smooth_circular(total, half_width), smooth_circular(count, half_width), period)

    def mean(self) -> FloatArray:
        """Return the profile mean per slot, NaN where a slot has no value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / self.count, np.nan)

    def at_columns(self, width: int) -> FloatArray:
        """Return the profile mean laid out on the columns of a width-wide matrix."""
        return periodic(self.mean(), width)

    def leave_one_out(self, y: FloatArray) -> FloatArray:
        """Return, per column of `y` (the last columns of the fitted matrix), the profile mean
        without that column's own value."""
        width = y.shape[1]
        finite = ~np.isnan(y)
        total = periodic(self.total, width) - np.where(finite, y, 0.0)
        count = periodic(self.count, width) - finite
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    def ahead(self, horizon: int) -> FloatArray:
        """Return the profile mean for forecast steps 1..horizon."""
        return self.mean()[:, future_slots(horizon, self.period)]


def periodic(per_slot: FloatArray, width: int) -> FloatArray:
    """Return per-slot values (n, p) repeated over the last `width` columns of a matrix."""
    period = per_slot.shape[1]
    repeats = -(-width // period)
    return np.tile(per_slot, repeats)[:, repeats * period - width :]


def fill_missing(primary: FloatArray, *fallbacks: FloatArray) -> FloatArray:
    """Return primary with NaN entries taken from the first fallback that has a value."""
    out = primary
    for fallback in fallbacks:
        out = np.where(np.isnan(out), fallback, out)
    return out


def row_mean(y: FloatArray) -> FloatArray:
    """Return the mean of each row's finite values as an (n, 1) column, NaN for empty rows."""
    finite = ~np.isnan(y)
    count = finite.sum(axis=1, keepdims=True)
    total = np.where(finite, y, 0.0).sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def last_value(y: FloatArray) -> FloatArray:
    """Return the last finite value of each row as an (n, 1) column, NaN for empty rows."""
    finite = ~np.isnan(y)
    width = y.shape[1]
    last = width - 1 - np.argmax(finite[:, ::-1], axis=1)
    value = y[np.arange(y.shape[0]), last]
    return np.where(finite.any(axis=1), value, np.nan)[:, None]


@dataclass(frozen=True, slots=True)
class Baseline:
    """Weekly and daily profiles of each row, in sample (leave-one-out) and ahead."""

    weekly: FloatArray
    daily: FloatArray
    weekly_ahead: FloatArray
    daily_ahead: FloatArray

    @classmethod
    def fit(
        cls, y: FloatArray, seasons: Seasons, h: int, half_width: int = 0, width: int = 0
    ) -> Baseline:
        """Estimate both profiles on all of `y`; in-sample values only for its last `width`
        columns (all when 0). Each profile falls back to the other, then to the row mean."""
        week = Profile.fit(y, seasons.week, half_width)
        day = Profile.fit(y, seasons.day, half_width)
        mean = row_mean(y)
        recent = y[:, y.shape[1] - (width or y.shape[1]) :]
        weekly, daily = week.leave_one_out(recent), day.leave_one_out(recent)
        weekly_ahead, daily_ahead = week.ahead(h), day.ahead(h)
        mean_ahead = np.broadcast_to(mean, weekly_ahead.shape)
        return cls(
            weekly=fill_missing(weekly, daily, np.broadcast_to(mean, weekly.shape)),
            daily=fill_missing(daily, weekly, np.broadcast_to(mean, daily.shape)),
            weekly_ahead=fill_missing(weekly_ahead, daily_ahead, mean_ahead),
            daily_ahead=fill_missing(daily_ahead, weekly_ahead, mean_ahead),
        )


def smoothing_half_width(seasons: Seasons, seconds: int) -> int:
    """Return how many neighbouring slots on each side span `seconds`."""
    step = SECONDS_PER_DAY // seasons.day
    return seconds // step
