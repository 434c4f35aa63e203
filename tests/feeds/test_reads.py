"""The live parking reads: the database adds lots up; overlap re-reads skip seen transactions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from feeds.live import LiveParking
from store.feeds_reads import lot_parking, parking_transactions_since
from tests.feeds.conftest import counter, spot, write


def test_overlap_reads_skip_transactions_already_seen(city: psycopg.Connection) -> None:
    since = datetime.now(UTC) - timedelta(minutes=1)
    first = parking_transactions_since(city, since, 120)
    assert first.lots == {"harbour", "market"}  # the city's four parking readings
    again = parking_transactions_since(city, since, 120, list(first.transactions))
    assert again.transactions == {} and again.lots == set()
    write(city, [counter("harbour-counter", 7, datetime.now(UTC))])
    later = parking_transactions_since(city, since, 120, list(first.transactions))
    assert later.lots == {"harbour"}
    assert len(later.transactions) == 1


def test_lots_count_each_sources_newest_reading(city: psycopg.Connection) -> None:
    live = LiveParking(lot_parking(city))
    market = live.lot("market")
    assert market is not None and (market.sensed, market.sensors) == (2.0, 3)
    assert live.occupied("harbour") is not None and live.lot("station") is None
    now = datetime.now(UTC)
    write(city, [spot("market-gw", "s1", False, now - timedelta(hours=1))])  # older: ignored
    assert live.apply(["market"], lot_parking(city, ["market"])) == set()
    write(city, [spot("market-gw", "s2", False, now)])
    assert live.apply(["market", "station"], lot_parking(city, ["market", "station"])) == {"market"}
    found = live.occupied("market")
    assert found is not None and found[0] == 1
    assert live.occupied("station") is None


def test_a_spot_of_an_inactive_lot_counts_for_its_devices_lot(city: psycopg.Connection) -> None:
    # A sensor moved out of a lot that closed for good: its readings count where its gateway is
    # (as the dashboard's lot_live counted them), not nowhere.
    city.execute("UPDATE lots SET active = false WHERE lot_id = 'station'")
    city.execute(
        "INSERT INTO spots (spot_id, lot_id, device_id, sensor) "
        "VALUES ('station-9', 'station', 'market-gw', 's9')"
    )
    write(city, [spot("market-gw", "s9", True, datetime.now(UTC))])
    market = LiveParking(lot_parking(city)).lot("market")
    assert market is not None and (market.sensed, market.sensors) == (3.0, 4)
    live = city.execute("SELECT occupied, sensors FROM lot_live WHERE lot_id = 'market'")
    assert live.fetchone() == (3.0, 4)  # the dashboard's view says the same
