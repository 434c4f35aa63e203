"""The incident detector on arrays: rolling windows of readings, how long they were slow."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alerts.incidents import IncidentParams, Judged, Readings, judge, recurrent_low, widen

NAN = np.nan
DEFAULT = IncidentParams()


def judged(
    speed: list[float],
    vehicles: list[float],
    *,
    every: int = 1,
    lo: float = 40.0,
    yhat: float = 48.0,
    occupancy: float = 5.0,
    params: IncidentParams = DEFAULT,
    usual: float | None = None,
    capacity: float = 3600.0,
) -> Judged:
    """Judge one segment's readings, `every` minutes long, placed on the minute grid (by
    default on a road carrying 3600 veh/h: 25 vehicles a minute leave it far from full)."""
    columns = len(speed) * every
    grid = np.full((3, 1, columns), NAN)
    for k, (s, v) in enumerate(zip(speed, vehicles, strict=True)):
        grid[:, 0, k * every] = (v, s, occupancy)
    readings = Readings(grid[0], grid[1], grid[2], np.array([every]))
    band = np.full((1, columns), lo)
    mean = np.full((1, columns), yhat)
    low = None if usual is None else np.full((1, columns), usual)
    return judge(readings, band, mean, np.array([capacity]), params, low)


def test_one_minute_readings_fire_once_two_rolling_windows_were_slow() -> None:
    # 25 vehicles a minute at 48 km/h, then the road slows to 15 km/h
    speeds = [48.0] * 6 + [15.0] * 6
    found = judged(speeds, [25.0] * 12)
    # a window is slow once its vehicle-weighted speed is under 37 km/h (band 40 - 3): with
    # 2 of its 5 minutes at 15 km/h (34.8); two such windows in a row cover 6 minutes
    assert found.slow[0].tolist() == [False] * 7 + [True] * 5
    assert found.slow_min[0].tolist() == [0.0] * 7 + [5.0, 6.0, 7.0, 8.0, 9.0]
    fires = found.slow_min[0] >= DEFAULT.slow_for_min
    assert np.flatnonzero(fires)[0] == 8  # minute 8's reading: 3 minutes after the slowdown


def test_five_minute_readings_need_two_intervals_as_before() -> None:
    found = judged([48.0, 48.0, 15.0, 15.0], [125.0] * 4, every=5)
    assert found.slow_min[0, ::5].tolist() == [0.0, 0.0, 5.0, 10.0]
    assert (found.slow_min[0, ::5] >= DEFAULT.slow_for_min).tolist() == [False] * 3 + [True]
    assert np.isnan(found.speed[0, 1:5]).all()  # only minutes where a reading starts


def test_a_window_weighs_minutes_by_their_vehicles() -> None:
    # four minutes of 2 fast cars each cannot hide a minute of 40 slow ones
    found = judged([90.0] * 4 + [10.0], [2.0] * 4 + [40.0])
    assert found.speed[0, 4] == pytest.approx((4 * 2 * 90.0 + 40 * 10.0) / 48.0)
    assert found.slow[0, 4]


def test_a_missing_minute_breaks_the_run() -> None:
    speeds = [48.0] * 5 + [15.0] * 7
    vehicles = [25.0] * 12
    whole = judged(speeds, vehicles)
    gap = Readings(np.array([vehicles]), np.array([speeds]), np.full((1, 12), 5.0), np.array([1]))
    gap.vehicles[0, 9] = NAN
    gap.speed[0, 9] = NAN
    broken = judge(gap, np.full((1, 12), 40.0), np.full((1, 12), 48.0), np.array([3600.0]),
                   DEFAULT)  # fmt: skip
    assert whole.slow_min[0, 10] > broken.slow_min[0, 10] == 5.0


def test_few_vehicles_or_a_small_drop_are_not_slow() -> None:
    assert not judged([20.0] * 6, [1.0] * 6).slow.any()  # five cars in five minutes at night
    # under the band but close to the forecast: a narrow band, not an incident
    assert not judged([39.0] * 6, [25.0] * 6, lo=44.0, yhat=46.0).slow.any()
    assert not judged([20.0] * 6, [25.0] * 6, lo=NAN, yhat=NAN).slow.any()  # no forecast yet


def test_flow_collapse_needs_no_forecast() -> None:
    # 4 vehicles a minute on a 1800 veh/h road (240 veh/h), detectors 60% occupied
    found = judged([8.0] * 6, [4.0] * 6, lo=NAN, yhat=NAN, occupancy=60.0, capacity=1800.0)
    # slow through all six minutes there are: 6 minutes, not a whole window before the first
    assert found.collapse[0, 5] and found.slow_min[0, 5] == 6.0


def test_severe_drop_fires_in_one_window_when_asked() -> None:
    severe = replace(DEFAULT, severe_share=0.5)
    assert judged([48.0, 15.0], [125.0, 125.0], every=5, params=severe).severe[0, 5]
    assert not judged([48.0, 15.0], [125.0, 125.0], every=5).severe.any()


def test_widened_band_forgives_a_rush_that_comes_a_little_early() -> None:
    # the forecast's dip comes two intervals after the real one
    lo = np.array([[45.0, 45.0, 45.0, 22.0, 22.0, 22.0]])
    assert widen(lo, 2).tolist() == [[45.0, 22.0, 22.0, 22.0, 22.0, 22.0]]
    assert judged([25.0, 25.0], [125.0] * 2, every=5, lo=45.0).slow_min[0, 5] == 10.0
    assert not judged([25.0, 25.0], [125.0] * 2, every=5, lo=22.0, yhat=30.0).slow.any()


def test_a_slowdown_seen_in_two_past_weeks_is_usual_one_bad_week_is_not() -> None:
    shift = 0
    # four past weeks at this time of week: two congested (18 km/h), two free (45 km/h)
    weekly = np.array([[[18.0], [45.0], [18.0], [45.0]]])
    counted = np.full(weekly.shape, 50.0)
    usual = recurrent_low(weekly, counted, shift, 10.0)
    assert usual.tolist() == [[18.0]]
    assert not judged([18.0, 18.0], [125.0] * 2, every=5, usual=18.0).slow.any()
    assert judged([18.0, 18.0], [125.0] * 2, every=5, usual=44.0).slow_min[0, 5] == 10.0
    once = recurrent_low(np.array([[[18.0], [45.0], [44.0], [46.0]]]), counted, shift, 10.0)
    assert once.tolist() == [[44.0]]  # last week's incident alone does not make 18 usual
    none = recurrent_low(np.array([[[np.nan], [np.nan], [18.0], [np.nan]]]), counted, shift, 10.0)
    assert np.isnan(none).all()  # one week of history: no judgement


def test_a_queue_still_flowing_near_capacity_is_the_roads_bottleneck_not_an_incident() -> None:
    # 15 km/h, far under the band, on a road that carries 1800 veh/h; the flow check draws the
    # line at 60% of that: 1080 veh/h, 18 vehicles a minute
    def slow(per_minute: float) -> bool:
        found = judged([15.0] * 6, [per_minute] * 6, capacity=1800.0)
        return bool(found.slow[0, 5])

    assert not slow(25.0)  # 1500 veh/h get through: a rush hour's queue at the bottleneck
    assert not slow(19.0)  # 1140 veh/h
    assert slow(17.0)  # 1020 veh/h
    assert slow(8.0)  # 480 veh/h: an incident cut what gets through
    assert not judged([15.0] * 6, [17.0] * 6, capacity=1800.0,
                      params=replace(DEFAULT, queue_flow_share=0.5)).slow.any()  # fmt: skip


def test_the_flow_check_reads_the_window_as_an_hourly_rate_on_5_minute_data() -> None:
    # 90 vehicles in 5 minutes is 1080 veh/h: at 60% of 1800, no longer under it
    assert not judged([15.0, 15.0], [90.0] * 2, every=5, capacity=1800.0).slow.any()
    assert judged([15.0, 15.0], [85.0] * 2, every=5, capacity=1800.0).slow_min[0, 5] == 10.0


def test_an_unknown_capacity_leaves_the_speed_half_alone() -> None:
    for capacity in (NAN, np.inf):
        assert judged([15.0] * 6, [25.0] * 6, capacity=capacity).slow[0, 5]
