"""Privacy: no public response carries a device id or a spot id, in any format or channel."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg

from harness.mqtt import close_client
from streetsense.config import Settings
from streetsense.topics import Topics
from tests.feeds.clients import events, subscribe, wait_for
from tests.feeds.conftest import Server, city_registry, feeds_settings

FORMATS = ("json", "jsonld", "geojson", "csv")


def _secrets() -> list[str]:
    registry = city_registry()
    return [d.id for d in registry.devices] + [s.id for s in registry.spots]


def _urls(spec: dict[str, Any], lots: list[str], segments: list[str]) -> Iterator[str]:
    """Yield a URL for every GET operation of the OpenAPI document, for every id and format."""
    for path, operations in spec["paths"].items():
        if "get" not in operations or path.endswith("/stream"):
            continue
        ids = lots if "{lot_id}" in path else segments if "{segment_id}" in path else [""]
        for item in ids:
            url = path.replace("{lot_id}", item).replace("{segment_id}", item)
            yield url
            names = {p["name"] for p in operations["get"].get("parameters", [])}
            if "format" in names:
                for fmt in FORMATS:
                    yield f"{url}?format={fmt}"


def _scan(text: str, where: str) -> None:
    for secret in _secrets():
        assert secret not in text, f"{secret!r} leaked in {where}"


def test_no_response_names_a_device_or_spot(
    busy_city: psycopg.Connection,
    settings: Settings,
    topics: Topics,
    start_server: Callable[..., Server],
) -> None:
    server = start_server(feeds_settings(settings, republish_mqtt=True))
    registry = city_registry()
    lots = [lot.id for lot in registry.lots]
    segments = [s.id for s in registry.segments]
    with server.client() as client:
        spec = client.get("/openapi.json").json()
        urls = list(_urls(spec, lots, segments))
        assert len(urls) > 40
        for url in urls:
            response = client.get(url)
            assert response.status_code < 500, url
            _scan(response.text, url)
        _scan(client.get("/health").text, "/health")
        with client.stream("GET", "/v1/parking/stream", timeout=httpx.Timeout(10.0)) as response:
            snapshot = next(events(response))
        _scan(str(snapshot.data), "the stream snapshot")
    subscriber, received = subscribe(settings.mqtt.url, f"{topics.prefix}/feeds/parking/#")
    try:
        for _ in lots:
            topic, body, _ = wait_for(received, lambda t, b, r: True)
            _scan(f"{topic} {body}", "an MQTT message")
    finally:
        close_client(subscriber)


def test_the_scan_can_fail() -> None:
    try:
        _scan('{"device": "harbour-counter"}', "a test body")
    except AssertionError as exc:
        assert "harbour-counter" in str(exc)
    else:
        raise AssertionError("the privacy scan missed a device id")
