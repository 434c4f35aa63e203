"""The live parking reads: overlap re-reads skip seen transactions; counts fold idempotently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from feeds.live import LiveParking
from store.feeds_reads import parking_observations_since, read_sensor_map
from tests.feeds.conftest import counter, spot, write


def test_overlap_reads_skip_transactions_already_seen(city: psycopg.Connection) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    first = parking_observations_since(city, since, 120)
    assert len(first.observations) == 4  # the city's four parking readings
    again = parking_observations_since(city, since, 120, list(first.transactions))
    assert again.observations == []
    write(city, [counter("harbour-counter", 7, datetime.now(UTC))])
    later = parking_observations_since(city, since, 120, list(first.transactions))
    assert [o.value for o in later.observations] == [7.0]


def test_live_counts_ignore_old_and_repeated_readings(city: psycopg.Connection) -> None:
    live = LiveParking(read_sensor_map(city))
    now = datetime.now(UTC)
    readings = parking_observations_since(city, None, 120).observations
    assert live.apply(readings) == {"harbour", "market"}
    assert live.apply(readings) == set()  # the same readings again change nothing
    write(city, [spot("market-gw", "s1", False, now - timedelta(hours=1))])  # older: ignored
    write(city, [spot("market-gw", "s2", False, now)])
    newer = parking_observations_since(city, None, 7200).observations
    assert live.apply(newer) == {"market"}
    found = live.occupied("market")
    assert found is not None and found[0] == 1
    assert live.occupied("station") is None
