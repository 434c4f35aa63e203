"""Prediction intervals from out-of-sample residuals by horizon step, pooled across series.

Each series gets its own scale (its mean absolute calibration residual); the shape of the error
distribution per horizon step is pooled over all series after dividing by that scale. This keeps
intervals per series in its own units while having enough residuals for a stable 10%/90%
quantile even for a single origin per series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.panel import FloatArray

# Normal 10%/90% quantile over mean absolute error (sqrt(pi/2) * 1.2816), used without residuals.
_NORMAL_Q90_PER_MAE = 1.6063
_MAX_POOLED = 20_000
# The newest 1/RECENT_SHARE of calibration origins judge whether misses are growing.
RECENT_SHARE = 4


@dataclass(frozen=True, slots=True)
class IntervalShape:
    """Per-series scale and per-step lower/upper quantiles of scaled residuals."""

    scale: FloatArray
    lower: FloatArray
    upper: FloatArray

    def apply(self, mean: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Return the (lo, hi) bounds around point forecasts `mean` of shape (n, h)."""
        h = mean.shape[1]
        scale = self.scale[:, None]
        return mean + scale * self.lower[None, :h], mean + scale * self.upper[None, :h]


def series_scale(residuals: FloatArray, fallback: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual, or `fallback` where it has none.

    Adaptive: when the misses at the most recent calibration origins (the first quarter along
    axis 1, newest first) are larger than over all origins, their mean is the scale, so the
    bands widen as soon as a series starts to surprise.
    """
    overall = _mean_abs(residuals)
    recent = _mean_abs(residuals[:, : max(1, residuals.shape[1] // RECENT_SHARE)])
    scale = np.where(np.isfinite(overall), np.fmax(overall, recent), fallback)
    return np.nan_to_num(scale, nan=0.0)


def _mean_abs(residuals: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual over all origins and steps, NaN if none."""
    finite = ~np.isnan(residuals)
    count = finite.reshape(finite.shape[0], -1).sum(axis=1)
    total = np.where(finite, np.abs(residuals), 0.0).reshape(finite.shape[0], -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return mean


def fit_shape(residuals: FloatArray, fallback: FloatArray, coverage: float = 0.8) -> IntervalShape:
    """Estimate interval shape from residuals (n, origins, h) = truth - forecast.

    Args:
        residuals: out-of-sample errors by series, origin and horizon step; NaN where unknown.
        fallback: scale per series to use when a series has no residual.
        coverage: nominal coverage of the central interval.

    Returns:
        The interval shape; apply it to point forecasts for (lo, hi).
    """
    h = residuals.shape[2]
    scale = series_scale(residuals, fallback)
    tail = (1.0 - coverage) / 2.0
    usable = scale > 0
    scaled = residuals[usable] / scale[usable, None, None]
    half = max(1, h // 24)
    pooled_per_step = max(1, scaled.shape[0] * scaled.shape[1] * (2 * half + 1))
    stride = max(1, pooled_per_step // _MAX_POOLED)
    scaled = scaled[::stride]
    lower = np.full(h, -_NORMAL_Q90_PER_MAE)
    upper = np.full(h, _NORMAL_Q90_PER_MAE)
    for step in range(h):
        window = scaled[:, :, max(0, step - half) : step + half + 1].reshape(-1)
        window = window[np.isfinite(window)]
        if window.size >= 10:
            lower[step], upper[step] = np.quantile(window, [tail, 1.0 - tail])
    return IntervalShape(scale=scale, lower=np.minimum(lower, 0.0), upper=np.maximum(upper, 0.0))
