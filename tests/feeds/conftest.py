"""Fixtures for the feeds: a small city in a fresh database and a real uvicorn server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import uvicorn

from feeds.app import create_app
from feeds.metrics import FeedsMetrics
from feeds.server import FeedsServer, server_config
from harness.services import free_port
from store.forecasts import Run, write_run
from store.registry import store_registry
from store.rollups import refresh
from store.writes import write_readings
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading
from streetsense.registry import Registry, parse_registry

CITY: dict[str, list[dict[str, Any]]] = {
    "site": [{"id": "centre", "name": "Centre"}],
    "lot": [
        {"id": "harbour", "site": "centre", "name": "Harbour Garage", "kind": "off_street",
         "capacity": 400, "lat": 56.1530, "lon": 10.2120, "area": "harbour"},
        {"id": "market", "site": "centre", "name": "Market Street", "kind": "on_street",
         "capacity": 3, "lat": 56.1572, "lon": 10.2107, "area": "old-town"},
        {"id": "station", "site": "centre", "name": "Station Car Park", "kind": "off_street",
         "capacity": 120, "lat": 56.1500, "lon": 10.2040, "area": "station"},
    ],
    "device": [
        {"id": "harbour-counter", "site": "centre", "kind": "counter", "lot": "harbour"},
        {"id": "market-gw", "site": "centre", "kind": "parking", "lot": "market"},
        {"id": "ring-counter", "site": "centre", "kind": "traffic", "segment": "ring-eb"},
    ],
    "spot": [
        {"id": "market-1", "lot": "market", "device": "market-gw", "sensor": "s1"},
        {"id": "market-2", "lot": "market", "device": "market-gw", "sensor": "s2"},
        {"id": "market-3", "lot": "market", "device": "market-gw", "sensor": "s3"},
    ],
    "segment": [
        {"id": "ring-eb", "site": "centre", "name": "Ring road eastbound", "direction": "east",
         "coordinates": [[10.190, 56.165], [10.205, 56.166]], "speed_limit_kmh": 50},
        {"id": "quay-wb", "site": "centre", "name": "Quay westbound", "direction": "west",
         "coordinates": [[10.215, 56.150], [10.210, 56.151]], "speed_limit_kmh": 30},
    ],
}  # fmt: skip


def city_registry() -> Registry:
    """Return the test city."""
    return parse_registry(CITY)


def write(conn: psycopg.Connection, readings: list[Reading]) -> None:
    """Commit readings the way ingest does (public writer, received now)."""
    received = datetime.now(UTC)
    with conn.transaction():
        write_readings(conn, readings, [received] * len(readings))


def spot(device: str, sensor: str, occupied: bool, at: datetime) -> Reading:
    """Return a spot sensor's occupied event."""
    return Reading(device, "occupied", at, 1.0 if occupied else 0.0, sub_id=sensor)


def counter(device: str, occupied: float, at: datetime) -> Reading:
    """Return a counter's occupied spaces."""
    return Reading(device, "occupied_spaces", at, occupied)


@pytest.fixture
def city(db: psycopg.Connection) -> psycopg.Connection:
    """Load the test city and its current parking state: harbour 100/400, market 2/3."""
    store_registry(db, city_registry(), "tests")
    now = datetime.now(UTC)
    write(db, [
        counter("harbour-counter", 100, now - timedelta(seconds=30)),
        spot("market-gw", "s1", True, now - timedelta(seconds=40)),
        spot("market-gw", "s2", True, now - timedelta(seconds=35)),
        spot("market-gw", "s3", False, now - timedelta(seconds=20)),
    ])  # fmt: skip
    return db


@dataclass
class Server:
    """A feeds server on loopback and its settings."""

    url: str
    settings: Settings
    server: uvicorn.Server

    def metric(self, name: str, **labels: str) -> float | None:
        """Return a sample of the server's metrics, as its metrics port would show it."""
        runtime = self.server.config.app.state.runtime
        return FeedsMetrics(runtime).registry.get_sample_value(name, labels)

    def client(self, **kwargs: object) -> httpx.Client:
        """Return an HTTP client for this server."""
        options: dict[str, object] = {"timeout": 10.0, **kwargs}
        return httpx.Client(base_url=self.url, **options)  # type: ignore[arg-type]


def feeds_settings(settings: Settings, **feeds: object) -> Settings:
    """Return test settings for the feeds (no rate limit pressure, no MQTT unless asked)."""
    values: dict[str, object] = {"rate_per_minute": 1_000_000, "republish_mqtt": False}
    values.update(feeds)
    return with_overrides(settings, feeds=values)


@pytest.fixture
def start_server() -> Iterator[Callable[[Settings], Server]]:
    """Return a function that starts a feeds server for some settings; all stop at the end."""
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: Settings, *, healthy: bool = True) -> Server:
        port = free_port()
        # The production server (guards, timeouts), stopping faster than it would.
        config = server_config(create_app(settings), "127.0.0.1", port, timeout_graceful_shutdown=1)
        server = FeedsServer(config)
        thread = threading.Thread(target=server.run, name=f"feeds-{port}", daemon=True)
        thread.start()
        started.append((server, thread))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                status = httpx.get(url + "/health", timeout=1).status_code
                if status == 200 or not healthy:
                    return Server(url, settings, server)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"feeds server on {url} not healthy after 20 s")

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def feeds(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> Server:
    """Return a running feeds server over the test city."""
    return start_server(feeds_settings(settings))


def traffic(
    segment_device: str, lane: str, at: datetime, count: float, speed: float
) -> list[Reading]:
    """Return one lane's interval of a traffic counter."""
    return [
        Reading(segment_device, "vehicle_count", at, count, sub_id=lane),
        Reading(segment_device, "mean_speed", at, speed, sub_id=lane),
        Reading(segment_device, "detector_occupancy", at, 12.0, sub_id=lane),
    ]


@pytest.fixture
def busy_city(city: psycopg.Connection, settings: Settings) -> psycopg.Connection:
    """The test city with history 20 min back, flows, refreshed rollups and forecasts.

    Harbour held 50 cars until 30 s ago (100 now: filling); ring-eb ran at 12 km/h of 50.
    """
    now = datetime.now(UTC)
    write(city, [counter("harbour-counter", 50, now - timedelta(minutes=20))])
    flows = []
    for minutes in (14, 12, 9, 7):
        flows += traffic("ring-counter", "L1", now - timedelta(minutes=minutes), 20, 12.0)
    write(city, flows)
    city.commit()
    refresh(city, settings)
    step = timedelta(minutes=15)
    data_end = datetime.fromtimestamp(now.timestamp() // 900 * 900, UTC)
    mean = np.array([[110.0, 120.0, 130.0, 140.0, 150.0, 160.0, 170.0]])
    run = Run("occupancy", 900, now, data_end - 96 * step, data_end, 7, "auto")
    write_run(city, run, ["harbour"], mean, mean - 10, mean + 10, ["auto"])
    flow_mean = np.array([np.arange(1.0, 25.0)])
    flow_run = Run("flow", 300, now, data_end - 96 * step, data_end, 24, "auto")
    write_run(city, flow_run, ["ring-eb"], flow_mean, flow_mean, flow_mean, ["auto"])
    city.commit()
    return city


@pytest.fixture
def busy_feeds(
    busy_city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> Server:
    """Return a running feeds server over the busy city."""
    return start_server(feeds_settings(settings))


def assert_problems(client: httpx.Client, path: str, cases: dict[str, str]) -> None:
    """Assert each query on `path` gets a 400 problem document whose detail holds the hint."""
    for query, hint in cases.items():
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, query
        assert response.headers["content-type"] == "application/problem+json"
        assert hint in response.json()["detail"], (query, response.json())
