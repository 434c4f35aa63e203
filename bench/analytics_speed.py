"""Time fit + 24 h forecast and a backtest for 10,000 series x 4 weeks at 5 min; compare with
statsmodels' Holt-Winters fitted series by series on a sample, extrapolated per series.

Usage: python bench/analytics_speed.py [N_SERIES] [HW_SAMPLE]
"""

from __future__ import annotations

import resource
import sys
import time
import warnings

import numpy as np

from analytics.backtest import backtest
from analytics.models import build
from analytics.panel import Panel, from_matrix

STEP = 300
DAY = 86_400 // STEP
LENGTH = 28 * DAY
HORIZON = DAY
MODELS = ("snaive_week", "tow_mean", "profile_es", "profile_ridge", "auto")


def synthetic(n: int, seed: int = 0) -> Panel:
    """Return n series of 4 weeks: daily and weekly shape, drifting level, noise, 3% gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH)
    daily = np.sin(2 * np.pi * t / DAY - 1.5) + 0.4 * np.sin(4 * np.pi * t / DAY)
    weekend = np.where((t // DAY) % 7 >= 5, 0.6, 1.0)
    values = np.empty((n, LENGTH))
    for start in range(0, n, 1000):
        rows = min(n, start + 1000) - start
        scale = rng.uniform(20, 200, (rows, 1))
        drift = np.cumsum(rng.normal(0, 0.02, (rows, LENGTH)), axis=1)
        block = scale * (1.5 + daily * weekend + drift) + rng.normal(0, 3, (rows, LENGTH))
        block[rng.random((rows, LENGTH)) < 0.03] = np.nan
        values[start : start + rows] = block
    return from_matrix(values, step=STEP, end=np.int64(1_700_000_000))


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def holt_winters_seconds(panel: Panel, sample: int) -> tuple[float, float]:
    """Return (seconds per series, MAE) of statsmodels Holt-Winters on the first series."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    matrix = panel.matrix()
    started = time.perf_counter()
    errors = []
    for row in matrix[:sample]:
        train, truth = row[:-HORIZON], row[-HORIZON:]
        filled = np.interp(
            np.arange(train.size), np.flatnonzero(~np.isnan(train)), train[~np.isnan(train)]
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(filled, seasonal="add", seasonal_periods=DAY).fit()
        errors.append(np.nanmean(np.abs(model.forecast(HORIZON) - truth)))
    return (time.perf_counter() - started) / sample, float(np.mean(errors))


def main() -> int:
    """Run the timings and print them."""
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    sample = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    started = time.perf_counter()
    panel = synthetic(n)
    print(f"data: {n} series x {LENGTH} slots in {time.perf_counter() - started:.1f} s, "
          f"peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
    timings = {}
    for name in MODELS:
        started, cpu = time.perf_counter(), time.process_time()
        forecast = build(name, horizon=HORIZON).fit(panel).predict(HORIZON)
        elapsed = time.perf_counter() - started
        timings[name] = (elapsed, time.process_time() - cpu)
        assert forecast.mean.shape == (n, HORIZON)
        print(f"fit + 24 h forecast {name:<14} {elapsed:6.2f} s (CPU {timings[name][1]:6.2f} s)"
              f"  peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip
    # `auto` fits these four on shared windows; fitting them one by one is what it used to do.
    alone = [timings[name] for name in MODELS if name != "auto"]
    wall, cpu = sum(t[0] for t in alone), sum(t[1] for t in alone)
    auto_wall, auto_cpu = timings["auto"]
    print(f"auto {auto_wall:.2f} s (CPU {auto_cpu:.2f} s) vs its four candidates one by one "
          f"{wall:.2f} s (CPU {cpu:.2f} s): "
          f"{auto_wall / wall:.2f}x wall, {auto_cpu / cpu:.2f}x CPU")  # fmt: skip
    ours = {}
    started, cpu = time.perf_counter(), time.process_time()
    result = backtest(
        panel, ["snaive_week", "profile_es"], horizon=HORIZON, folds=3, stride=DAY // 2
    )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    for name, acc in result.scores.items():
        ours[name] = acc.pooled()["mae"]
    print(f"backtest snaive_week + profile_es, 3 origins, h=288: {elapsed:.2f} s "
          f"(CPU {cpu:.2f} s)  peak RSS {peak_rss_mb():.0f} MB  MAE {ours}")  # fmt: skip
    sample_panel = panel.select(np.arange(sample, dtype=np.int64))
    started = time.perf_counter()
    es = build("profile_es", horizon=HORIZON)
    cut = from_matrix(sample_panel.matrix()[:, :-HORIZON], step=STEP, end=np.int64(0))
    mean = es.fit(cut).predict(HORIZON).mean
    es_mae = float(np.nanmean(np.abs(mean - sample_panel.matrix()[:, -HORIZON:])))
    per_series, hw_mae = holt_winters_seconds(sample_panel, sample)
    es_started = time.perf_counter()
    build("profile_es", horizon=HORIZON).fit(panel).predict(HORIZON)
    es_per_series = (time.perf_counter() - es_started) / n
    print(f"statsmodels Holt-Winters (additive, daily season), {sample} series: "
          f"{per_series * 1000:.0f} ms/series -> {per_series * n:.0f} s for {n} (extrapolated); "
          f"profile_es {es_per_series * 1000:.2f} ms/series; "
          f"ratio {per_series / es_per_series:.0f}x; "
          f"MAE on the sample: HW {hw_mae:.2f}, profile_es {es_mae:.2f}")  # fmt: skip
    elapsed = time.perf_counter() - started
    print(f"peak RSS {peak_rss_mb():.0f} MB ({elapsed:.0f} s for the comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
