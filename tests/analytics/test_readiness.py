"""Which series get no forecast, and the reason each is given."""

from __future__ import annotations

import numpy as np

from analytics.readiness import unforecastable
from tests.analytics.synthetic import DAY, panel, seasonal


def test_each_unforecastable_series_gets_its_reason() -> None:
    values = seasonal(n=6, weeks=2, gaps=0.1)
    values[1, :] = np.nan  # nothing
    values[2, : -DAY + 4] = np.nan  # less than a day of readings
    values[3, ::2] = 17.0  # a stuck counter, gaps in between
    values[3, 1::2] = np.nan
    values[4] = np.abs(values[4])
    capacity = np.array([np.nan, 100.0, np.nan, 50.0, 10.0, 1e6])  # row 4 is far above 10

    skips = unforecastable(panel(values, capacity))

    assert [(s.row, s.reason) for s in skips] == [
        (1, "no_data"), (2, "too_short"), (3, "constant"), (4, "over_capacity"),
    ]  # fmt: skip
    assert "17" in skips[2].detail and "stuck" in skips[2].detail
    assert "capacity of 10" in skips[3].detail


def test_a_day_of_day_only_readings_with_one_change_is_forecast() -> None:
    values = np.full((1, 3 * DAY), np.nan)
    values[0, DAY : 2 * DAY + 1] = np.arange(DAY + 1) % 5  # a day and a slot, values move
    assert unforecastable(panel(values)) == []
