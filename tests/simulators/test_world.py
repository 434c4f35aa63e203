"""The running city: stochastic spot events and counters that track demand, valid readings."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import UTC, datetime

import numpy as np

from simulators.city import Character, CitySpec, generate_city
from simulators.curves import hourly_curves
from simulators.demand import Calendar, Event
from simulators.parking import SpotChains, rates
from simulators.world import CitySimulation, lot_targets
from streetsense.registry import LotKind

MONDAY = datetime(2026, 11, 2, tzinfo=UTC).timestamp()


def test_spot_chains_track_a_changing_target_on_average() -> None:
    steps = 600
    target = np.concatenate([np.full(300, 0.2), np.full(301, 0.8)])[:, None]
    lam, mu = rates(target[:-1], target[1:], 60.0, np.array([2.0]))
    chains = SpotChains(np.zeros(4000, dtype=np.int64), np.random.default_rng(1))
    start = chains.start(target[0])
    events = chains.advance(0.0, 60.0, lam, mu, {298, steps - 1})
    early, late = events.snapshots
    assert abs(start.mean() - 0.2) < 0.03
    assert abs(early.mean() - 0.2) < 0.03
    assert abs(late.mean() - 0.8) < 0.03
    assert (np.diff(events.times) >= 0).all()


def test_two_days_of_city_give_plausible_valid_readings() -> None:
    city = generate_city(CitySpec(seed=2, lots=8, segments=4))
    simulation = CitySimulation(city, Calendar(seed=2), MONDAY)
    readings = simulation.advance(MONDAY + 2 * 86_400)
    kinds = Counter(r.kind for r in readings)
    assert set(kinds) == {
        "occupied", "occupied_spaces", "vehicle_count", "mean_speed",
        "detector_occupancy", "lamp_power", "lamp_dimming", "battery", "rssi",
    }  # fmt: skip
    assert all(MONDAY <= r.observed_at.timestamp() <= MONDAY + 2 * 86_400 for r in readings)
    # Spot events alternate per sensor once heartbeats (repeats of the state) are set aside.
    per_spot: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    for reading in readings:
        if reading.kind == "occupied":
            per_spot[(reading.device_id, reading.sub_id)].append(reading.value)
    changes = [sum(a != b for a, b in itertools.pairwise(v)) for v in per_spot.values()]
    assert min(changes) >= 1 and np.mean(changes) > 4


def test_garage_counts_follow_demand_and_never_exceed_capacity() -> None:
    city = generate_city(CitySpec(seed=2, lots=12, segments=2))
    calendar = Calendar(seed=2, events=())
    simulation = CitySimulation(city, calendar, MONDAY)
    readings = [r for r in simulation.advance(MONDAY + 86_400) if r.kind == "occupied_spaces"]
    garages = {lot.device_id: lot for lot in city.lots if lot.kind is LotKind.OFF_STREET}
    index = {lot.id: i for i, lot in enumerate(city.lots)}
    times = np.array([r.observed_at.timestamp() for r in readings])
    targets = lot_targets(city, calendar, times)
    errors = []
    for row, reading in enumerate(readings):
        lot = garages[reading.device_id]
        assert 0 <= reading.value <= lot.capacity
        wanted = targets[row, index[lot.id]] * lot.capacity
        errors.append(abs(reading.value - wanted) / lot.capacity)
    assert np.mean(errors) < 0.06


def test_chunked_run_equals_one_run_in_shape() -> None:
    city = generate_city(CitySpec(seed=9, lots=6, segments=4))
    whole = CitySimulation(city, Calendar(seed=9), MONDAY).advance(MONDAY + 6 * 3600)
    chunked = CitySimulation(city, Calendar(seed=9), MONDAY)
    parts = [r for hour in range(1, 7) for r in chunked.advance(MONDAY + hour * 3600)]
    traffic = sorted(
        (r.device_id, r.sub_id, r.observed_at) for r in whole if r.kind == "vehicle_count"
    )
    again = sorted(
        (r.device_id, r.sub_id, r.observed_at) for r in parts if r.kind == "vehicle_count"
    )
    assert traffic == again
    assert len(parts) > 0.9 * len(whole)


def test_readings_show_commute_peaks_a_full_venue_and_slower_peak_traffic() -> None:
    city = generate_city(CitySpec(seed=1, lots=12, segments=8))
    friday = MONDAY + 4 * 86_400
    match = Calendar(seed=1, events=(Event(datetime(2026, 11, 7, 15, tzinfo=UTC), 2.0),))
    readings = CitySimulation(city, match, friday).advance(friday + 2 * 86_400)
    curves = hourly_curves(city, readings, friday, 48)
    assert curves.inbound_vph[8] > 2 * curves.inbound_vph[24 + 8]
    assert curves.inbound_vph[8] > 10 * curves.inbound_vph[3]
    assert curves.outbound_vph[17] > curves.outbound_vph[13]
    assert curves.speed_kmh[8] < 0.9 * curves.speed_kmh[3]
    venue = curves.occupancy[Character.VENUE]
    assert venue[24 + 16] > 0.85
    assert venue[24 + 10] < 0.3
    office = curves.occupancy[Character.OFFICE]
    assert office[11] > 0.5 and office[24 + 11] < 0.25
