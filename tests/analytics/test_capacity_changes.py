"""A lot whose capacity changed is forecast from its new self: the rule; the job on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import psycopg

from analytics.capacity_changes import last_change, lasting_changes
from analytics.job import Target, forecast_target
from store.forecasts import latest_forecasts, latest_skips
from store.series import read_capacities
from tests.analytics.test_store import START, add_lots, add_occupancy

DAY = 288  # 5-minute slots


def switching_capacity(days: int) -> list[int]:
    """Return Gießen's Rathaus pattern: 250 by day, 170 from 18:00 on weekdays, 250 all weekend."""
    out = []
    for slot in range(days * DAY):
        weekday = (START + timedelta(minutes=5 * slot)).weekday()
        evening = slot % DAY >= 18 * 12
        out.append(170 if evening and weekday < 4 else 250)
    return out


def test_a_daily_switch_and_register_corrections_are_no_change() -> None:
    days = 21
    assert last_change(0, np.array(switching_capacity(days), dtype=float), 300) is None
    corrected = np.array([242.0] * (5 * DAY) + [240.0] * (5 * DAY) + [239.0] * (5 * DAY))
    assert last_change(0, corrected, 300) is None
    # A short outage of the capacity itself (a bad value) is no change either.
    glitch = np.array([808.0] * (5 * DAY) + [3105.0] * 20 + [808.0] * (5 * DAY))
    assert last_change(0, glitch, 300) is None


def test_the_cut_is_at_the_last_lasting_change() -> None:
    """Karstadt: 695 -> 475 -> 380, with gaps by night; the cut is where 380 began."""
    capacity = np.array([695.0] * (4 * DAY) + [475.0] * (3 * DAY) + [380.0] * (2 * DAY))
    capacity[np.arange(capacity.size) % DAY >= 250] = np.nan  # nights unread
    change = last_change(3, capacity, 300)
    assert change is not None
    assert (change.row, change.slot, change.old, change.new) == (3, 7 * DAY, 475.0, 380.0)
    assert not change.pending
    # A new level read for 6 hours, never seen before in the window: pending.
    recent = np.array([200.0] * (5 * DAY) + [100.0] * 72)
    pending = last_change(0, recent, 300)
    assert pending is not None and pending.pending and pending.slot == 5 * DAY


def test_read_capacities_gives_each_bucket_its_capacity(db: psycopg.Connection) -> None:
    add_lots(db, {"a": 100, "b": 50})
    add_occupancy(db, "a", [10.0, 20.0, None, 40.0], capacity=[100, 100, 100, 60])
    grid = read_capacities(db, ["b", "a"], START, START + timedelta(minutes=20), 300)
    assert grid.shape == (2, 4)
    assert np.isnan(grid[0]).all()
    np.testing.assert_array_equal(grid[1], [100.0, 100.0, np.nan, 60.0])
    coarse = read_capacities(db, ["a"], START, START + timedelta(minutes=30), 900)
    np.testing.assert_array_equal(coarse[0], [100.0, 60.0])


def test_a_lot_whose_capacity_halved_a_week_ago_is_forecast_from_its_new_level(
    db: psycopg.Connection,
) -> None:
    """Half the spaces closed a week ago: the forecast follows the week since, not the two."""
    days = 14
    add_lots(db, {"halved": 100, "switching": 250, "closing": 100})
    t = np.arange(days * DAY)
    daily = np.sin(2 * np.pi * t / DAY)
    before = t < 7 * DAY
    halved = np.where(before, 65 + 30 * daily, 30 + 20 * daily)
    add_occupancy(db, "halved", [float(v) for v in halved],
                  capacity=[200 if b else 100 for b in before])  # fmt: skip
    add_occupancy(db, "switching", [float(v) for v in 100 + 50 * daily],
                  capacity=switching_capacity(days))  # fmt: skip
    closing = np.where(t < days * DAY - 72, 60 + 30 * daily, 20 + 10 * daily)
    add_occupancy(db, "closing", [float(v) for v in closing],
                  capacity=[200] * (days * DAY - 72) + [100] * 72)  # fmt: skip
    now = START + timedelta(days=days)
    target = Target("occupancy", "occupied", 300, timedelta(hours=6), timedelta(days=days),
                    rate_product="occupancy_rate")  # fmt: skip
    assert forecast_target(db, target, now, backtest_folds=0) is not None

    skips = latest_skips(db, "occupancy")
    assert {k: v.reason for k, v in skips.items()} == {"closing": "capacity_changed"}
    assert "from 200 to 100" in skips["closing"].detail
    rows = latest_forecasts(
        db, "occupancy", ["halved", "switching"], START, now + timedelta(days=1)
    )
    assert {row[0] for row in rows} == {"halved", "switching"}
    ours = [row for row in rows if row[0] == "halved"]
    assert len(ours) == 72
    slots = np.array([(row[1] - START).total_seconds() / 300 for row in ours])
    truth = 30 + 20 * np.sin(2 * np.pi * slots / DAY)
    forecast = np.array([row[2] for row in ours])
    # Fitted on the mixed fortnight, the job missed by 34 spaces on average.
    assert np.abs(forecast - truth).mean() < 3.0


def test_a_change_that_left_the_counts_as_they_were_is_not_cut() -> None:
    """Karstadt's 475 -> 380: the same counts before and after, only peaks capped; its history
    still tells the future. Counts that halved with the capacity do not."""
    capacity = np.array([475.0] * (14 * DAY) + [380.0] * (3 * DAY))
    daily = np.sin(2 * np.pi * np.arange(capacity.size) / DAY)
    same = 250 + 60 * daily
    halved = np.where(np.arange(capacity.size) < 14 * DAY, 250 + 60 * daily, 120 + 30 * daily)
    grid = np.vstack([capacity, capacity])
    assert [c.row for c in lasting_changes(grid, 300)] == [0, 1]
    changes = lasting_changes(grid, 300, np.vstack([same, halved]))
    assert [(c.row, c.slot) for c in changes] == [(1, 14 * DAY)]
