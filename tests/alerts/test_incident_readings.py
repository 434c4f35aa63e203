"""The edge agents' 1-minute traffic readings as the incident rule and the rollups read them."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from store import rollups
from store.alerts_inputs import segment_readings, segments_reading_beyond
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.alerts.support import T0, at, write

# (lane, vehicles, speed) per minute: a lane with no vehicles sends no speed, as the agent does
MINUTES = [
    [("l1", 20.0, 50.0), ("l2", 0.0, None)],
    [("l1", 10.0, 20.0), ("l2", 5.0, 80.0)],
]


def _minute_readings() -> list[Reading]:
    readings = []
    for minute, lanes in enumerate(MINUTES):
        for lane, count, speed in lanes:
            occupancy = 10.0 + minute
            readings.append(Reading("loop", "vehicle_count", at(minute), count, lane))
            readings.append(Reading("loop", "detector_occupancy", at(minute), occupancy, lane))
            if speed is not None:
                readings.append(Reading("loop", "mean_speed", at(minute), speed, lane))
    return readings


def test_lanes_of_a_minute_are_summed_and_their_speeds_weighted_by_vehicles(
    city: psycopg.Connection,
) -> None:
    write(city, _minute_readings(), at(2))
    city.commit()
    found = segment_readings(city, at(0), at(5))
    rows = sorted(zip(found["id"], found["at"], found["vehicles"], found["speed"],
                      found["timed"], found["occupancy"], strict=True))  # fmt: skip
    assert rows == [
        ("ring", at(0).timestamp(), 20.0, 50.0, 20.0, 10.0),
        ("ring", at(1).timestamp(), 15.0, pytest.approx((10 * 20.0 + 5 * 80.0) / 15), 15.0, 11.0),
    ]
    assert len(segment_readings(city, at(0), at(5), ["elsewhere"])["id"]) == 0


def test_only_segments_with_a_reading_beyond_a_bound_are_named(city: psycopg.Connection) -> None:
    write(city, _minute_readings(), at(2))
    city.commit()
    # l1 drove 20 km/h in minute 1: under a bound of 25, not under 15
    assert segments_reading_beyond(city, at(0), at(5), {"ring": 25.0}, 50.0) == ["ring"]
    assert segments_reading_beyond(city, at(0), at(5), {"ring": 15.0}, 50.0) == []
    assert segments_reading_beyond(city, at(0), at(5), {"ring": float("nan")}, 50.0) == []
    assert segments_reading_beyond(city, at(0), at(5), {"ring": float("nan")}, 10.5) == ["ring"]
    assert segments_reading_beyond(city, at(2), at(5), {"ring": 25.0}, 0.0) == []  # none since


def test_the_5_minute_rollup_sums_the_minutes(city: psycopg.Connection, settings: Settings) -> None:
    write(city, _minute_readings(), at(2))
    city.commit()
    city.autocommit = True
    rollups.refresh(city, settings, until=at(10), since=T0 - timedelta(hours=1))
    city.autocommit = False
    row = city.execute(
        "SELECT vehicle_count, samples FROM flow_5m WHERE segment_id = 'ring' AND bucket = %s",
        (T0,),
    ).fetchone()
    assert row == (35.0, 11)  # 20 + 0 + 10 + 5 vehicles; 4 counts, 4 occupancies, 3 speeds
