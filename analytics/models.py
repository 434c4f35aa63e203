"""The model catalogue and the automatic per-series choice by calibration error."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from analytics.anchored import AnchoredProfile
from analytics.base import Fitted, Matrix, SeriesModel, evaluate, finish, target_hours
from analytics.baselines import Persistence, SeasonalNaive, SeasonalNaiveDay, TimeOfWeekMean
from analytics.intervals import fit_shape
from analytics.panel import FloatArray
from analytics.profile import Seasons
from analytics.regression import ProfileRidge
from analytics.smoothing import ProfileSmoothing
from analytics.window import Window

logger = logging.getLogger(__name__)

BASELINES: tuple[type[SeriesModel], ...] = (
    Persistence,
    SeasonalNaiveDay,
    SeasonalNaive,
    TimeOfWeekMean,
)
REAL: tuple[type[SeriesModel], ...] = (ProfileSmoothing, ProfileRidge, AnchoredProfile)
# Each series needs this many calibration residuals before a choice is trusted.
_MIN_RESIDUALS = 8


class Auto(SeriesModel):
    """Choose, per series, the candidate with the lowest calibration MAE.

    A series with too few calibration residuals to judge gets the fallback (weekly seasonal
    naive), which in turn falls back to the last value when it has no value a week back.
    """

    name: ClassVar[str] = "auto"
    pooled: ClassVar[bool] = True
    candidates: ClassVar[tuple[type[SeriesModel], ...]] = (
        SeasonalNaive,
        TimeOfWeekMean,
        ProfileSmoothing,
        ProfileRidge,
        AnchoredProfile,
    )

    def history(self, seasons: Seasons) -> int:
        """Return the longest history of any candidate."""
        return max(self._build(c).history(seasons) for c in self.candidates)

    def _fit_predict(self, window: Window) -> FloatArray:
        """Not used: the choice needs each candidate's residuals, see `_fit_all`."""
        raise NotImplementedError

    def _build(self, kind: type[SeriesModel]) -> SeriesModel:
        """Return a candidate configured like this model."""
        return kind(
            season_days=self.season_days,
            horizon=self.horizon,
            weeks=self.weeks,
            chunk_rows=self.chunk_rows,
            timezone=self.timezone,
            holidays=self.holidays,
        )

    def _fit_all(self, y: Matrix, seasons: Seasons, h: int) -> Fitted:
        """Fit every candidate on shared windows, pick per series by calibration MAE."""
        candidates = [self._build(kind) for kind in self.candidates]
        results, fallback_scale = evaluate(candidates, y, seasons, h, self.chunk_rows)
        n = y.values.shape[0]
        error = np.stack([_mae(result.residuals) for result in results], axis=1)
        counts = np.isfinite(results[0].residuals).reshape(n, -1).sum(axis=1)
        choice = np.where(np.isnan(error), np.inf, error).argmin(axis=1)
        choice[counts < _MIN_RESIDUALS] = 0
        rows = np.arange(n)
        mean = np.stack([result.mean for result in results], axis=0)[choice, rows]
        chosen = np.stack([result.residuals for result in results], axis=0)[choice, rows]
        names = tuple(self.candidates[c].name for c in choice)
        logger.debug(
            "auto: chose %s",
            {c.name: int((choice == i).sum()) for i, c in enumerate(self.candidates)},
        )
        shape = fit_shape(chosen, fallback_scale, hours=target_hours(y, seasons, h))
        state = {key: value for result in results for key, value in result.state.items()}
        return Fitted(y, h, finish(mean, shape, y.capacity, names), chosen, shape, state)


def _mae(residuals: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual, NaN where it has none."""
    flat = np.abs(residuals.reshape(residuals.shape[0], -1))
    finite = np.isfinite(flat)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, flat, 0.0).sum(axis=1) / count, np.nan)


_ALL: tuple[type[SeriesModel], ...] = (*BASELINES, *REAL, Auto)
MODELS: dict[str, type[SeriesModel]] = {kind.name: kind for kind in _ALL}


def build(name: str, **options: int | str | None) -> SeriesModel:
    """Return the model called `name`, configured with keyword options."""
    try:
        kind = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; choose one of {sorted(MODELS)}") from None
    return kind(**options)  # type: ignore[arg-type]
