"""The incident detector on arrays: what makes an interval slow, collapsed, severe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from alerts.incidents import IncidentFlags, IncidentParams, detect, recurrent_low, widen

NAN = np.nan
DEFAULT = IncidentParams()


def flags(
    speed: list[float],
    lo: list[float],
    yhat: list[float],
    vehicles: list[float],
    params: IncidentParams = DEFAULT,
    occupancy: list[float] | None = None,
) -> IncidentFlags:
    occupied = np.array([occupancy or [5.0] * len(speed)])
    arrays = (np.array([values]) for values in (speed, lo, yhat, vehicles))
    return detect(*arrays, occupied, np.array([1800.0]), params)


def test_two_slow_intervals_fire_one_does_not() -> None:
    assert flags([20, 20], [40, 40], [48, 48], [50, 50]).fire[0]
    one = flags([48, 20], [40, 40], [48, 48], [50, 50])
    assert not one.fire[0] and one.hold[0]


def test_few_vehicles_or_a_small_drop_are_not_slow() -> None:
    assert not flags([20, 20], [40, 40], [48, 48], [3, 3]).hold[0]  # three cars at night
    # under the band but close to the forecast: a narrow band, not an incident
    assert not flags([39, 39], [44, 44], [46, 46], [50, 50]).hold[0]
    assert not flags([20, 20], [NAN, NAN], [NAN, NAN], [50, 50]).hold[0]  # no forecast yet


def test_flow_collapse_needs_no_forecast() -> None:
    # 20 vehicles in 5 minutes on a 1800 veh/h road, detectors 60% occupied
    found = flags([8, 8], [NAN, NAN], [NAN, NAN], [20, 20], occupancy=[60.0, 60.0])
    assert found.fire[0] and found.collapse[0]


def test_severe_drop_fires_in_one_interval_when_asked() -> None:
    severe = replace(DEFAULT, severe_share=0.5)
    assert flags([48, 15], [40, 40], [48, 48], [50, 50], severe).fire[0]
    assert not flags([48, 15], [40, 40], [48, 48], [50, 50]).fire[0]


def test_widened_band_forgives_a_rush_that_comes_a_little_early() -> None:
    # the forecast's dip comes two intervals after the real one
    lo = np.array([[45.0, 45.0, 45.0, 22.0, 22.0, 22.0]])
    assert widen(lo, 2).tolist() == [[45.0, 22.0, 22.0, 22.0, 22.0, 22.0]]
    speed, judged = [25.0, 25.0], slice(1, 3)
    narrow = flags(speed, list(lo[0, judged]), [48, 48], [50, 50])
    wide = flags(speed, list(widen(lo, 2)[0, judged]), [30, 30], [50, 50])
    assert narrow.fire[0] and not wide.fire[0]


def test_a_slowdown_seen_in_two_past_weeks_is_usual_one_bad_week_is_not() -> None:
    shift = 0
    # four past weeks at this time of week: two congested (18 km/h), two free (45 km/h)
    weekly = np.array([[[18.0], [45.0], [18.0], [45.0]]])
    counted = np.full(weekly.shape, 50.0)
    usual = recurrent_low(weekly, counted, shift, 10.0)
    assert usual.tolist() == [[18.0]]
    now = detect(np.array([[18.0, 18.0]]), np.array([[40.0, 40.0]]), np.array([[45.0, 45.0]]),
                 np.array([[50.0, 50.0]]), np.array([[5.0, 5.0]]), np.array([1800.0]),
                 DEFAULT, usual_low=np.repeat(usual, 2, axis=1))  # fmt: skip
    assert not now.fire[0]  # recurrent congestion
    once = recurrent_low(np.array([[[18.0], [45.0], [44.0], [46.0]]]), counted, shift, 10.0)
    assert once.tolist() == [[44.0]]  # last week's incident alone does not make 18 usual
    none = recurrent_low(np.array([[[np.nan], [np.nan], [18.0], [np.nan]]]), counted, shift, 10.0)
    assert np.isnan(none).all()  # one week of history: no judgement
