"""Rolling-origin backtest of many models over many series at once."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from analytics.base import Matrix
from analytics.metrics import Accumulator, seasonal_scale
from analytics.models import build
from analytics.panel import Panel
from analytics.profile import Seasons

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backtest:
    """Accuracy of each model, with sums kept per series and horizon step."""

    scores: dict[str, Accumulator]
    n_series: int
    n_points: int
    folds: int

    @property
    def best(self) -> str:
        """Return the model with the lowest pooled MAE."""
        return min(self.scores, key=lambda name: _or_inf(self.scores[name].pooled()["mae"]))

    def summary(self) -> dict[str, object]:
        """Return the pooled results in the documented JSON shape."""
        return {
            "models": {
                name: {key: _finite_or_none(v) for key, v in acc.pooled().items()}
                for name, acc in self.scores.items()
            },
            "best": self.best,
            "n_series": self.n_series,
            "n_points": self.n_points,
        }


def _finite_or_none(value: float) -> float | None:
    """Return value, or None (JSON null) when it is NaN."""
    return None if np.isnan(value) else value


def _or_inf(value: float) -> float:
    """Return value, or infinity when it is NaN."""
    return float("inf") if np.isnan(value) else value


def origins(length: int, horizon: int, folds: int, stride: int) -> list[int]:
    """Return, oldest first, how many slots before the end each fold's origin lies."""
    offsets = [horizon + stride * k for k in range(folds)]
    return sorted((o for o in offsets if o < length), reverse=True)


def backtest(
    panel: Panel,
    models: list[str],
    *,
    horizon: int,
    folds: int = 5,
    stride: int | None = None,
    season_days: int = 7,
    timezone: str = "UTC",
) -> Backtest:
    """Evaluate each model from `folds` origins `stride` slots apart, last one h before the end.

    Args:
        panel: the series; a model never sees data after its origin.
        models: names from `analytics.models.MODELS`.
        horizon: steps forecast from each origin.
        folds: number of origins.
        stride: slots between origins; defaults to the horizon (test windows do not overlap).
        season_days: days in a season (7: weekly).
        timezone: IANA zone in which times of day and days of week are counted.

    Returns:
        Error sums per model, series and step.
    """
    data = Matrix.of(panel)
    n, length = data.values.shape
    seasons = Seasons.of(panel.step, season_days)
    offsets = origins(length, horizon, folds, stride or horizon)
    scores = {name: Accumulator(n, horizon) for name in models}
    points = 0
    for offset in offsets:
        train = data.cut(offset)
        truth = data.values[:, length - offset : length - offset + horizon]
        points += int(np.isfinite(truth).sum())
        scale = seasonal_scale(train.values[:, -4 * seasons.week :], seasons.week)
        for name in models:
            model = build(name, season_days=season_days, horizon=horizon, timezone=timezone)
            result = model.fit_matrix(train).predict(horizon)
            scores[name].add(truth, result.mean, result.lo, result.hi, scale)
        logger.info("backtest: origin %d slots before the end done", offset)
    return Backtest(scores=scores, n_series=n, n_points=points, folds=len(offsets))
