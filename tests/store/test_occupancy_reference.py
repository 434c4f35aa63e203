"""Occupancy from spot events equals a direct computation, however late or often they arrive."""

from __future__ import annotations

import random
from datetime import timedelta

import psycopg
import pytest

from store.rollups import refresh
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.store.support import T0, at, load_city, spot, write

SENSORS = ("s1", "s2", "s3", "s4")
MINUTES = 60


def reference(events: list[Reading]) -> dict[int, float]:
    """Return {bucket minute: time-weighted mean occupied spaces}, computed step by step."""
    seconds = [0.0] * (MINUTES * 60)
    for sensor in SENSORS:
        mine = sorted((r.observed_at, r.value) for r in events if r.sub_id == sensor)
        for (start, value), (stop, _) in zip(mine, [*mine[1:], (at(MINUTES), 0.0)], strict=True):
            first = int((start - T0).total_seconds())
            last = int((stop - T0).total_seconds())
            for second in range(first, last):
                seconds[second] += value
    return {m: sum(seconds[m * 60 : (m + 5) * 60]) / 300 for m in range(0, MINUTES, 5)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_out_of_order_and_repeated_delivery(
    db: psycopg.Connection, settings: Settings, seed: int
) -> None:
    rng = random.Random(seed)
    events = [
        spot(sensor, second / 60, rng.random() < 0.5)
        for sensor in SENSORS
        for second in sorted(rng.sample(range(MINUTES * 60), 12))
    ]
    load_city(db)
    deliveries = events + rng.sample(events, 15)  # some delivered twice
    rng.shuffle(deliveries)  # and late, in any order
    received = at(MINUTES)
    for start in range(0, len(deliveries), 11):
        received += timedelta(minutes=2)
        write(db, deliveries[start : start + 11], received_at=received)
        refresh(db, settings, until=at(MINUTES))
    got = {
        int((bucket - T0).total_seconds() // 60): occupied
        for bucket, occupied in db.execute(
            "SELECT bucket, occupied FROM occupancy_5m WHERE lot_id = 'market'"
        )
    }
    expected = reference(events)
    assert got.keys() == expected.keys()
    for minute, value in expected.items():
        assert got[minute] == pytest.approx(value, abs=1e-9), minute
