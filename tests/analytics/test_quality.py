"""Screening finds a stuck counter however the series is sampled: every slot, every other
slot, or by day only with a gap every night."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.quality import screen
from tests.analytics.synthetic import DAY, panel, seasonal


def _stuck_middle(every: int, day_only: bool) -> tuple[np.ndarray, slice]:
    """Return two weeks of one varying series, read every `every` slots (by day only), with
    three days in the middle stuck at one value; and the stuck slots."""
    values = seasonal(n=1, weeks=2, seed=4)[0]
    stuck = slice(5 * DAY, 8 * DAY)
    values[stuck] = 42.0
    read = np.zeros(values.size, dtype=bool)
    read[::every] = True
    if day_only:
        hour = (np.arange(values.size) % DAY) / 2
        read &= (hour >= 9) & (hour < 21)
    values[~read] = np.nan
    return values, stuck


@pytest.mark.parametrize(("every", "day_only"), [(1, False), (2, False), (3, False), (1, True)])
def test_a_stuck_run_is_masked_however_sparse_the_readings(every: int, day_only: bool) -> None:
    values, stuck = _stuck_middle(every, day_only)
    screened = screen(panel(values[None, :]))
    kept = screened.panel.values
    assert np.isnan(kept[stuck]).all()
    outside = np.isfinite(values) & ~np.isin(np.arange(values.size), np.r_[stuck])
    np.testing.assert_array_equal(kept[outside], values[outside])  # the rest untouched
    assert any("stuck counter" in note for note in screened.notes)


def test_a_value_repeated_across_an_outage_is_no_stuck_run() -> None:
    """Two equal readings either side of a three-day outage say nothing of a stuck counter."""
    values = seasonal(n=1, weeks=2, seed=5)[0]
    values[5 * DAY : 8 * DAY] = np.nan
    values[5 * DAY - 1] = values[8 * DAY] = 42.0
    screened = screen(panel(values[None, :]))
    np.testing.assert_array_equal(screened.panel.values, values)
    assert screened.notes == ()


def test_a_day_only_series_stuck_throughout_is_excluded_with_its_reason() -> None:
    """A counter stuck at one value for weeks, read by day only, is no series to score."""
    good = seasonal(n=1, weeks=2, seed=6)[0]
    frozen = np.full(good.size, 79.0)
    hour = (np.arange(good.size) % DAY) / 2
    frozen[(hour < 9) | (hour >= 21)] = np.nan
    screened = screen(panel(np.vstack([good, frozen])))
    assert screened.panel.n_series == 1
    assert screened.panel.ids == ("0",)
    assert any(note.startswith("1: excluded, no reading left") for note in screened.notes)


def test_a_series_of_one_value_is_excluded_like_the_job_skips_it() -> None:
    """Short runs of one value between long gaps escape the stuck rule; the series still holds
    nothing to forecast (a model repeats it with a band of zero width) and is not scored."""
    good = seasonal(n=1, weeks=2, seed=7)[0]
    sparse = np.full(good.size, np.nan)
    sparse[:: DAY + 5] = 12.0  # one reading a day or so, always 12
    screened = screen(panel(np.vstack([good, sparse])))
    assert screened.panel.ids == ("0",)
    assert "1: excluded, every reading is one value (a stuck counter)" in screened.notes
