"""Seasonal slot arithmetic on right-aligned matrices: sums, profiles and their leave-one-out form.

A matrix row ends at its series' last slot. In UTC, with period p, column t of a width-W matrix
lies in slot (t - W) mod p, so the last column is slot p - 1 and forecast step j (1-based) is
slot (j - 1) mod p, for every row alike. In a local time zone the slots come from the wall clock
(`analytics.localtime`); either way they arrive here as arrays of slot numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.ndimage import correlate1d

from analytics.panel import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray


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


@dataclass(frozen=True, slots=True, eq=False)
class Observed:
    """Rows with gaps, as the mask of observed values and the values with gaps set to 0.

    Computed once per window: every sum, mean and profile below starts from these two.
    """

    finite: BoolArray
    filled: FloatArray

    @classmethod
    def of(cls, y: FloatArray) -> Observed:
        """Return the mask and the zero-filled values of `y`."""
        finite = ~np.isnan(y)
        return cls(finite, np.where(finite, y, 0.0))

    def last(self, width: int) -> Observed:
        """Return the last `width` columns (views)."""
        start = self.finite.shape[1] - width
        return Observed(self.finite[:, start:], self.filled[:, start:])


def slot_sums(y: Observed, period: int) -> tuple[FloatArray, FloatArray]:
    """Return the sum and the count of finite values per slot, each (n, period)."""
    finite, filled = y.finite, y.filled
    n, width = finite.shape
    full = width // period
    lead = width - full * period
    total = np.zeros((n, period))
    count = np.zeros((n, period))
    if full:
        total += filled[:, lead:].reshape(n, full, period).sum(axis=1)
        count += finite[:, lead:].reshape(n, full, period).sum(axis=1)
    if lead:
        total[:, period - lead :] += filled[:, :lead]
        count[:, period - lead :] += finite[:, :lead]
    return total, count


def slot_sums_at(y: Observed, slots: IntArray, period: int) -> tuple[FloatArray, FloatArray]:
    """Return the sum and the count of finite values per slot given each column's slot."""
    n = y.finite.shape[0]
    order = np.argsort(slots, kind="stable")
    ordered = slots[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    # Slots that no column fills are 0; when every slot has a column, there is none to clear.
    allocate = np.empty if starts.size == period else np.zeros
    total = allocate((n, period))
    count = allocate((n, period))
    if starts.size == slots.size:
        # Every column has a slot of its own (weeks kept apart): placing them is enough, and
        # much cheaper than gathering the columns in slot order to add them up.
        _place(total, count, y, slots)
    elif starts.size:
        finite = y.finite[:, order].astype(np.float64)
        total[:, ordered[starts]] = np.add.reduceat(y.filled[:, order], starts, axis=1)
        count[:, ordered[starts]] = np.add.reduceat(finite, starts, axis=1)
    return total, count


# Columns whose slots run in at most this many consecutive stretches are placed a stretch at
# a time (a copy each); more stretches are placed column by column.
_MOST_RUNS = 64


def _place(total: FloatArray, count: FloatArray, y: Observed, slots: IntArray) -> None:
    """Write each column's value and observed flag at its own slot (slots all distinct)."""
    breaks = np.flatnonzero(np.diff(slots) != 1) + 1
    if breaks.size >= _MOST_RUNS:
        total[:, slots] = y.filled
        count[:, slots] = y.finite
        return
    # Weeks kept apart, in UTC or in a zone away from its clock changes, are a few runs of
    # consecutive slots: slices copy them, where placing column by column is ten times slower.
    edges = [0, *breaks.tolist(), slots.size]
    for first, stop in pairwise(edges):
        slot = int(slots[first])
        total[:, slot : slot + stop - first] = y.filled[:, first:stop]
        count[:, slot : slot + stop - first] = y.finite[:, first:stop]


def smooth_circular(x: FloatArray, half_width: int) -> FloatArray:
    """Return the circular moving sum of x over +-half_width slots along the last axis."""
    if half_width <= 0:
        return x
    # One pass in C, six times faster than adding shifted copies or differencing cumulative sums.
    window = np.ones(2 * half_width + 1)
    summed: FloatArray = correlate1d(x, window, axis=-1, mode="wrap")
    return summed


@dataclass(frozen=True, slots=True)
class Profile:
    """A seasonal profile: smoothed sums and counts per slot, and the period."""

    total: FloatArray
    count: FloatArray
    period: int

    @classmethod
    def of(cls, sums: tuple[FloatArray, FloatArray], period: int, half_width: int = 0) -> Profile:
        """Return the profile of slot sums and counts, pooling +-half_width neighbouring slots."""
        total, count = sums
        return cls(smooth_circular(total, half_width), smooth_circular(count, half_width), period)

    def mean(self) -> FloatArray:
        """Return the profile mean per slot, NaN where a slot has no value."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 0, self.total / self.count, np.nan)

    def leave_one_out(self, y: Observed, slots: IntArray) -> FloatArray:
        """Return, per column of `y` (columns of the fitted matrix, in slots `slots`), the
        profile mean without that column's own value."""
        # In place, since these are the largest arrays of a fit.
        total = take_columns(self.total, slots)
        total -= y.filled
        count = take_columns(self.count, slots)
        count -= y.finite
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(total, count, out=total)
        np.putmask(total, count <= 0, np.nan)
        return total

    def ahead(self, slots: IntArray) -> FloatArray:
        """Return the profile mean at forecast steps in slots `slots`."""
        return self.mean()[:, slots]


def fill_missing(primary: FloatArray, *fallbacks: FloatArray) -> FloatArray:
    """Return primary with NaN entries taken from the first fallback that has a value."""
    out = primary
    for fallback in fallbacks:
        missing = np.isnan(out)
        # Most profiles have a value everywhere: finding that out is cheaper than a copy.
        if not missing.any():
            break
        out = np.where(missing, fallback, out)
    return out


def take_columns(x: FloatArray, columns: IntArray) -> FloatArray:
    """Return x[:, columns] as a new array."""
    breaks = np.flatnonzero(np.diff(columns) != 1) + 1
    if breaks.size >= _MOST_RUNS or columns.size == 0:
        taken: FloatArray = np.take(x, columns, axis=1)
        return taken
    # Slots of consecutive columns run in order but for a wrap each season (or a clock
    # change): copying those runs is several times faster than a gather column by column.
    out = np.empty((x.shape[0], columns.size))
    edges = [0, *breaks.tolist(), columns.size]
    for first, stop in pairwise(edges):
        start = int(columns[first])
        out[:, first:stop] = x[:, start : start + stop - first]
    return out


def later_by(x: FloatArray, steps: list[int]) -> FloatArray:
    """Return (n, steps, width): each row of `x` (n, width) `k` columns later for each k in
    `steps`, 0 past the end."""
    n, width = x.shape
    out = np.empty((n, len(steps), width))
    for i, k in enumerate(steps):
        out[:, i, : width - k] = x[:, k:]
        out[:, i, width - k :] = 0.0
    return out


def row_mean(y: Observed) -> FloatArray:
    """Return the mean of each row's finite values as an (n, 1) column, NaN for empty rows."""
    count = y.finite.sum(axis=1, keepdims=True)
    total = y.filled.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def last_value(y: Observed) -> FloatArray:
    """Return the last finite value of each row as an (n, 1) column, NaN for empty rows."""
    width = y.finite.shape[1]
    last = width - 1 - np.argmax(y.finite[:, ::-1], axis=1)
    value = y.filled[np.arange(y.finite.shape[0]), last]
    return np.where(y.finite.any(axis=1), value, np.nan)[:, None]


def smoothing_half_width(seasons: Seasons, seconds: int) -> int:
    """Return how many neighbouring slots on each side span `seconds`."""
    step = SECONDS_PER_DAY // seasons.day
    return seconds // step
