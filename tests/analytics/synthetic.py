"""Synthetic seasonal series for analytics tests."""

from __future__ import annotations

import numpy as np

from analytics.panel import FloatArray, Panel, from_matrix

STEP = 1800
DAY = 48


def seasonal(n: int = 12, weeks: int = 5, seed: int = 0, gaps: float = 0.0) -> FloatArray:
    """Return (n, weeks*7*DAY) series: daily and weekly shape, slowly wandering level, noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * 7 * DAY)
    shape = 50 + 30 * np.sin(2 * np.pi * t / DAY) + 15 * ((t // DAY) % 7 >= 5)
    wander = np.cumsum(rng.normal(0, 1.0, (n, t.size)), axis=1) * 0.5
    values: FloatArray = shape * rng.uniform(0.5, 1.5, (n, 1)) + wander
    values += rng.normal(0, 2, (n, t.size))
    if gaps:
        values[rng.random(values.shape) < gaps] = np.nan
    return values


def panel(values: FloatArray, capacity: FloatArray | None = None) -> Panel:
    """Return a 30-min panel over equal-length rows ending at 2024-01-01T00:00Z."""
    return from_matrix(values, step=STEP, end=1_704_067_200, capacity=capacity)
