"""Rolling-origin backtest of many models over many series at once, on the points all share."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from analytics.base import Matrix
from analytics.calendar_file import Period
from analytics.capacity_changes import lasting_changes
from analytics.metrics import Accumulator, seasonal_scale
from analytics.models import build
from analytics.panel import SECONDS_PER_DAY, FloatArray, Panel
from analytics.profile import Seasons

logger = logging.getLogger(__name__)

# Default origins span this many days, so every weekday and time of day is judged.
DEFAULT_SPAN_DAYS = 14
# Default spacing between origins: about this many per day, nudged so they walk through every
# time of day instead of landing on the same few.
ORIGINS_PER_DAY = 8


@dataclass(frozen=True, slots=True)
class Backtest:
    """Accuracy of each model on the points every model forecast, sums per series and step.

    `own_points` counts, per model, the points it forecast whether or not the others did;
    `origins` are the origin times (epoch seconds, the last observed slot) oldest first, and
    `empty` those whose horizon held no truth at all.
    """

    scores: dict[str, Accumulator]
    n_series: int
    n_points: int
    folds: int
    own_points: dict[str, int] = field(default_factory=dict)
    origins: tuple[int, ...] = ()
    empty: tuple[int, ...] = ()
    step: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def best(self) -> str:
        """Return the model with the lowest MAE on the shared points."""
        return min(self.scores, key=lambda name: _or_inf(self.scores[name].pooled()["mae"]))

    def label(self, name: str) -> str:
        """Return the name a model is reported under (seasonal naive named by its season)."""
        return self.labels.get(name, name)

    def summary(self) -> dict[str, object]:
        """Return pooled and per-step results in the documented JSON shape."""
        models: dict[str, object] = {}
        for name, acc in self.scores.items():
            pooled = {key: _finite_or_none(v) for key, v in acc.pooled().items()}
            per_step = acc.reduce(0)
            models[self.label(name)] = {
                **pooled,
                "points": self.own_points.get(name, 0),
                "per_step": {
                    "mae": [_finite_or_none(float(v)) for v in per_step["mae"]],
                    "coverage80": [_finite_or_none(float(v)) for v in per_step["coverage80"]],
                },
            }
        return {
            "models": models,
            "best": self.label(self.best),
            "n_series": self.n_series,
            "n_points": self.n_points,
            "shared_points": int(next(iter(self.scores.values())).sums["count"].sum())
            if self.scores
            else 0,
            "step_seconds": self.step,
            "origins": [_iso(t) for t in self.origins],
            "empty_origins": [_iso(t) for t in self.empty],
        }


def _iso(epoch: int) -> str:
    """Return an epoch second as ISO 8601 UTC."""
    return datetime.fromtimestamp(epoch, UTC).isoformat()


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


def default_stride(step: int) -> int:
    """Return slots between origins: about ORIGINS_PER_DAY a day, coprime with the day so
    successive origins fall at every time of day."""
    day = max(1, SECONDS_PER_DAY // step)
    stride = max(1, day // ORIGINS_PER_DAY)
    while day > 1 and math.gcd(stride, day) != 1:
        stride += 1
    return stride


def judged_span(step: int, length: int, horizon: int, season_days: int = 7) -> int:
    """Return how many slots the default origins span: the last 14 days, or as many as leave
    a season of history before the first origin (a day's worth at least), else a day of it.

    Before a season of history the seasonal naive has nothing to repeat and falls back to the
    last value, so origins there would flatter every model against it.
    """
    day = max(1, SECONDS_PER_DAY // step)
    for history in (season_days * day, day):
        room = length - horizon - history
        if room >= day:
            return min(DEFAULT_SPAN_DAYS * day, room)
    return max(1, min(DEFAULT_SPAN_DAYS * day, length - horizon - 1))


def spread_stride(step: int, folds: int, span: int) -> int:
    """Return slots between `folds` origins so they spread over `span` slots (`judged_span`),
    at every time of day in turn.

    A few origins 3 h apart would judge a few hours of one day; spread, they judge days.
    """
    day = max(1, SECONDS_PER_DAY // step)
    stride = max(default_stride(step), span // max(folds, 1))
    while day > 1 and math.gcd(stride, day) != 1:
        stride += 1
    return stride


def default_folds(stride: int, span: int) -> int:
    """Return how many origins `stride` slots apart cover `span` slots."""
    return max(1, math.ceil(span / stride))


def season_labels(season_days: int) -> dict[str, str]:
    """Return report names for the seasonal naive models: named by their actual season."""
    if season_days == 7:
        return {}
    season = "day" if season_days == 1 else f"{season_days}d"
    return {"snaive_week": f"snaive_{season}"}


def aligned(panel: Panel) -> Matrix:
    """Return the series as rows on one time grid, all ending at the latest series' end.

    Series that ended earlier are padded with gaps on the right, so an origin is one moment
    for every series.
    """
    data = Matrix.of(panel)
    if panel.n_series == 0:
        return data
    last = int(panel.end.max())
    behind = ((last - panel.end) // panel.step).astype(np.int64)
    extra = int(behind.max())
    if extra == 0:
        return data
    n, width = data.values.shape
    values = np.full((n, width + extra), np.nan)
    columns = np.arange(width)[None, :] + (extra - behind)[:, None]
    values[np.arange(n)[:, None], columns] = data.values
    return Matrix(values, panel.step, panel.capacity, np.full(n, last, dtype=np.int64))


def _capacity_grid(capacities: Panel, panel: Panel, data: Matrix) -> FloatArray:
    """Return the capacities of the panel's series, in its rows, on the aligned grid."""
    rows = {series_id: i for i, series_id in enumerate(capacities.ids)}
    missing = [series_id for series_id in panel.ids if series_id not in rows]
    if missing:
        raise ValueError(f"capacities lack series {', '.join(missing[:5])}")
    chosen = capacities.select(np.array([rows[i] for i in panel.ids], dtype=np.int64))
    grid = aligned(chosen).values
    if grid.shape != data.values.shape:
        raise ValueError("capacities must be on the panel's grid (same slots and ends)")
    return grid


def _since_changes(train: Matrix, capacity: FloatArray) -> Matrix:
    """Return the training data with each series' readings before its last lasting capacity
    change that moved its readings left out (a pending change keeps the data before it)."""
    changes = [c for c in lasting_changes(capacity, train.step, train.values) if not c.pending]
    if not changes:
        return train
    values = train.values.copy()
    for change in changes:
        values[change.row, : change.slot] = np.nan
    return replace(train, values=values)


def backtest(
    panel: Panel,
    models: list[str],
    *,
    horizon: int,
    folds: int | None = None,
    stride: int | None = None,
    season_days: int = 7,
    timezone: str = "UTC",
    holidays: str = "",
    periods: tuple[Period, ...] = (),
    capacities: Panel | None = None,
    workers: int | None = None,
) -> Backtest:
    """Evaluate each model from `folds` origins `stride` slots apart, last one h before the end.

    Every model is scored on the same points: those with a truth that every model forecast.

    Args:
        panel: the series; a model never sees data after its origin.
        models: names from `analytics.models.MODELS`.
        horizon: steps forecast from each origin.
        folds: number of origins; default: enough to span 14 days (`judged_span`: fewer when
            the data leave less than a season of history before them).
        stride: slots between origins; default: about 8 a day, at every time of day in turn,
            or with `folds` given, as far apart as spreads them over that span.
        season_days: days in a season (7: weekly).
        timezone: IANA zone in which times of day and days of week are counted.
        holidays: region whose public holidays the models may leave out (`DE-HE`; empty: none).
        periods: special periods (school holidays, events; `analytics.calendar_file`) whose
            level the models estimate.
        capacities: each reading's capacity on the panel's grid (`csvio.read_csv_capacities`;
            series matched by id): from each origin, a series is fitted only since its last
            lasting capacity change before it (`analytics.capacity_changes`).
        workers: threads each fit runs on (None or 0: one per core; `analytics.parallel`).

    Returns:
        Error sums per model, series and step.
    """
    data = aligned(panel)
    n, length = data.values.shape
    capacity = None if capacities is None else _capacity_grid(capacities, panel, data)
    seasons = Seasons.of(panel.step, season_days)
    span = judged_span(panel.step, length, horizon, season_days)
    if stride is None:
        stride = default_stride(panel.step) if folds is None else spread_stride(
            panel.step, folds, span
        )  # fmt: skip
    folds = folds or default_folds(stride, span)
    offsets = origins(length, horizon, folds, stride)
    _warn_short_history(offsets, length, seasons.week, season_days)
    scores = {name: Accumulator(n, horizon) for name in models}
    own = dict.fromkeys(models, 0)
    last = int(data.end[0]) if n else 0
    times: list[int] = []
    empty: list[int] = []
    points = 0
    for offset in offsets:
        origin_time = last - offset * panel.step
        times.append(origin_time)
        train = data.cut(offset)
        if capacity is not None:
            train = _since_changes(train, capacity[:, : length - offset])
        truth = data.values[:, length - offset : length - offset + horizon]
        if not np.isfinite(truth).any():
            empty.append(origin_time)
            logger.warning(
                "backtest: the origin at %s holds no truth in its %d steps (a gap in the data); "
                "it scores nothing",
                _iso(origin_time),
                horizon,
            )
            continue
        points += int(np.isfinite(truth).sum())
        scale = seasonal_scale(train.values[:, -4 * seasons.week :], seasons.week)
        forecasts = {}
        for name in models:
            model = build(
                name, season_days=season_days, horizon=horizon, timezone=timezone,
                holidays=holidays, periods=periods, workers=workers,
            )  # fmt: skip
            forecasts[name] = model.fit_matrix(train).predict(horizon)
        shared = np.isfinite(truth)
        for name, result in forecasts.items():
            own[name] += int((np.isfinite(truth) & np.isfinite(result.mean)).sum())
            shared &= np.isfinite(result.mean)
        masked = np.where(shared, truth, np.nan)
        for name, result in forecasts.items():
            scores[name].add(masked, result.mean, result.lo, result.hi, scale)
        logger.info("backtest: origin %s done", _iso(origin_time))
    return Backtest(
        scores=scores,
        n_series=n,
        n_points=points,
        folds=len(offsets),
        own_points=own,
        origins=tuple(times),
        empty=tuple(empty),
        step=panel.step,
        labels=season_labels(season_days),
    )


def _warn_short_history(offsets: list[int], length: int, season: int, season_days: int) -> None:
    """Log how many origins have less than a season of data before them, and what it means."""
    short = sum(1 for offset in offsets if length - offset < season)
    if short:
        logger.warning(
            "backtest: %d of %d origins have less than %d days of data before them: there the "
            "seasonal naive repeats the last value (as naive does) and the models have not seen "
            "every day of the season; judge on a longer recording",
            short, len(offsets), season_days,
        )  # fmt: skip


def per_step(acc: Accumulator, metric: str) -> FloatArray:
    """Return one metric per horizon step, pooled over series."""
    return acc.reduce(0)[metric]
