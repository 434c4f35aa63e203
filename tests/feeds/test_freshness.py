"""A lot is stale when its sensors fall silent, not merely when its occupancy stops changing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from store.device_state import DeviceStateUpdate, upsert_device_state
from store.registry import store_registry
from streetsense.config import Settings
from tests.feeds.conftest import Server, city_registry, counter, feeds_settings, spot, write


def _heard(conn: psycopg.Connection, device: str, at: datetime, *, online: bool = True) -> None:
    update = DeviceStateUpdate(device, "centre", at, online, at, {}, None, 1, 0)
    with conn.transaction():
        upsert_device_state(conn, [update])


def _stale(server: Server) -> dict[str, bool]:
    with server.client() as client:
        lots = client.get("/v1/parking/lots").json()["lots"]
    return {lot["id"]: lot["stale"] for lot in lots}


def test_a_quiet_lot_stays_fresh_while_its_sensors_are_heard(
    db: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    store_registry(db, city_registry(), "tests")
    now = datetime.now(UTC)
    quiet_since = now - timedelta(minutes=20)  # no spot has changed for 20 minutes
    write(db, [
        spot("market-gw", "s1", True, quiet_since),
        spot("market-gw", "s2", False, quiet_since),
        spot("market-gw", "s3", False, quiet_since),
        counter("harbour-counter", 100, quiet_since),
    ])  # fmt: skip
    _heard(db, "market-gw", now - timedelta(seconds=30))  # its heartbeat, half a minute ago
    _heard(db, "harbour-counter", now - timedelta(minutes=19))  # silent since its last count
    feeds = feeds_settings(settings, stale_after_s=600)

    first = _stale(start_server(feeds))
    assert first == {"harbour": True, "market": False, "station": True}

    _heard(db, "market-gw", now, online=False)  # the gateway's last will: it went offline
    assert _stale(start_server(feeds))["market"] is True
