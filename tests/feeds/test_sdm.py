"""NGSI-LD output validates against the FIWARE Smart Data Models schemas in ../shared/sdm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.feeds.conftest import Server

SDM = Path(__file__).resolve().parents[2].parent / "shared" / "sdm"
COMMON_URL = "https://smart-data-models.github.io/data-models/common-schema.json"
pytestmark = pytest.mark.skipif(
    not (SDM / "common-schema.json").is_file(), reason=f"Smart Data Models not found at {SDM}"
)


def _validator(model: str) -> Draft202012Validator:
    common = json.loads((SDM / "common-schema.json").read_text())
    registry: Registry[Any] = Registry().with_resource(COMMON_URL, Resource.from_contents(common))
    schema = json.loads((SDM / model / "schema.json").read_text())
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def _check(entity: dict[str, Any]) -> None:
    errors = sorted(_validator(entity["type"]).iter_errors(entity), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_lots_are_valid_parking_entities(busy_feeds: Server) -> None:
    with busy_feeds.client(headers={"Accept": "application/ld+json"}) as client:
        listing = client.get("/v1/parking/lots")
        one = client.get("/v1/parking/lots/market")
    assert listing.headers["content-type"] == "application/ld+json"
    entities = listing.json()
    assert {e["type"] for e in entities} == {"OffStreetParking", "OnStreetParking"}
    for entity in [*entities, one.json()]:
        _check(entity)
        assert entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:")
        assert "@context" in entity
    harbour = next(e for e in entities if e["id"].endswith(":harbour"))
    assert harbour["availableSpotNumber"] == 300
    assert harbour["totalSpotNumber"] == 400
    assert harbour["availableSpotNumber"] <= harbour["totalSpotNumber"]
    assert harbour["location"] == {"type": "Point", "coordinates": [10.212, 56.153]}


def test_segments_are_valid_traffic_flow_observations(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        listing = client.get("/v1/traffic/segments", params={"format": "jsonld"}).json()
        one = client.get(
            "/v1/traffic/segments/ring-eb", headers={"Accept": "application/ld+json"}
        ).json()
        quiet = client.get("/v1/traffic/segments/quay-wb", params={"format": "jsonld"})
    assert [e["id"] for e in listing] == ["urn:ngsi-ld:TrafficFlowObserved:ring-eb"]
    for entity in [*listing, one]:
        _check(entity)
    assert one["congested"] is True
    assert 0 <= one["occupancy"] <= 1  # a fraction, not our percentage
    start, end = one["dateObserved"].split("/")
    assert start == one["dateObservedFrom"] and end == one["dateObservedTo"]
    assert quiet.status_code == 404  # no observation yet: no entity, and a problem saying so


def test_the_validator_can_fail(busy_feeds: Server) -> None:
    with busy_feeds.client() as client:
        entity = client.get("/v1/parking/lots/harbour", params={"format": "jsonld"}).json()
    entity["availableSpotNumber"] = -1
    with pytest.raises(AssertionError):
        _check(entity)
