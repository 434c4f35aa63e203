"""Traffic incidents in the simulator: a segment's capacity drops and its detectors show it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.incidents import Incident, capacity_factors, schedule
from simulators.world import CitySimulation

# A Tuesday, 08:00 to 09:30 UTC: the morning peak.
START = datetime(2026, 11, 17, 8, 0, tzinfo=UTC).timestamp()


def test_capacity_is_time_weighted_over_each_interval() -> None:
    starts = np.array([0.0, 300.0, 600.0, 900.0])
    incident = Incident("a", 450.0, 600.0, 0.2)  # half of the 2nd interval, all the 3rd, half 4th
    factors = capacity_factors(starts, 300.0, ["a", "b"], [incident])
    assert factors[:, 0] == pytest.approx([1.0, 0.6, 0.2, 0.6])
    assert (factors[:, 1] == 1.0).all()
    with pytest.raises(ValueError, match="share of capacity"):
        Incident("a", 0.0, 60.0, 1.5)


def test_incident_slows_the_segment_and_leaves_the_others() -> None:
    city = generate_city(CitySpec(seed=3, lots=2, segments=4))
    calendar = Calendar(seed=3)
    road = city.segments[0]
    incident = Incident(road.id, START + 1800, 2400, 0.2)

    def speeds(incidents: tuple[Incident, ...]) -> dict[str, float]:
        readings = CitySimulation(city, calendar, START, incidents=incidents).advance(START + 5400)
        window = [
            r for r in readings
            if r.kind == "mean_speed"
            and incident.start + 600 <= r.observed_at.timestamp() < incident.end
        ]  # fmt: skip
        return {
            s.id: float(np.mean([r.value for r in window if r.device_id == s.counter_id]))
            for s in city.segments
        }

    clear, blocked = speeds(()), speeds((incident,))
    assert blocked[road.id] < 0.6 * clear[road.id]
    for other in city.segments[1:]:
        assert blocked[other.id] == pytest.approx(clear[other.id], rel=0.15)


def test_schedule_draws_separate_incidents_in_busy_hours() -> None:
    days = [datetime(2026, 11, 16 + d, tzinfo=UTC).timestamp() for d in range(7)]
    drawn = schedule(["a", "b", "c"], days, np.random.default_rng(1), per_segment_day=2)
    assert len(drawn) > 10
    for incident in drawn:
        hour = (incident.start % 86_400) / 3600
        assert 7 <= hour < 19 and 20 * 60 <= incident.duration_s <= 60 * 60
        assert 0.2 <= incident.share <= 0.4
    for segment in "abc":
        mine = sorted((i.start, i.end) for i in drawn if i.segment == segment)
        assert all(b[0] >= a[1] + 3600 for a, b in itertools.pairwise(mine))
