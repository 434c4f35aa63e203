"""Our models against statsforecast (SeasonalNaive, AutoETS, MSTL) from the same origins.

AutoETS is seasonal only where a day has at most 24 steps (statsforecast's limit); at 5-30 min it
is a non-seasonal ETS, and MSTL (daily and weekly STL seasons, ETS on the rest) is the seasonal
statistical model to compare with.

Usage: python bench/forecast_yardstick.py [--only SUBSTRING] [--every K]

statsforecast is a bench-only dependency and nothing at run time imports it. statsforecast 2.1
needs pandas < 3 (the dashboard needs pandas 3), so give it a venv of its own:
`python -m venv /tmp/sf && /tmp/sf/bin/pip install numpy scipy statsforecast`, then run
`/tmp/sf/bin/python -m bench.forecast_yardstick` from the repository.

Its models take gap-free series, so each training window's gaps are filled the way an analyst
would: the value a week earlier, else linear interpolation. Ours get the window as it is, gaps
included. Both are scored on the same points (truth present, every model forecast), from every
K-th origin with truth of the goal harness's protocol (bench/forecast_goals.py), with 4 weeks of
history. Times are wall-clock seconds for fitting and forecasting all origins (statsforecast's
three models share one call, split evenly; the first call includes its numba compilation).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.backtest import aligned, origins
from analytics.base import Matrix
from analytics.csvio import parse_zone, read_csv
from analytics.metrics import Accumulator
from analytics.models import build
from analytics.panel import FloatArray
from analytics.quality import screen
from bench.forecast_goals import CASES, Case

OURS = ("snaive_week", "anchored", "auto")
YARDSTICK_CASES = (
    "giessen-30min-dayonly-10w",
    "giessen-15min-4w",
    "aarhus-parking-30min",
    "aarhus-flow-5min",
)
HISTORY_WEEKS = 4


def filled(train: FloatArray, week: int) -> FloatArray:
    """Return rows with gaps filled by the value a week earlier, then linear interpolation."""
    out = train.copy()
    if out.shape[1] > week:
        earlier = out[:, :-week]
        later = out[:, week:]
        later[np.isnan(later)] = earlier[np.isnan(later)]
    for row in out:
        known = np.flatnonzero(np.isfinite(row))
        if known.size == 0:
            row[:] = 0.0
        elif known.size < row.size:
            row[:] = np.interp(np.arange(row.size), known, row[known])
    return out


def theirs(train: FloatArray, step: int, h: int) -> dict[str, tuple[FloatArray, ...]]:
    """Return statsforecast's (mean, lo80, hi80) per model for every row of `train`."""
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, SeasonalNaive

    day = 86_400 // step
    values = filled(train, 7 * day)
    n, width = values.shape
    frame = pd.DataFrame({
        "unique_id": np.repeat(np.arange(n), width),
        "ds": np.tile(np.arange(width), n),
        "y": values.reshape(-1),
    })  # fmt: skip
    models = [
        SeasonalNaive(season_length=7 * day),
        # statsforecast's ETS takes seasons of at most 24 steps: daily only at hourly data.
        AutoETS(season_length=day if day <= 24 else 1, alias="AutoETS"),
        MSTL(season_length=[day, 7 * day], trend_forecaster=AutoETS(model="ZZN"), alias="MSTL"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = StatsForecast(models=models, freq=1).forecast(df=frame, h=h, level=[80])
    out = {}
    for name in ("SeasonalNaive", "AutoETS", "MSTL"):
        columns = [name, f"{name}-lo-80", f"{name}-hi-80"]
        out[f"sf_{name}"] = tuple(
            result[column].to_numpy().reshape(n, h).astype(np.float64) for column in columns
        )
    return out


def run(case: Case, every: int, workdir: Path) -> None:
    """Score ours and statsforecast's on one case and print a Markdown table."""
    path = case.data.write(workdir / f"{case.data.name}.csv")
    panel = screen(read_csv(path, case.step_min * 60, parse_zone(case.timezone))).panel
    data: Matrix = aligned(panel)
    n, length = data.values.shape
    step, h = panel.step, case.horizon
    keep = HISTORY_WEEKS * 7 * 86_400 // step
    offsets = [
        offset
        for offset in origins(length, h, case.folds, case.stride)
        if np.isfinite(data.values[:, length - offset : length - offset + h]).any()
    ][::every]
    scores: dict[str, Accumulator] = {}
    seconds: dict[str, float] = {}
    for offset in offsets:
        train = data.cut(offset)
        truth = data.values[:, length - offset : length - offset + h]
        forecasts: dict[str, tuple[FloatArray, ...]] = {}
        for name in OURS:
            started = time.perf_counter()
            model = build(name, horizon=h, timezone=case.timezone)
            result = model.fit_matrix(train).predict(h)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
            forecasts[name] = (result.mean, result.lo, result.hi)
        started = time.perf_counter()
        recent = train.values[:, -keep:]
        sf = theirs(recent, step, h)
        each = (time.perf_counter() - started) / len(sf)
        for name, triple in sf.items():
            seconds[name] = seconds.get(name, 0.0) + each
            forecasts[name] = triple
        shared = np.isfinite(truth)
        for mean, _, _ in forecasts.values():
            shared &= np.isfinite(mean)
        masked = np.where(shared, truth, np.nan)
        for name, (mean, lo, hi) in forecasts.items():
            scores.setdefault(name, Accumulator(n, h)).add(masked, mean, lo, hi, np.full(n, np.nan))
    print(f"\n{case.name}: {len(offsets)} origins ({h} steps of {case.step_min} min), "
          f"{int(next(iter(scores.values())).sums['count'].sum())} shared points")  # fmt: skip
    print("| model | MAE | vs sf_SeasonalNaive | coverage80 | seconds (all origins) |")
    print("|---|---|---|---|---|")
    reference = scores["sf_SeasonalNaive"].pooled()["mae"]
    for name, acc in scores.items():
        pooled = acc.pooled()
        print(f"| {name} | {pooled['mae']:.3f} | {1 - pooled['mae'] / reference:+.1%} | "
              f"{pooled['coverage80']:.1%} | {seconds[name]:.1f} |")  # fmt: skip
    sys.stdout.flush()


def main() -> int:
    """Run the yardstick on Gießen and Aarhus."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--every", type=int, default=3, help="take every K-th origin")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="yardstick-") as tmp:
        for case in CASES:
            if case.name in YARDSTICK_CASES and args.only in case.name:
                run(case, args.every, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
