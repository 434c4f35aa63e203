"""Demand has the shape of a city's: commute peaks, quiet weekends, events, congestion."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from simulators.city import Character, City, CitySpec, generate_city
from simulators.demand import Calendar, Event
from simulators.traffic import SegmentQueues, congested_speed, free_speed
from simulators.world import lot_targets, segment_demand

MONDAY = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def city() -> City:
    return generate_city(CitySpec(seed=11, lots=18, segments=12))


def _week(hourly: np.ndarray) -> np.ndarray:
    """Return (7 days, 24 hours) from a week of hourly values."""
    return hourly.reshape(7, 24)


def _hours() -> np.ndarray:
    return MONDAY + np.arange(7 * 24) * 3600.0 + 1800.0


def _lots(city: City, character: Character) -> list[int]:
    return [i for i, lot in enumerate(city.lots) if lot.character is character]


def test_traffic_peaks_on_weekday_mornings_and_evenings_and_is_lower_at_weekends(
    city: City,
) -> None:
    calendar = Calendar(seed=11, events=())
    demand, capacity = segment_demand(city, calendar, _hours())
    week = _week((demand / capacity).mean(axis=1))
    weekday = week[:5].mean(axis=0)
    assert weekday[8] > weekday[12] and weekday[17] > weekday[12]
    assert weekday[8] > 5 * weekday[3] and weekday[17] > 5 * weekday[3]
    assert week[5:].max() < 0.7 * weekday.max()
    assert week[:5].sum() / 5 > 1.3 * week[5:].sum() / 2


def test_inbound_roads_peak_in_the_morning_outbound_in_the_evening(city: City) -> None:
    calendar = Calendar(seed=11, events=())
    demand, _ = segment_demand(city, calendar, _hours())
    tuesday = demand[24:48]
    for index, segment in enumerate(city.segments):
        morning, evening = tuesday[8, index], tuesday[17, index]
        assert (morning > evening) == segment.inbound


def test_lots_follow_their_character(city: City) -> None:
    calendar = Calendar(seed=11, events=())
    targets = lot_targets(city, calendar, _hours())
    office = _week(targets[:, _lots(city, Character.OFFICE)].mean(axis=1))
    retail = _week(targets[:, _lots(city, Character.RETAIL)].mean(axis=1))
    homes = _week(targets[:, _lots(city, Character.RESIDENTIAL)].mean(axis=1))
    assert office[2, 11] > 0.5
    assert office[2, 3] < 0.15
    assert office[6, 11] < 0.3 * office[2, 11]
    assert retail[5, 14] > retail[2, 14] > retail[2, 3]
    assert homes[2, 3] > 0.7 > homes[2, 12]


def test_holiday_looks_like_a_sunday(city: City) -> None:
    holiday = Calendar(seed=11, events=(), holidays=frozenset({date(2026, 11, 3)}))
    plain = Calendar(seed=11, events=(), holidays=frozenset())
    hours = _hours()
    office = _lots(city, Character.OFFICE)
    with_holiday = _week(lot_targets(city, holiday, hours)[:, office].mean(axis=1))
    without = _week(lot_targets(city, plain, hours)[:, office].mean(axis=1))
    assert with_holiday[1, 11] < 0.3 * without[1, 11]
    assert with_holiday[2, 11] == pytest.approx(without[2, 11])


def test_an_event_fills_the_venue_lots_and_congests_nearby_roads(city: City) -> None:
    kick_off = datetime(2026, 11, 4, 19, tzinfo=UTC)
    calm = Calendar(seed=11, events=())
    match = Calendar(seed=11, events=(Event(kick_off, 2.0),))
    hours = _hours()
    venue = _lots(city, Character.VENUE)
    during = int((kick_off.timestamp() - MONDAY) // 3600)
    assert lot_targets(city, match, hours)[during, venue].min() > 0.9
    assert lot_targets(city, calm, hours)[during, venue].max() < 0.3
    near = [i for i, s in enumerate(city.segments) if s.venue_distance_m < 1_500 and s.inbound]
    far = [i for i, s in enumerate(city.segments) if s.venue_distance_m > 3_000]
    assert near and far
    before = during - 1
    busy, _ = segment_demand(city, match, hours)
    quiet, _ = segment_demand(city, calm, hours)
    assert (busy[before, near] > 1.5 * quiet[before, near]).all()
    assert busy[before, far] == pytest.approx(quiet[before, far])


def test_speed_falls_as_flow_nears_capacity() -> None:
    shares = np.linspace(0.0, 1.0, 11)
    speeds = free_speed(shares, np.full(11, 50.0))
    assert speeds[0] == pytest.approx(50.0)
    assert (np.diff(speeds) < 0).all()
    assert speeds[-1] == pytest.approx(25.0)
    assert (congested_speed(shares[5:], np.full(6, 50.0)) <= 25.0).all()


def test_demand_beyond_capacity_queues_and_slows_traffic() -> None:
    queues = SegmentQueues(1)
    demand = np.array([[600.0], [1900.0], [2400.0], [2400.0], [300.0], [300.0]])
    capacity = np.full_like(demand, 1800.0)
    result = queues.advance(demand, capacity, np.array([50.0]), 300.0)
    flow, speed = result.flow_vph[:, 0], result.speed_kmh[:, 0]
    assert flow.max() <= 1800.0
    assert result.congested[:, 0].tolist() == [False, True, True, True, True, False]
    assert speed[0] > 45.0 and speed[2] < 20.0
    assert flow[4] > 300.0  # the queue discharges after the peak
    served = flow.sum() * 300.0 / 3600.0
    assert served == pytest.approx(demand.sum() * 300.0 / 3600.0)


def test_weather_is_deterministic_and_varies_between_days() -> None:
    times = MONDAY + np.arange(14) * 86_400.0 + 43_200.0
    demand, capacity = Calendar(seed=4).weather(times)
    again, _ = Calendar(seed=4).weather(times)
    assert np.array_equal(demand, again)
    assert demand.std() > 0.01
    assert set(np.round(capacity, 2).tolist()) <= {0.85, 1.0}
