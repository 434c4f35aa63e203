"""Metrics on hand-computable cases; backtests where the real models must win."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from analytics.backtest import backtest, origins
from analytics.base import Matrix
from analytics.csvio import read_csv_capacities
from analytics.metrics import Accumulator, seasonal_scale
from analytics.models import build
from tests.analytics.synthetic import panel, seasonal


def test_metrics_by_hand() -> None:
    acc = Accumulator(n_series=2, horizon=2)
    truth = np.array([[10.0, 0.0], [4.0, np.nan]])
    mean = np.array([[12.0, 1.0], [1.0, 7.0]])
    lo = mean - 1.5
    hi = mean + 1.5
    acc.add(truth, mean, lo, hi, scale=np.array([2.0, np.nan]))
    pooled = acc.pooled()
    # Errors 2, 1, 3 (the NaN truth is skipped).
    assert pooled["mae"] == pytest.approx(2.0)
    assert pooled["rmse"] == pytest.approx(np.sqrt((4 + 1 + 9) / 3))
    # MAPE only where truth > 0: 2/10 and 3/4.
    assert pooled["mape"] == pytest.approx(100 * (0.2 + 0.75) / 2)
    # MASE only where the scale is known: (2/2 + 1/2) / 2.
    assert pooled["mase"] == pytest.approx(0.75)
    # Inside [mean - 1.5, mean + 1.5]: 1 (err 1) only.
    assert pooled["coverage80"] == pytest.approx(1 / 3)
    # Bands 3 wide; the interval score adds 10x the misses beyond them: 0.5 and 1.5.
    assert pooled["width80"] == pytest.approx(3.0)
    assert pooled["interval80"] == pytest.approx((3 + 5 + 3 + 3 + 15) / 3)
    per_step = acc.reduce(axis=0)
    np.testing.assert_allclose(per_step["mae"], [2.5, 1.0])
    per_series = acc.reduce(axis=1)
    np.testing.assert_allclose(per_series["mae"], [1.5, 3.0])


def test_seasonal_scale_by_hand() -> None:
    y = np.array([[1.0, 2.0, 4.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
    scale = seasonal_scale(y, period=2)
    assert scale[0] == pytest.approx(3.5)
    assert np.isnan(scale[1])  # a constant series has no scale


def test_origins_oldest_first_and_within_data() -> None:
    assert origins(100, horizon=10, folds=3, stride=5) == [20, 15, 10]
    assert origins(12, horizon=10, folds=3, stride=5) == [10]


def test_real_models_beat_baselines_on_seasonal_data() -> None:
    data = panel(seasonal(n=20, weeks=6, seed=1, gaps=0.02))
    result = backtest(
        data,
        ["naive", "snaive_week", "tow_mean", "profile_es", "profile_ridge", "auto"],
        horizon=12,
        folds=6,
        stride=24,
    )
    mae = {name: acc.pooled()["mae"] for name, acc in result.scores.items()}
    for real in ("profile_es", "profile_ridge", "auto"):
        assert mae[real] < 0.85 * mae["naive"]
        assert mae[real] < 0.85 * mae["snaive_week"]
        assert mae[real] < mae["tow_mean"]
    coverage = result.scores["auto"].pooled()["coverage80"]
    assert 0.65 <= coverage <= 0.95
    assert result.best in ("profile_es", "profile_ridge", "auto")
    assert result.n_series == 20
    models = result.summary()["models"]
    assert isinstance(models, dict)
    assert set(models["auto"]) == {
        "mae", "rmse", "mape", "mase", "coverage80", "width80", "interval80", "points",
        "per_step",
    }  # fmt: skip


def test_backtest_never_sees_the_future() -> None:
    values = seasonal(n=3, weeks=4, seed=2)
    spoiled = values.copy()
    spoiled[:, -12:] += 1000.0  # only the test window changes
    result = backtest(panel(spoiled), ["profile_es"], horizon=12, folds=1)
    # The forecast must be the one made from data before the window, unspoiled.
    train = Matrix.of(panel(values)).cut(12)
    mean = build("profile_es", horizon=12).fit_matrix(train).predict(12).mean
    expected = np.abs(spoiled[:, -12:] - mean).sum()
    assert result.scores["profile_es"].sums["abs"].sum() == pytest.approx(expected)


def test_a_capacity_column_per_reading_cuts_each_origin_at_its_last_change(tmp_path: Path) -> None:
    """A lot halved 10 days before the end: with each reading's capacity the origins after the
    change fit only the days since; the CSV's capacity column carries the change."""
    days, step = 35, 1800
    slots = np.arange(days * 48)
    daily = np.sin(2 * np.pi * slots / 48)
    halved = slots >= (days - 10) * 48
    value = np.where(halved, 40 + 30 * daily, 130 + 60 * daily)
    capacity = np.where(halved, 100, 200)
    start = 1_700_006_400  # a midnight UTC
    path = tmp_path / "lots.csv"
    lines = ["series_id,timestamp,value,capacity"]
    for i in slots:
        stamp = datetime.fromtimestamp(start + int(i) * step, UTC).isoformat()
        lines.append(f"halved,{stamp},{value[i]:.3f},{capacity[i]}")
    path.write_text("\n".join(lines) + "\n")
    data, capacities = read_csv_capacities(path, step)
    assert capacities is not None
    np.testing.assert_array_equal(capacities.values, capacity.astype(float))
    common = {"horizon": 12, "folds": 16, "stride": 7}
    without = backtest(data, ["tow_mean"], **common).scores["tow_mean"].pooled()["mae"]
    cut = backtest(data, ["tow_mean"], capacities=capacities, **common)
    assert cut.scores["tow_mean"].pooled()["mae"] < 0.2 * without
