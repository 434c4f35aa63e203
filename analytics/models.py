"""The model catalogue and the automatic per-series choice by calibration error."""

from __future__ import annotations

import logging
from typing import ClassVar

import numpy as np

from analytics.anchored import AnchoredProfile
from analytics.base import (
    Fitted,
    Matrix,
    SeriesModel,
    calibration_recency,
    evaluate,
    finish,
    target_hours,
)
from analytics.baselines import Persistence, SeasonalNaive, SeasonalNaiveDay, TimeOfWeekMean
from analytics.intervals import STEP_NEIGHBOURS, fit_shape
from analytics.panel import BoolArray, FloatArray, IntArray
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
# Standard errors by which a candidate must beat the overall choice at a step to take it.
_CLEAR = 3.0


class Auto(SeriesModel):
    """Choose, per series, the candidate with the lowest calibration MAE, and per step another
    candidate (persistence included) where it clearly beat that choice at that step.

    A series with too few calibration residuals to judge gets the fallback (weekly seasonal
    naive), which in turn falls back to the last value when it has no value a week back. Its
    name is the series' choice, whichever steps came from another candidate.
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
    # Taken only at the steps where they clearly beat the series' choice (near ones, mostly).
    step_candidates: ClassVar[tuple[type[SeriesModel], ...]] = (Persistence,)

    def history(self, seasons: Seasons) -> int:
        """Return the longest history of any candidate."""
        return max(self._build(c).history(seasons) for c in self._all)

    @property
    def _all(self) -> tuple[type[SeriesModel], ...]:
        """Return the candidates for a whole series, then those for some steps only."""
        return (*self.candidates, *self.step_candidates)

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
            periods=self.periods,
            workers=self.workers,
        )

    def _fit_all(self, y: Matrix, seasons: Seasons, h: int) -> Fitted:
        """Fit every candidate on shared windows, pick per series (and step) by calibration."""
        candidates = [self._build(kind) for kind in self._all]
        results = evaluate(candidates, y, seasons, h, self.chunk_rows, self.workers)
        residuals = results.residuals
        overall, judged = _overall_choice(residuals[: len(self.candidates)])
        choice = np.where(judged[:, None], _step_choice(residuals, overall), overall[:, None])
        n = y.values.shape[0]
        rows, steps = np.arange(n)[:, None], np.arange(h)[None, :]
        mean = results.mean[choice, rows, steps]
        chosen = _pick(residuals, choice)
        names = tuple(self.candidates[c].name for c in overall)
        logger.debug(
            "auto: chose %s (series-steps); %d of %d apart from their series' choice",
            {c.name: int((choice == i).sum()) for i, c in enumerate(self._all)},
            int((choice != overall[:, None]).sum()),
            choice.size,
        )
        shape = fit_shape(
            chosen,
            results.fallback,
            hours=target_hours(y, seasons, h),
            recency=calibration_recency(y, seasons, h),
        )
        state = {key: value for model in results.state for key, value in model.items()}
        return Fitted(y, h, finish(mean, shape, y.capacity, names), chosen, shape, state)


def _pick(residuals: FloatArray, choice: IntArray) -> FloatArray:
    """Return (n, origins, h): each series' and step's residuals of its chosen candidate."""
    _, n, origins, h = residuals.shape
    rows = np.arange(n)[:, None, None]
    across = np.arange(origins)[None, :, None]
    picked: FloatArray = residuals[choice[:, None, :], rows, across, np.arange(h)[None, None, :]]
    return picked


def _overall_choice(residuals: FloatArray) -> tuple[IntArray, BoolArray]:
    """Return per series the candidate with the least calibration MAE over all steps, the
    fallback (the first) where there are too few residuals to judge, and where there were."""
    error = np.stack([_mae(candidate) for candidate in residuals], axis=1)
    counts = np.isfinite(residuals[0]).reshape(residuals.shape[1], -1).sum(axis=1)
    choice: IntArray = np.where(np.isnan(error), np.inf, error).argmin(axis=1)
    judged = counts >= _MIN_RESIDUALS
    choice[~judged] = 0
    return choice, judged


def _step_choice(residuals: FloatArray, overall: IntArray) -> IntArray:
    """Return (n, h): per series and step, another candidate where it beat the overall choice
    at the neighbouring steps clearly, at the overall choice otherwise.

    Clearly: each calibration origin's summed absolute miss over the neighbouring steps is
    compared between the two, and the mean gain must exceed `_CLEAR` standard errors of it
    over at least `_MIN_RESIDUALS` origins. One step's MAE of a few dozen origins swings by
    more than candidates differ, so a plain per-step minimum would chase noise.
    """
    origins, h = residuals.shape[2:]
    if origins < _MIN_RESIDUALS:
        # Too few origins per series to tell any step apart (large groups): skip the work.
        return np.broadcast_to(overall[:, None], (overall.size, h)).copy()
    absolute = np.abs(residuals)
    base = np.take_along_axis(absolute, overall[None, :, None, None], axis=0)
    gain = base - absolute  # (k, n, origins, h); NaN where either is missing
    half = max(1, h // STEP_NEIGHBOURS)
    summed = _moving_sum(np.where(np.isfinite(gain), gain, 0.0), half)
    both = _moving_sum(np.isfinite(gain).astype(np.float64), half)
    # An origin counts at a step when it has a pair at every neighbouring step it could have.
    full = _moving_sum(np.ones(h), half)
    usable = both >= full
    m = usable.sum(axis=2)  # (k, n, h)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(usable, summed, 0.0).sum(axis=2) / m
        spread = np.where(usable, (summed - mean[:, :, None, :]) ** 2, 0.0).sum(axis=2)
        error = np.sqrt(spread / (m - 1) / m)
        clear = (m >= _MIN_RESIDUALS) & (mean > _CLEAR * error) & (mean > 0)
    score = np.where(clear, mean, 0.0)
    best = score.argmax(axis=0)  # (n, h)
    out: IntArray = np.where(score.max(axis=0) > 0, best, overall[:, None])
    return out


def _moving_sum(x: FloatArray, half: int) -> FloatArray:
    """Return the sum over +-half neighbours along the last axis (fewer at the ends)."""
    width = x.shape[-1]
    cumulative = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(x, axis=-1)], axis=-1)
    hi = np.minimum(np.arange(width) + half + 1, width)
    lo = np.maximum(np.arange(width) - half, 0)
    out: FloatArray = cumulative[..., hi] - cumulative[..., lo]
    return out


def _mae(residuals: FloatArray) -> FloatArray:
    """Return each series' mean absolute residual, NaN where it has none."""
    flat = np.abs(residuals.reshape(residuals.shape[0], -1))
    finite = np.isfinite(flat)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, flat, 0.0).sum(axis=1) / count, np.nan)


_ALL: tuple[type[SeriesModel], ...] = (*BASELINES, *REAL, Auto)
MODELS: dict[str, type[SeriesModel]] = {kind.name: kind for kind in _ALL}


def build(name: str, **options: object) -> SeriesModel:
    """Return the model called `name`, configured with keyword options."""
    try:
        kind = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model '{name}'; choose one of {sorted(MODELS)}") from None
    return kind(**options)  # type: ignore[arg-type]
