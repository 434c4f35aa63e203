"""The forecasting model interface and the shared machinery: chunking, bounds, calibration."""

from __future__ import annotations

import copy
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol, Self
from zoneinfo import ZoneInfo

import numpy as np

from analytics.calendar_file import Period
from analytics.intervals import IntervalShape, TargetHours, fit_shape
from analytics.localtime import LocalSlots, Slots, hour_of_day, zone_of
from analytics.panel import FloatArray, IntArray, Panel
from analytics.parallel import map_ordered, worker_count
from analytics.profile import Seasons
from analytics.recent_misses import Recency
from analytics.special_days import Calendar, holiday_mask, holidays_differ
from analytics.special_effects import FACTOR_BOUNDS, Effects, apply_ahead, estimate
from analytics.window import Window

logger = logging.getLogger(__name__)

# Residuals wanted per horizon step across all series; fewer series get more origins.
_CALIBRATION_RESIDUALS = 2_000
_MIN_ORIGINS = 1
_MAX_ORIGINS = 48


@dataclass(frozen=True, slots=True, eq=False)
class Forecast:
    """Point forecasts and 80% intervals, each (n_series, horizon), and the model per series."""

    mean: FloatArray
    lo: FloatArray
    hi: FloatArray
    model: tuple[str, ...]

    def head(self, horizon: int) -> Forecast:
        """Return the first `horizon` steps."""
        return Forecast(
            self.mean[:, :horizon], self.lo[:, :horizon], self.hi[:, :horizon], self.model
        )


class Forecaster(Protocol):
    """What every forecasting model offers; `forecast(y, h)` equals `fit(y).predict(h)`."""

    name: str

    def fit(self, y: Panel) -> Self:
        """Estimate the model on every series of `y`."""
        ...

    def predict(self, h: int) -> Forecast:
        """Return forecasts for the next `h` steps after each series' end."""
        ...

    def forecast(self, y: Panel, h: int) -> Forecast:
        """Fit on `y` and forecast `h` steps without touching this instance."""
        ...


@dataclass(frozen=True, slots=True)
class Fitted:
    """What a fit leaves behind: the data, forecasts, calibration residuals, interval shape."""

    data: Matrix
    horizon: int
    forecast: Forecast
    residuals: FloatArray
    shape: IntervalShape
    state: dict[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class Matrix:
    """Series as right-aligned rows (n, length) with their step in seconds and capacities.

    `end` is the epoch second of each row's last column; it matters only for seasons in a
    local time zone (`zone`; None is UTC).
    """

    values: FloatArray
    step: int
    capacity: FloatArray
    end: IntArray
    zone: ZoneInfo | None = None

    @classmethod
    def of(cls, panel: Panel) -> Matrix:
        """Return the panel's series as right-aligned rows."""
        return cls(panel.matrix(), panel.step, panel.capacity, panel.end)

    def cut(self, drop: int) -> Matrix:
        """Return the series without their last `drop` slots (a view)."""
        values = self.values[:, : self.values.shape[1] - drop]
        return replace(self, values=values, end=self.end - drop * self.step)

    def chunks(self, rows: int) -> list[IntArray | slice]:
        """Return groups of at most `rows` rows; in a local zone, rows in a group share an end."""
        n = self.values.shape[0]
        if self.zone is None:
            return [slice(start, min(start + rows, n)) for start in range(0, n, rows)]
        order = np.argsort(self.end, kind="stable")
        edges = np.flatnonzero(np.diff(self.end[order])) + 1
        groups = np.split(order, edges) if n else []
        return [g[start : start + rows] for g in groups for start in range(0, g.size, rows)]

    def slots(self, rows: IntArray | slice, end: int, width: int, h: int) -> Slots | None:
        """Return the slots of the `width` columns before column `end` (exclusive) of rows
        sharing one end, and of `h` steps after them; None in UTC."""
        if self.zone is None:
            return None
        last = int(self.end[rows][0]) - (self.values.shape[1] - end) * self.step
        return LocalSlots.of(last, self.step, width, h, self.zone)


def without_holidays(
    y: Matrix, region: str, seasons: Seasons, workers: int | None = None, *, owned: bool = False
) -> Matrix:
    """Return `y` with its readings on the region's public holidays as gaps, when they miss
    the ordinary days' profile by more than ordinary days do (else `y` unchanged); judged on
    `workers` threads. `owned`: `y.values` is the caller's own copy, gapped in place."""
    width = y.values.shape[1]
    holiday = holiday_mask(region, y.end, width, y.step, y.zone)
    if not holiday.any():
        return y
    differ, ratio = holidays_differ(y.values, holiday, seasons.week, workers)
    logger.debug("holidays of %s miss by %.2fx ordinary days: %s", region, ratio, differ)
    if not differ:
        return y
    if owned:
        # A second copy of a city's history would be the largest array of the fit.
        y.values[holiday] = np.nan
        return y
    return replace(y, values=np.where(holiday, np.nan, y.values))


@dataclass(frozen=True, slots=True, eq=False)
class SpecialFit:
    """The special-day effects a fit estimated: per group of rows sharing an end, its rows,
    end and `Effects`."""

    calendar: Calendar
    groups: tuple[tuple[IntArray, int, Effects], ...] = ()

    def ahead(self, fitted: Fitted) -> Fitted:
        """Return the fit's forecasts with the effects applied to the steps they concern."""
        data = fitted.data
        before = fitted.forecast.mean
        mean = before
        for rows, end, effects in self.groups:
            block = before[rows]
            changed = apply_ahead(block, effects, end, data.step, data.zone, self.calendar)
            if changed is not block:
                mean = mean.copy() if mean is before else mean
                mean[rows] = changed
        if mean is before:
            return fitted
        lower, upper = bounds(data.capacity)
        mean = np.clip(mean, lower, upper)
        # The bands were calibrated on ordinary days: a step forecast at a share of its ordinary
        # level gets bands of that share (errors scale with the level), within the factors' bounds.
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(before > 0, mean / before, 1.0)
        share = np.clip(np.where(np.isfinite(share), share, 1.0), *FACTOR_BOUNDS)
        lo, hi = fitted.shape.apply(mean)
        lo = np.clip(np.minimum(mean + (lo - mean) * share, mean), lower, upper)
        hi = np.clip(np.maximum(mean + (hi - mean) * share, mean), lower, upper)
        forecast = Forecast(mean=mean, lo=lo, hi=hi, model=fitted.forecast.model)
        return replace(fitted, forecast=forecast)


def with_special_days(
    y: Matrix, calendar: Calendar, seasons: Seasons, workers: int | None = None
) -> tuple[Matrix, SpecialFit]:
    """Return the history to fit on and the effects of the calendar's special days estimated
    on it (`analytics.special_effects`, on `workers` threads); public holidays unlike
    ordinary days become gaps."""
    values = y.values
    groups = []
    for end in np.unique(y.end):
        rows = np.flatnonzero(y.end == end)
        # One group (the job's, the backtest's) reads the rows in place, not a copy of them all.
        whole = rows.size == values.shape[0]
        group = values if whole else values[rows]
        effects, adjusted = estimate(group, int(end), y.step, y.zone, calendar, workers)
        if effects.factors and whole:
            values = adjusted  # a copy of its own: the caller's data stay as they were
        elif effects.factors:
            values = values.copy() if values is y.values else values
            values[rows] = adjusted
        groups.append((rows, int(end), effects))
    owned = values is not y.values
    y = replace(y, values=values)
    if calendar.region:
        y = without_holidays(y, calendar.region, seasons, workers, owned=owned)
    return y, SpecialFit(calendar, tuple(groups))


def bounds(capacity: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return (lower, upper) per series as (n, 1): [0, capacity] when known, else unbounded."""
    bounded = np.isfinite(capacity)
    lower = np.where(bounded, 0.0, -np.inf)[:, None]
    upper = np.where(bounded, capacity, np.inf)[:, None]
    return lower, upper


def target_hours(y: Matrix, seasons: Seasons, h: int) -> TargetHours:
    """Return the local hour of each calibration residual's target (as `evaluate` lays them
    out) and of each step ahead, so bands can differ by hour of day."""
    n, length = y.values.shape
    offsets = calibration_offsets(n, h, length, seasons)
    steps = np.arange(h, dtype=np.int64)
    before = (offsets[None, :, None] - 1 - steps[None, None, :]) * y.step
    # Rows sharing an end share their hours (all rows, mostly): each end's are worked out once.
    ends, of_row = np.unique(y.end, return_inverse=True)
    calibration = hour_of_day(ends[:, None, None] - before, y.zone)[of_row]
    ahead = hour_of_day(ends[:, None] + (steps[None, :] + 1) * y.step, y.zone)[of_row]
    return TargetHours(calibration, ahead)


def calibration_recency(y: Matrix, seasons: Seasons, h: int) -> Recency:
    """Return where each calibration residual's target and origin lie (slots before the end,
    as `evaluate` lays them out), a day counting as recent."""
    n, length = y.values.shape
    offsets = calibration_offsets(n, h, length, seasons)
    steps = np.arange(h, dtype=np.int64)
    return Recency(offsets[:, None] - 1 - steps[None, :], offsets, seasons.day)


def calibration_offsets(n_series: int, horizon: int, length: int, seasons: Seasons) -> IntArray:
    """Return how many slots before the end each calibration origin lies."""
    count = math.ceil(_CALIBRATION_RESIDUALS / max(n_series, 1))
    count = min(max(count, _MIN_ORIGINS), _MAX_ORIGINS)
    spacing = max(1, seasons.week // count)
    offsets = horizon + spacing * np.arange(count, dtype=np.int64)
    # Keep at least two days to fit on, so calibration sees the model as it will be used.
    return offsets[length - offsets >= min(2 * seasons.day, length // 2)]


class SeriesModel(ABC):
    """A model fitted on right-aligned matrices, a chunk of series at a time.

    Subclasses implement `_fit_predict(window)`: estimate on each row of the window and return
    (n, h) point forecasts, NaN where the model cannot say. Fitting also refits at a few earlier
    origins to collect out-of-sample residuals by horizon step, from which the intervals come.
    """

    name: ClassVar[str]
    # True when some parameters are fitted for the whole group of series fitted together.
    pooled: ClassVar[bool] = False
    # False for the baselines: they stay the plain references they are named after.
    uses_holidays: ClassVar[bool] = True

    def __init__(
        self,
        *,
        season_days: int = 7,
        horizon: int | None = None,
        weeks: int = 4,
        chunk_rows: int = 32,
        timezone: str = "UTC",
        holidays: str = "",
        periods: tuple[Period, ...] = (),
        workers: int | None = None,
    ) -> None:
        """Configure the model; `horizon` defaults to one day of steps, `weeks` of history,
        `timezone` (IANA) is where the time of day and day of week are counted, `holidays`
        the region (`DE-HE`, `DK`; empty: none) whose public holidays are left out of the
        history when they are unlike ordinary days (`analytics.special_days`) and forecast
        as the history shows them, `periods` a city's special periods (school holidays,
        events) whose level the fit estimates (`analytics.special_effects`), `workers` the
        threads a fit's chunks run on (None or 0: one per usable core, `analytics.parallel`;
        the forecasts are the same whatever the number)."""
        self.season_days = season_days
        self.weeks = weeks
        self.horizon = horizon
        # 32 rows keep a chunk's working arrays (anchored's pair weights, about 15 x a week of
        # columns per row) in the caches: auto took 0.77x the CPU of 128-row chunks.
        self.chunk_rows = chunk_rows
        self.timezone = timezone
        self.zone = zone_of(timezone)
        self.holidays = holidays
        self.periods = periods
        self.workers = worker_count(workers)
        self._fitted: Fitted | None = None
        self._special: SpecialFit | None = None

    @abstractmethod
    def history(self, seasons: Seasons) -> int:
        """Return how many recent slots the model looks at."""

    @abstractmethod
    def _fit_predict(self, window: Window) -> FloatArray:
        """Fit on each row of the window and return (n, h) point forecasts."""

    def fit(self, y: Panel) -> Self:
        """Estimate the model on every series of `y` and calibrate its intervals."""
        return self.fit_matrix(Matrix.of(y))

    def fit_matrix(self, y: Matrix) -> Self:
        """Estimate the model on right-aligned rows and calibrate its intervals."""
        seasons = Seasons.of(y.step, self.season_days)
        horizon = self.horizon or seasons.day
        y = replace(y, zone=self.zone)
        calendar = Calendar(self.holidays, self.periods)
        self._special = None
        if calendar and self.uses_holidays:
            y, self._special = with_special_days(y, calendar, seasons, self.workers)
        self._fitted = self._ahead(self._fit_all(y, seasons, horizon))
        return self

    def _ahead(self, fitted: Fitted) -> Fitted:
        """Return the fit with the special days' effects on its forecasts applied."""
        return fitted if self._special is None else self._special.ahead(fitted)

    def predict(self, h: int) -> Forecast:
        """Return forecasts for the next `h` steps after each series' end."""
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        if h > self._fitted.horizon:
            logger.debug("%s: refitting for horizon %d", self.name, h)
            seasons = Seasons.of(self._fitted.data.step, self.season_days)
            self._fitted = self._ahead(self._fit_all(self._fitted.data, seasons, h))
        return self._fitted.forecast.head(h)

    def forecast(self, y: Panel, h: int) -> Forecast:
        """Fit a copy of this model on `y` and forecast `h` steps."""
        return copy.copy(self).fit(y).predict(h)

    @property
    def state(self) -> dict[str, FloatArray]:
        """Return what the last fit learnt per series beyond the forecasts (e.g. a decay)."""
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: call fit() first")
        return self._fitted.state

    @property
    def residuals(self) -> FloatArray:
        """Return calibration residuals (n, origins, horizon) of the last fit."""
        if self._fitted is None:
            raise RuntimeError(f"{self.name}: call fit() first")
        return self._fitted.residuals

    def _fit_all(self, y: Matrix, seasons: Seasons, h: int) -> Fitted:
        """Forecast and calibrate every series, a chunk of rows at a time."""
        result = evaluate([self], y, seasons, h, self.chunk_rows, self.workers)
        residuals = result.residuals[0]
        shape = fit_shape(
            residuals,
            result.fallback,
            hours=target_hours(y, seasons, h),
            recency=calibration_recency(y, seasons, h),
        )
        names = (self.name,) * y.values.shape[0]
        forecast = finish(result.mean[0], shape, y.capacity, names)
        return Fitted(y, h, forecast, residuals, shape, result.state[0])

    def prepare(self, y: Matrix, seasons: Seasons, h: int) -> None:
        """Fit parameters shared by a group of series (all of `y`) before the per-row fits.

        The default model has none. Called once per fit, on the data the fit sees.
        """
        del y, seasons, h

    def bounded(self, window: Window, clip: tuple[FloatArray, FloatArray]) -> FloatArray:
        """Return point forecasts, the last value where the model has none, within bounds."""
        if window.width == 0:
            return np.full((window.values.shape[0], window.h), np.nan)
        point = self._fit_predict(window)
        point = np.where(np.isnan(point), window.last_value(), point)
        return np.clip(point, clip[0], clip[1])


@dataclass(frozen=True, slots=True, eq=False)
class Evaluated:
    """Every model's point forecasts (models, n, h) and calibration residuals (models, n,
    origins, h), the state each model's fit from the end left per series, and the fallback
    interval scale per series (the mean absolute step change)."""

    mean: FloatArray
    residuals: FloatArray
    state: list[dict[str, FloatArray]]
    fallback: FloatArray


def evaluate(
    models: Sequence[SeriesModel],
    y: Matrix,
    seasons: Seasons,
    h: int,
    chunk_rows: int,
    workers: int | None = None,
) -> Evaluated:
    """Forecast with every model from the end and from the calibration origins.

    Models with the same history share one `Window` per chunk and origin, so profiles and
    other intermediates are computed once for all of them. Chunks are independent: they run
    on `workers` threads (None: one per core, `analytics.parallel`), each computed exactly as
    it would be alone, so the results do not depend on the number.
    """
    n, length = y.values.shape
    histories = tuple(model.history(seasons) for model in models)
    offsets = calibration_offsets(n, h, length, seasons)
    width = min(length, max(histories) + int(offsets.max(initial=0)))
    for model in models:
        model.prepare(y, seasons, h)
    out = Evaluated(
        mean=np.empty((len(models), n, h)),
        # Every chunk writes every origin's residuals of its rows: nothing to fill first.
        residuals=np.empty((len(models), n, offsets.size, h)),
        state=[{} for _ in models],
        fallback=np.empty(n),
    )
    ends = (length, *(length - int(offset) for offset in offsets))
    task = _Chunks(tuple(models), y, seasons, h, histories, ends, width, bounds(y.capacity), out)
    chunks = y.chunks(chunk_rows)
    for rows, state in zip(chunks, map_ordered(task.run, chunks, workers), strict=True):
        # The state's keys come from the models: placed here, in order, not by the workers.
        for model_state, part in zip(out.state, state, strict=True):
            for key, value in part.items():
                model_state.setdefault(key, np.full(n, np.nan))[rows] = value
    return out


@dataclass(frozen=True, slots=True, eq=False)
class _Chunks:
    """What every chunk of an `evaluate` shares: models (prepared), data, origins, output."""

    models: tuple[SeriesModel, ...]
    y: Matrix
    seasons: Seasons
    h: int
    histories: tuple[int, ...]
    ends: tuple[int, ...]
    width: int
    bounds: tuple[FloatArray, FloatArray]
    out: Evaluated

    def run(self, rows: IntArray | slice) -> list[dict[str, FloatArray]]:
        """Forecast rows `rows` with every model from the end and each origin into `out`
        (chunks hold distinct rows, so they never write to the same place); return each
        model's state for those rows."""
        y, h, models, out = self.y, self.h, self.models, self.out
        block = y.values[rows]
        clip = (self.bounds[0][rows], self.bounds[1][rows])
        state: list[dict[str, FloatArray]] = [{} for _ in models]
        # Later models in a catalogue need the widest shared intermediates; computing theirs
        # first lets the others take a slice instead of a second computation.
        order = list(reversed(range(len(models))))
        for k, end in enumerate(self.ends):
            windows: dict[int, Window] = {}
            for i in order:
                start = max(0, end - self.histories[i])
                if start not in windows:
                    slots = y.slots(rows, end, end - start, h)
                    windows[start] = Window(block[:, start:end], self.seasons, h, slots)
                point = models[i].bounded(windows[start], clip)
                if k == 0:
                    out.mean[i, rows] = point
                    state[i].update(windows[start].state)
                else:
                    out.residuals[i, rows, k - 1] = block[:, end : end + h] - point
        with np.errstate(invalid="ignore"):
            steps = np.abs(np.diff(block[:, y.values.shape[1] - self.width :], axis=1))
        out.fallback[rows] = _nanmean_rows(steps)
        return state


def finish(
    mean: FloatArray, shape: IntervalShape, capacity: FloatArray, names: tuple[str, ...]
) -> Forecast:
    """Wrap point forecasts with intervals kept within bounds and around the point."""
    lower, upper = bounds(capacity)
    lo, hi = shape.apply(mean)
    lo = np.clip(np.minimum(lo, mean), lower, upper)
    hi = np.clip(np.maximum(hi, mean), lower, upper)
    return Forecast(mean=mean, lo=lo, hi=hi, model=names)


def _nanmean_rows(x: FloatArray) -> FloatArray:
    """Return the mean of finite values per row, NaN for rows without any."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1)
    total = np.where(finite, x, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)
