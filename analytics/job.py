"""The scheduled forecast job: refresh rollups, refit, store forecasts with their provenance."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import FrameType

import numpy as np
import numpy.typing as npt
import psycopg

from analytics.backtest import backtest
from analytics.base import Forecast
from analytics.calendar_file import Period
from analytics.capacity_changes import Change, lasting_changes, pending_skips, since_changes
from analytics.models import Auto
from analytics.panel import Panel
from analytics.readiness import unforecastable
from store.forecasts import Anchors, Run, Score, Skipped, prune_runs, write_run
from store.series import SeriesArrays, active_ids, read_capacities, read_series
from streetsense.config import AnalyticsSettings
from streetsense.errors import StreetsenseError
from streetsense.kinds import KINDS

logger = logging.getLogger(__name__)
Refresh = Callable[[psycopg.Connection, datetime], None]
BACKTEST_MODELS = ["snaive_week", "tow_mean", "profile_es", "profile_ridge", "auto"]


# A 5-minute mean speed above this multiple of the segment's limit is not a forecast to show.
SPEED_LIMIT_FACTOR = 1.5


@dataclass(frozen=True, slots=True)
class Target:
    """One forecast product: which series, at which step, how far ahead, from how much history.

    `stream` and `measure` name the series (`store.series.STREAMS`); `product` is the stream
    the runs are stored under (default: `stream`). `rate_product`, when set, also stores the
    forecasts divided by each series' capacity under that stream.
    """

    stream: str
    measure: str
    step_seconds: int
    horizon: timedelta
    history: timedelta
    product: str = ""
    rate_product: str = ""

    @property
    def name(self) -> str:
        """Return the stream the forecast runs are stored under."""
        return self.product or self.stream


def targets(settings: AnalyticsSettings) -> tuple[Target, ...]:
    """Return the forecast products with the steps, horizons and history the settings name."""
    history = timedelta(days=settings.history_days)
    parking_step = settings.parking_step_min * 60
    traffic_step = settings.traffic_step_min * 60
    parking_horizon = timedelta(hours=settings.parking_horizon_h)
    traffic_horizon = timedelta(hours=settings.traffic_horizon_h)
    return (
        Target("occupancy", "occupied", parking_step, parking_horizon, history,
               rate_product="occupancy_rate"),
        Target("flow", "vehicle_count", traffic_step, traffic_horizon, history),
        Target("flow", "mean_speed", traffic_step, traffic_horizon, history, product="speed"),
    )  # fmt: skip


TARGETS = targets(AnalyticsSettings())


def to_panel(arrays: SeriesArrays, measure: str = "") -> Panel:
    """Return store arrays as a panel whose series all end at the grid's last slot.

    Speeds are bounded by a multiple of the speed limit, never above the kind's range.
    """
    length = int(arrays.indptr[1] - arrays.indptr[0]) if arrays.ids else 0
    last = arrays.start.timestamp() + (length - 1) * arrays.step_seconds
    capacity = arrays.capacity
    if measure == "mean_speed":
        ceiling = KINDS["mean_speed"].maximum
        capacity = np.fmin(np.nan_to_num(capacity, nan=ceiling) * SPEED_LIMIT_FACTOR, ceiling)
    return Panel(
        values=arrays.values,
        indptr=arrays.indptr,
        step=arrays.step_seconds,
        end=np.full(len(arrays.ids), int(last), dtype=np.int64),
        ids=arrays.ids,
        capacity=capacity,
    )


def forecast_target(
    conn: psycopg.Connection,
    target: Target,
    now: datetime,
    backtest_folds: int = 1,
    timezone: str = "UTC",
    holidays: str = "",
    periods: tuple[Period, ...] = (),
    workers: int | None = None,
) -> int | None:
    """Fit and store one target's forecasts; return the run id, None when there is no data.

    `timezone` (IANA) is where the models count times of day and days of week; `holidays` the
    country (`city.country`) whose public holidays the models leave out when they differ;
    `periods` the city's school holidays and events (`city.special_days`); `workers` the
    threads a fit runs on (`analytics.workers`; None or 0: one per core).
    """
    ids = active_ids(conn, target.stream)
    step = target.step_seconds
    end = datetime.fromtimestamp(now.timestamp() // step * step, UTC)
    start = end - target.history
    arrays = read_series(conn, target.stream, target.measure, ids, start, end, step)
    if not ids or not arrays.mask.any():
        logger.info("%s: no data in [%s, %s); nothing to forecast", target.name, start, end)
        return None
    panel = to_panel(arrays, target.measure)
    horizon = int(target.horizon.total_seconds()) // step
    changes: list[Change] = []
    if target.measure == "occupied":
        capacities = read_capacities(conn, list(ids), start, end, step)
        changes = lasting_changes(capacities, step, panel.matrix())
        panel = since_changes(panel, changes)
    pending = {skip.row: skip for skip in pending_skips(changes, start, step)}
    skips = sorted([*pending.values(), *(s for s in unforecastable(panel) if s.row not in pending)],
                   key=lambda skip: skip.row)  # fmt: skip
    skipped = [Skipped(panel.ids[s.row], s.reason, s.detail) for s in skips]
    if skipped:
        logger.info(
            "%s: no forecast for %d series: %s", target.name, len(skipped),
            "; ".join(f"{s.series_id} ({s.reason})" for s in skipped[:10]),
        )  # fmt: skip
    keep = np.setdiff1d(np.arange(panel.n_series), [s.row for s in skips]).astype(np.int64)
    run = Run(target.name, step, datetime.now(UTC), start, end, horizon, Auto.name)
    if keep.size == 0:
        return write_run(conn, run, panel.ids, *_nothing(panel.n_series, horizon), skipped=skipped)
    fitted = panel.select(keep)
    model = Auto(
        horizon=horizon, timezone=timezone, holidays=holidays, periods=periods, workers=workers
    )
    model.fit(fitted)
    result = _widen(model.predict(horizon), keep, panel.n_series)
    calendar = (timezone, holidays, periods)
    scores = _scores(fitted, horizon, backtest_folds, calendar, workers) if backtest_folds else []
    state = {key: _widen_rows(value, keep, panel.n_series) for key, value in model.state.items()}
    anchors = anchors_of(panel, state)
    unanchored = np.isin(np.arange(panel.n_series), keep, invert=True)
    anchors = replace(anchors, observed_at=np.where(unanchored, np.nan, anchors.observed_at))
    run_id = write_run(
        conn, run, panel.ids, result.mean, result.lo, result.hi, result.model, scores, anchors,
        skipped,
    )  # fmt: skip
    logger.info("%s: stored run %d, %d series x %d steps", target.name, run_id, len(ids), horizon)
    if target.rate_product:
        rate_run = replace(run, stream=target.rate_product)
        _write_rate(conn, rate_run, panel, result, anchors, skipped)
    return run_id


def _widen_rows(
    rows: npt.NDArray[np.float64], keep: npt.NDArray[np.int64], n: int
) -> npt.NDArray[np.float64]:
    """Return per-row values of the kept series placed in an array of all n (NaN elsewhere)."""
    out: npt.NDArray[np.float64] = np.full((n, *rows.shape[1:]), np.nan)
    out[keep] = rows
    return out


def _widen(result: Forecast, keep: npt.NDArray[np.int64], n: int) -> Forecast:
    """Return the kept series' forecasts placed among all n series (NaN for the others)."""
    model = ["" for _ in range(n)]
    for row, name in zip(keep, result.model, strict=True):
        model[int(row)] = name
    return Forecast(
        _widen_rows(result.mean, keep, n), _widen_rows(result.lo, keep, n),
        _widen_rows(result.hi, keep, n), tuple(model),
    )  # fmt: skip


Arrays = npt.NDArray[np.float64]


def _nothing(n: int, horizon: int) -> tuple[Arrays, Arrays, Arrays, tuple[str, ...]]:
    """Return empty forecasts (all NaN) for n series: a run that stores only its skips."""
    empty = np.full((n, horizon), np.nan)
    return empty, empty, empty, ("",) * n


def anchors_of(panel: Panel, state: dict[str, npt.NDArray[np.float64]]) -> Anchors:
    """Return each series' latest observation (slot start, value) and fitted half-life."""
    matrix = panel.matrix()
    finite = np.isfinite(matrix)
    back = np.argmax(finite[:, ::-1], axis=1)
    has = finite.any(axis=1)
    rows = np.arange(matrix.shape[0])
    value = np.where(has, matrix[rows, matrix.shape[1] - 1 - back], np.nan)
    observed_at = np.where(has, (panel.end - back * panel.step).astype(np.float64), np.nan)
    half_life = state.get("half_life_s", np.full(panel.n_series, np.inf))
    return Anchors(observed_at, value.astype(np.float64), half_life)


def _write_rate(
    conn: psycopg.Connection,
    run: Run,
    panel: Panel,
    result: Forecast,
    anchors: Anchors,
    skipped: list[Skipped],
) -> None:
    """Store the forecasts and anchors divided by capacity (series without one left out)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_unit = np.where(panel.capacity > 0, 1.0 / panel.capacity, np.nan)[:, None]
    rate_anchors = replace(anchors, observed_value=anchors.observed_value * per_unit[:, 0])
    rate_id = write_run(
        conn, run, panel.ids, result.mean * per_unit, result.lo * per_unit,
        result.hi * per_unit, result.model, anchors=rate_anchors, skipped=skipped,
    )  # fmt: skip
    logger.info("%s: stored run %d", run.stream, rate_id)


def _scores(
    panel: Panel,
    horizon: int,
    folds: int,
    calendar: tuple[str, str, tuple[Period, ...]],
    workers: int | None,
) -> list[Score]:
    """Return pooled, per-series and per-step backtest scores of every model; `calendar` is
    the time zone, holiday region and special periods the models count with."""
    timezone, holidays, periods = calendar
    result = backtest(
        panel, BACKTEST_MODELS, horizon=horizon, folds=folds, timezone=timezone,
        holidays=holidays, periods=periods, workers=workers,
    )  # fmt: skip
    scores = []
    for name, acc in result.scores.items():
        pooled = acc.reduce(None)
        per_series = acc.reduce(1)
        per_step = acc.reduce(0)
        count = acc.sums["count"]
        scores.append(_score(name, "", 0, pooled, None, int(count.sum())))
        for i, series_id in enumerate(panel.ids):
            scores.append(_score(name, series_id, 0, per_series, i, int(count[i].sum())))
        for j in range(horizon):
            scores.append(_score(name, "", j + 1, per_step, j, int(count[:, j].sum())))
    return scores


Metrics = dict[str, npt.NDArray[np.float64]]


def _score(
    model: str, series_id: str, step: int, metrics: Metrics, index: int | None, points: int
) -> Score:
    """Return one score row; NaN metrics become None."""

    def pick(key: str) -> float | None:
        value = float(metrics[key] if index is None else metrics[key][index])
        return None if np.isnan(value) else value

    return Score(
        model, series_id, step, pick("mae"), pick("rmse"), pick("mape"), pick("mase"),
        pick("coverage80"), points,
    )  # fmt: skip


def run_once(
    conn: psycopg.Connection,
    refresh: Refresh | None = None,
    timezone: str = "UTC",
    stop: threading.Event | None = None,
    settings: AnalyticsSettings | None = None,
    holidays: str = "",
    periods: tuple[Period, ...] = (),
) -> list[int]:
    """Refresh rollups (when a refresh is given), then forecast every target.

    When `stop` is set between targets, the remaining ones are left for the next round.
    `holidays` is the city's country (`city.country`; empty: no holidays), `periods` its
    school holidays and events (`city.special_days`).
    """
    now = datetime.now(UTC)
    if refresh is not None:
        refresh(conn, now)
    runs = []
    for target in TARGETS if settings is None else targets(settings):
        if stop is not None and stop.is_set():
            logger.info("analytics job: stop requested; %s left for later", target.name)
            break
        run_id = forecast_target(
            conn, target, now, timezone=timezone, holidays=holidays, periods=periods,
            workers=None if settings is None else settings.workers,
        )  # fmt: skip
        if run_id is not None:
            runs.append(run_id)
    if settings is not None and settings.forecast_retention_days > 0:
        cut = now - timedelta(days=settings.forecast_retention_days)
        pruned = prune_runs(conn, cut)
        if pruned:
            logger.info("analytics job: deleted %d forecast runs issued before %s", pruned, cut)
    return runs


def run_forever(
    connect: Callable[[], psycopg.Connection],
    interval_s: float,
    refresh: Refresh | None = None,
    stop: threading.Event | None = None,
    timezone: str = "UTC",
    settings: AnalyticsSettings | None = None,
    holidays: str = "",
    periods: tuple[Period, ...] = (),
) -> None:
    """Run the job every `interval_s` seconds until SIGINT/SIGTERM or `stop` is set."""
    stop = stop or threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("analytics job: signal %d, stopping after the current forecast", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
    while not stop.is_set():
        try:
            with connect() as conn:
                run_once(conn, refresh, timezone, stop, settings, holidays, periods)
        except (psycopg.Error, StreetsenseError) as exc:
            # The loop's edge: log what failed and try again next round.
            logger.error("analytics job round failed: %s", exc)
        stop.wait(interval_s)
    logger.info("analytics job stopped")
