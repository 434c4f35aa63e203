"""Bands that widen when a series' recent misses grow: a factor per series and band side.

The bands come from a week of calibration residuals; when demand changes week to week (a busy
pre-holiday period, the return from a summer holiday) the misses of the last day are larger
than that week's, and mostly on one side. Each side of a series' band gets a factor: the mean
of the series' normalised misses on that side (`analytics.intervals`: divided by its scale,
step size and hour factor) whose targets lie in the last `window` slots, relative to that
side's mean over all its calibration residuals, shrunk towards 1 by PRIOR_SHARE of a window's
residuals and kept within BOUNDS: a side widens when the latest misses beyond it grow, and
never narrows.

The factors are applied the same way in calibration: each calibration origin gets the factors
its own preceding window of misses gives (targets the series had seen at that origin), and the
band's quantiles are taken from residuals divided by them. So the quantiles are re-aimed for
the adaptation: a side widened by 2 whose next misses are as large counts as covered by a band
twice as wide, and the pooled coverage stays where it is aimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.panel import BoolArray, FloatArray, IntArray

# Widen only: a calm day is no reason to trust the band more than the week's misses say. A
# floor of 0.8 measured no better: the re-aimed quantiles grew to match (bench/RESULTS.md).
BOUNDS = (1.0, 3.0)
# The recent misses count against this share of a window's residuals at the week's typical
# size: a whole day of misses three times as large widens a side about 2-2.3 times.
PRIOR_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Recency:
    """How many slots before the history's end each calibration residual's target lies
    (origins, h), how far each calibration origin lies from the end (origins,), and how many
    slots before an origin count as recent."""

    age: IntArray
    origin: IntArray
    window: int


def recent_factors(normalised: FloatArray, recency: Recency) -> tuple[FloatArray, FloatArray]:
    """Return each series' factors for the band's lower and upper side at each calibration
    origin (n, origins, 2) and now (n, 2).

    Args:
        normalised: residuals (n, origins, h) = truth - forecast, divided by their series'
            scale, step size and hour factor; NaN where unknown.
        recency: where the residuals' targets and the origins lie.

    Returns:
        Factors from the misses below (index 0) and above (index 1) the forecasts whose
        targets lie in the window before each calibration origin, and before the end; 1 where
        a series has none.
    """
    n, origins, h = normalised.shape
    weights = _windows(recency)
    flat = normalised.reshape(n, origins * h)
    finite = np.isfinite(flat)
    count = finite.astype(np.float64) @ weights
    prior = max(1.0, PRIOR_SHARE * float(weights[:, -1].sum()))
    sides = [
        _side(np.where(finite, np.fmax(sign * flat, 0.0), 0.0), finite, weights, count, prior)
        for sign in (-1.0, 1.0)
    ]
    factor = np.stack(sides, axis=-1)
    return factor[:, :origins], factor[:, origins]


def widened(normalised: FloatArray, factors: FloatArray) -> FloatArray:
    """Return residuals (n, origins, h) divided by their side's factor (n, origins, 2)."""
    return np.where(normalised >= 0, normalised / factors[..., 1:2], normalised / factors[..., 0:1])


def _windows(recency: Recency) -> FloatArray:
    """Return (origins * h, origins + 1): 1 where a residual's target lies in the window
    before a calibration origin (the last column: before the end), so its series had seen it
    there."""
    start = np.concatenate([recency.origin, [0]])
    age = recency.age.reshape(-1)
    inside = (age[:, None] >= start[None, :]) & (age[:, None] < start[None, :] + recency.window)
    return inside.astype(np.float64)


def _side(
    miss: FloatArray, finite: BoolArray, weights: FloatArray, count: FloatArray, prior: float
) -> FloatArray:
    """Return one side's factors: the recent misses beyond it over the series' typical one."""
    typical = miss.sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(typical[:, None] > 0, miss / typical[:, None], finite)
    factor: FloatArray = np.clip((relative @ weights + prior) / (count + prior), *BOUNDS)
    return factor
