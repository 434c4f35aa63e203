"""Accuracy targets on the recorded Aarhus data, when the shared data directory is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.backtest import backtest
from analytics.csvio import read_csv
from analytics.quality import screen
from bench.analytics_accuracy import convert_parking

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA / "aarhus_parking.csv").exists(),
    reason=f"Aarhus recordings not found at {DATA} (they live beside the repository)",
)
def test_parking_beats_baselines_with_calibrated_intervals(tmp_path: Path) -> None:
    converted = tmp_path / "parking.csv"
    convert_parking(DATA / "aarhus_parking.csv", converted)
    screened = screen(read_csv(converted, 1800))
    assert "BUSGADEHUSET" not in screened.panel.ids
    result = backtest(
        screened.panel, ["snaive_week", "tow_mean", "auto"], horizon=12, folds=40, stride=12
    )
    mae = {name: acc.pooled()["mae"] for name, acc in result.scores.items()}
    assert mae["auto"] <= 0.85 * mae["snaive_week"]
    assert mae["auto"] < mae["tow_mean"]
    assert 0.75 <= result.scores["auto"].pooled()["coverage80"] <= 0.85
