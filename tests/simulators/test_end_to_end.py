"""Simulator -> broker -> ingest -> PostgreSQL: what the city publishes is what the store holds."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from harness.ingest import ingest_thread
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.mqtt import PacedPublisher
from simulators.packs import Outbound, SequenceBook
from simulators.registry_file import write_registry
from simulators.runner import Tally, backfill, deliver
from simulators.scenario import FaultOrder, build
from store.registry import store_registry
from streetsense.config import Settings, with_overrides
from streetsense.errors import PayloadError
from streetsense.readings import decode_readings
from streetsense.registry import load_registry
from streetsense.topics import DeviceTopic, Topics


def _scalar(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for(url: str, query: str, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    value = _scalar(url, query)
    while value < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        value = _scalar(url, query)
    return value


def _keys(messages: list[Outbound], topics: Topics) -> tuple[set[tuple[object, ...]], int]:
    """Return the distinct reading keys the messages carry, and how many records are refused."""
    keys: set[tuple[object, ...]] = set()
    refused = 0
    for message in messages:
        parsed = topics.parse(message.topic)
        assert isinstance(parsed, DeviceTopic) and parsed.channel.stream is not None
        try:
            result = decode_readings(message.payload, parsed.device_id, parsed.channel.stream)
        except PayloadError:
            refused += 1
            continue
        refused += len(result.rejections)
        keys |= {(r.device_id, r.kind, r.sub_id or "", r.observed_at) for r in result.readings}
    return keys, refused


@pytest.fixture
def city_settings(settings: Settings, tmp_path: Path) -> Settings:
    registry = load_registry(_registry_file(tmp_path))
    with psycopg.connect(settings.database.url) as conn:
        store_registry(conn, registry, "simulated city")
    return with_overrides(settings, ingest={"device_burst": 100_000, "device_rate_per_s": 1e6})


def _registry_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.toml"
    write_registry(generate_city(CitySpec(seed=31, lots=6, segments=4)), path)
    return path


def test_backfill_and_a_faulty_scenario_land_in_the_store_exactly(
    city_settings: Settings, topics: Topics
) -> None:
    city = generate_city(CitySpec(seed=31, lots=6, segments=4))
    calendar = Calendar(seed=31)
    book = SequenceBook()
    url = city_settings.database.url
    now = time.time()
    sent: list[Outbound] = []
    orders = [FaultOrder("duplicates"), FaultOrder("malformed"), FaultOrder("out-of-order")]
    with (
        ingest_thread(city_settings, "sim-e2e"),
        PacedPublisher(city_settings, window=200) as publisher,
    ):
        tally = backfill(
            city, calendar, topics, publisher, book,
            start=now - 6 * 3600, end=now - 3600, progress=False, on_message=sent.append,
        )  # fmt: skip
        assert tally.readings > 2_000
        messages = build(city, calendar, topics, book, orders, start=now - 3600, end=now)
        deliver(messages, publisher, Tally())
        keys, refused = _keys(sent + messages, topics)
        assert refused >= 2
        stored = _wait_for(url, "SELECT count(*) FROM readings", len(keys))
        rejected = _wait_for(url, "SELECT count(*) FROM rejected_messages", refused)
    assert stored == len(keys)
    assert rejected == refused
    assert _scalar(url, "SELECT count(DISTINCT device_id) FROM readings") == len(city.devices())
    oldest = "SELECT extract(epoch FROM now() - min(observed_at))::int FROM readings"
    assert _scalar(url, oldest) > 5 * 3600
