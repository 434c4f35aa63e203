"""Which series get no forecast, and why: no readings, too few, a stuck or a broken counter.

The job forecasts the other series and stores each skipped one's reason with the run, so a
reader can say why a lot or segment has no forecast instead of showing nothing (or a NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.panel import SECONDS_PER_DAY, Panel

# A forecast needs readings spanning at least this long (a day: every time of day once).
MIN_SPAN_SECONDS = SECONDS_PER_DAY

# A counter above capacity this often is broken, not briefly off: its other readings are suspect.
MAX_OVER_CAPACITY = 0.2


@dataclass(frozen=True, slots=True)
class Skip:
    """A series left without a forecast: its row, a reason code and a sentence for people."""

    row: int
    reason: str  # no_data, too_short, constant or over_capacity
    detail: str


def unforecastable(panel: Panel) -> list[Skip]:
    """Return the series that must not be forecast, each with its reason, in row order.

    A series has no forecast when it has no reading in the window; when its readings span
    less than a day; when every reading is the same value (a stuck counter: a model would
    repeat it with a band of zero width); or, with a capacity, when more than 20% of its
    readings lie above it (the counter or the capacity is wrong, as the backtest's screening
    judges).
    """
    values = panel.matrix()
    finite = np.isfinite(values)
    width = values.shape[1]
    count = finite.sum(axis=1)
    first = np.argmax(finite, axis=1)
    last = width - 1 - np.argmax(finite[:, ::-1], axis=1)
    span = (last - first + 1) * panel.step
    low = np.where(finite, values, np.inf).min(axis=1, initial=np.inf)
    high = np.where(finite, values, -np.inf).max(axis=1, initial=-np.inf)
    capacity = panel.capacity
    with np.errstate(invalid="ignore"):
        above = (finite & (values > capacity[:, None])).sum(axis=1)
    over = above / np.maximum(count, 1)
    skips = []
    for row in range(panel.n_series):
        if count[row] == 0:
            skips.append(Skip(row, "no_data", "no reading in the window"))
        elif span[row] < MIN_SPAN_SECONDS:
            skips.append(Skip(row, "too_short", (
                f"readings span {span[row] / 3600:.1f} h; a forecast needs at least "
                f"{MIN_SPAN_SECONDS // 3600} h of readings"
            )))  # fmt: skip
        elif low[row] == high[row]:
            skips.append(Skip(row, "constant", (
                f"all {count[row]} readings are {low[row]:g}: a stuck counter is not forecast"
            )))  # fmt: skip
        elif over[row] > MAX_OVER_CAPACITY:
            skips.append(Skip(row, "over_capacity", (
                f"{over[row]:.0%} of readings above the capacity of {capacity[row]:g}: "
                "correct the capacity or repair the counter"
            )))  # fmt: skip
    return skips
