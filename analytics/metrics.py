"""Forecast accuracy: sums accumulated by series and horizon step, reduced to MAE, RMSE, etc.

Everything is kept as sums and counts per (series, step) so folds add up exactly and any
pooling (per series, per step, overall) is a sum followed by one division.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from analytics.panel import FloatArray

METRICS = ("mae", "rmse", "mape", "mase", "coverage80")


def seasonal_scale(y: FloatArray, period: int, chunk_rows: int = 512) -> FloatArray:
    """Return each row's mean absolute seasonal difference, NaN when it has none or it is 0."""
    n, width = y.shape
    scale = np.full(n, np.nan)
    if width <= period:
        return scale
    for start in range(0, n, chunk_rows):
        block = y[start : start + chunk_rows]
        diff = np.abs(block[:, period:] - block[:, :-period])
        finite = np.isfinite(diff)
        count = finite.sum(axis=1)
        total = np.where(finite, diff, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / count
        scale[start : start + chunk_rows] = np.where((count > 0) & (mean > 0), mean, np.nan)
    return scale


@dataclass(slots=True)
class Accumulator:
    """Running error sums per (series, horizon step)."""

    n_series: int
    horizon: int
    sums: dict[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Start every sum at zero."""
        for key in (
            "count",
            "abs",
            "sq",
            "ape",
            "ape_count",
            "scaled",
            "scaled_count",
            "inside",
            "width",
            "interval",
        ):
            self.sums[key] = np.zeros((self.n_series, self.horizon))

    def add(
        self,
        truth: FloatArray,
        mean: FloatArray,
        lo: FloatArray,
        hi: FloatArray,
        scale: FloatArray,
    ) -> None:
        """Add one origin's forecasts (n, h) against the truth; NaN truth is skipped."""
        known = np.isfinite(truth) & np.isfinite(mean)
        error = np.where(known, np.abs(truth - mean), 0.0)
        positive = known & (truth > 0)
        scaled = known & np.isfinite(scale)[:, None]
        s = self.sums
        s["count"] += known
        s["abs"] += error
        s["sq"] += error**2
        with np.errstate(invalid="ignore", divide="ignore"):
            s["ape"] += np.where(positive, error / np.where(positive, truth, 1.0), 0.0)
            s["scaled"] += np.where(scaled, error / scale[:, None], 0.0)
        s["ape_count"] += positive
        s["scaled_count"] += scaled
        s["inside"] += known & (truth >= lo) & (truth <= hi)
        s["width"] += np.where(known, hi - lo, 0.0)
        # The interval score of a central 80% band: its width plus 10x (2 / 0.2) every miss's
        # distance beyond it, so a band is judged on width and misses together.
        beyond = np.fmax(lo - truth, 0.0) + np.fmax(truth - hi, 0.0)
        s["interval"] += np.where(known, hi - lo + 10.0 * beyond, 0.0)

    def reduce(self, axis: int | tuple[int, int] | None = None) -> dict[str, FloatArray]:
        """Return each metric pooled over `axis` (None: everything, 0: series, 1: steps)."""
        s = {key: value.sum(axis=axis) for key, value in self.sums.items()}
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "mae": s["abs"] / s["count"],
                "rmse": np.sqrt(s["sq"] / s["count"]),
                "mape": 100.0 * s["ape"] / s["ape_count"],
                "mase": s["scaled"] / s["scaled_count"],
                "coverage80": s["inside"] / s["count"],
                "width80": s["width"] / s["count"],
                "interval80": s["interval"] / s["count"],
            }

    def pooled(self) -> dict[str, float]:
        """Return every metric pooled over series and steps, NaN when undefined."""
        return {key: float(value) for key, value in self.reduce(None).items()}
