"""Prediction intervals from out-of-sample residuals by horizon step and hour of day.

Split-conformal intervals, normalised four ways. Each series gets its own scale (its mean
absolute calibration residual), each horizon step its own size (the mean absolute scaled
residual at that step, relative to all steps), each local hour of day a factor (how much
larger the group's misses are at that hour than at all hours: rush hours and the first
readings of a day-only feed miss more than nights), when the targets' hours are known, and
each side of each series' band a factor from its misses of the last day
(`analytics.recent_misses`: adaptive, the band widens when recent misses grow), when the
targets' times are known. The shape of the error distribution (its tail quantiles) is pooled
over all series, steps and hours after dividing by all four. Tail quantiles of one step's few
residuals swing from step to step; means do not, so every step's band stays near its nominal
coverage, and every series has enough residuals for a stable quantile even with a single
origin.

The hour factors are cross-fitted: a residual is divided by factors fitted on the other half
of the residuals (a checkerboard of series and origins), so the quantiles are taken from
residuals as fresh as the ones a forecast will meet; factors fitted on the same residuals
made them look more even than fresh ones and the bands too narrow (bench/RESULTS.md). The
recent-miss factors are causal in the same spirit: each calibration residual is divided by
the factors of its own origin, from misses its series had seen there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.panel import BoolArray, FloatArray, IntArray
from analytics.recent_misses import Recency, recent_factors, widened

# Normal 10%/90% quantile over mean absolute error (sqrt(pi/2) * 1.2816), used without residuals.
_NORMAL_Q90_PER_MAE = 1.6063
_MAX_POOLED = 20_000
# Each step's band size is fitted on the steps within +-h/STEP_NEIGHBOURS (at least 2) of it.
STEP_NEIGHBOURS = 12
# An hour's factor counts as many residuals of the all-hours mean as this: hours with few
# residuals (one series, a week of origins) stay near 1.
HOUR_PRIOR = 50
HOURS = 24
# Bands aim this much above the nominal coverage: the days after calibration differ from the
# calibration week, and a band that is off loses more coverage when too narrow than it gains
# when too wide. Measured on the development and check recordings: 1.5-2 points short without.
OUT_OF_SAMPLE_MARGIN = 0.015


@dataclass(frozen=True, slots=True)
class TargetHours:
    """Local hour of day (0-23) of each calibration residual's target, (n, origins, h), and
    of each forecast step, (n, h)."""

    calibration: IntArray
    ahead: IntArray


@dataclass(frozen=True, slots=True)
class IntervalShape:
    """Per-series scale, per-step lower/upper quantiles of scaled residuals and, when the
    hours ahead are known, each series' hour-of-day factor at each step ahead (n, h), and when
    the residuals' times are known, each series' widening of its lower and upper side (n, 2)."""

    scale: FloatArray
    lower: FloatArray
    upper: FloatArray
    hourly: FloatArray | None = None
    sides: FloatArray | None = None

    def apply(self, mean: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return the (lo, hi) bounds around point forecasts `mean` of shape (n, h)."""
        h = mean.shape[1]
        scale = (
            self.scale[:, None] if self.hourly is None else self.scale[:, None] * self.hourly[:, :h]
        )
        below, above = (1.0, 1.0) if self.sides is None else (self.sides[:, :1], self.sides[:, 1:])
        return (
            mean + scale * below * self.lower[None, :h],
            mean + scale * above * self.upper[None, :h],
        )


def series_scale(residuals: FloatArray, fallback: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual, or `fallback` where it has none."""
    overall = _mean_abs(residuals)
    scale = np.where(np.isfinite(overall), overall, fallback)
    return np.nan_to_num(scale, nan=0.0)


def _mean_abs(residuals: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual over all origins and steps, NaN if none."""
    finite = ~np.isnan(residuals)
    count = finite.reshape(finite.shape[0], -1).sum(axis=1)
    total = np.where(finite, np.abs(residuals), 0.0).reshape(finite.shape[0], -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean


def fit_shape(
    residuals: FloatArray,
    fallback: FloatArray,
    coverage: float = 0.8,
    hours: TargetHours | None = None,
    recency: Recency | None = None,
) -> IntervalShape:
    """Estimate interval shape from residuals (n, origins, h) = truth - forecast.

    Args:
        residuals: out-of-sample errors by series, origin and horizon step; NaN where unknown.
        fallback: scale per series to use when a series has no residual.
        coverage: nominal coverage of the central interval.
        hours: the local hour of each residual's target and of each step ahead; None: bands
            the same at every hour.
        recency: where the residuals' targets and origins lie in time; None: bands that do
            not follow a series' recent misses.

    Returns:
        The interval shape; apply it to point forecasts for (lo, hi).
    """
    h = residuals.shape[2]
    scale = series_scale(residuals, fallback)
    tail = (1.0 - min(coverage + OUT_OF_SAMPLE_MARGIN, 0.99)) / 2.0
    usable = scale > 0
    scaled = residuals[usable] / scale[usable, None, None]
    step_size = _step_sizes(scaled, max(2, h // STEP_NEIGHBOURS))
    normalised = scaled / step_size[None, None, :]
    hourly = None
    if hours is not None:
        normalised, factors = _by_hour(normalised, hours.calibration[usable])
        hourly = factors[hours.ahead]
    sides = None
    if recency is not None:
        at_origins, now = recent_factors(normalised, recency)
        normalised = widened(normalised, at_origins)
        sides = np.ones((scale.size, 2))
        sides[usable] = now
    pooled_per_step = max(1, normalised.shape[0] * normalised.shape[1] * h)
    stride = max(1, pooled_per_step // _MAX_POOLED)
    pooled = normalised[::stride].reshape(-1)
    pooled = pooled[np.isfinite(pooled)]
    lower = np.full(h, -_NORMAL_Q90_PER_MAE)
    upper = np.full(h, _NORMAL_Q90_PER_MAE)
    if pooled.size >= 10:
        lo_q, hi_q = np.quantile(pooled, [tail, 1.0 - tail])
        lower, upper = lo_q * step_size, hi_q * step_size
    return IntervalShape(
        scale=scale,
        lower=np.minimum(lower, 0.0),
        upper=np.maximum(upper, 0.0),
        hourly=hourly,
        sides=sides,
    )


def _by_hour(normalised: FloatArray, hours: IntArray) -> tuple[FloatArray, FloatArray]:
    """Return the residuals divided by cross-fitted hour factors, and the factors (24,) from
    all residuals for the forecasts.

    A checkerboard of series and origins splits the residuals in two halves; each half is
    divided by factors fitted on the other.
    """
    rows, origins, _ = normalised.shape
    size = np.abs(normalised)
    seen = np.isfinite(size)
    half = (np.arange(rows)[:, None] + np.arange(origins)[None, :]) % 2 == 0
    # Row 0: factors fitted on the half, for the others; row 1: on the others, for the half.
    table = np.stack(
        [
            _hour_factors(size[half], hours[half], seen[half]),
            _hour_factors(size[~half], hours[~half], seen[~half]),
        ]
    )
    from_other = table[half.astype(np.int64)[:, :, None], hours]
    return normalised / from_other, _hour_factors(size, hours, seen)


def _hour_factors(size: FloatArray, hours: IntArray, seen: BoolArray) -> FloatArray:
    """Return, per hour of day, the mean absolute residual over that of all hours, from the
    absolute residuals `size` where `seen`; an hour borrows half the weight of each neighbour
    and HOUR_PRIOR residuals of the all-hours mean, so hours with few residuals stay near 1."""
    total = np.bincount(hours[seen], size[seen], minlength=HOURS)
    count = np.bincount(hours[seen], minlength=HOURS).astype(np.float64)
    total = total + 0.5 * (np.roll(total, 1) + np.roll(total, -1))
    count = count + 0.5 * (np.roll(count, 1) + np.roll(count, -1))
    overall = total.sum() / max(count.sum(), 1.0)
    if overall <= 0:
        return np.ones(HOURS)
    factors: FloatArray = (total + HOUR_PRIOR * overall) / (count + HOUR_PRIOR) / overall
    return factors


def _step_sizes(scaled: FloatArray, half: int) -> FloatArray:
    """Return the mean absolute scaled residual at each step relative to all steps: how much
    wider than the typical band each step's is.

    Each step's mean is a straight line fitted to the means of the steps within +-half of it
    (weighted by their residual counts), so steps with few residuals borrow from neighbours
    and the first and last steps are not pulled towards the middle. A mean is steadier than a
    tail quantile, so steps differ by a size each, while the band's shape (its 10% and 90%
    quantiles) comes from the residuals of all steps together.
    """
    h = scaled.shape[2]
    size = np.abs(scaled.reshape(-1, h))
    finite = np.isfinite(size)
    total = np.where(finite, size, 0.0).sum(axis=0)
    count = finite.sum(axis=0).astype(np.float64)
    overall = total.sum() / max(count.sum(), 1.0)
    if overall <= 0:
        return np.ones(h)
    mean = np.where(count > 0, total / np.maximum(count, 1.0), 0.0)
    step = np.ones(h)
    for j in range(h):
        near = slice(max(0, j - half), min(h, j + half + 1))
        x = np.arange(h)[near] - j
        w, m = count[near], mean[near]
        weight = w.sum()
        if weight <= 0:
            continue
        x_mean = (w * x).sum() / weight
        m_mean = (w * m).sum() / weight
        spread = (w * (x - x_mean) ** 2).sum()
        slope = (w * (x - x_mean) * (m - m_mean)).sum() / spread if spread > 0 else 0.0
        step[j] = max(m_mean - slope * x_mean, 0.0) / overall
    return np.where(step > 0, step, 1.0)
