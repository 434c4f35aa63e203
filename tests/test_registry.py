"""The registry file: parsing, validation, idempotent storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.registry import store_registry
from streetsense.errors import RegistryError
from streetsense.registry import load_registry, parse_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "registry.example.toml"


def _minimal() -> dict[str, Any]:
    return {
        "site": [{"id": "c"}],
        "lot": [{"id": "l1", "site": "c", "kind": "on_street", "capacity": 1, "lat": 1, "lon": 2}],
        "device": [{"id": "g1", "site": "c", "kind": "parking", "lot": "l1"}],
        "spot": [{"id": "s1", "lot": "l1", "device": "g1"}],
    }


def test_example_file_loads() -> None:
    registry = load_registry(EXAMPLE)
    assert [lot.id for lot in registry.lots] == ["harbour-garage", "market-street"]
    assert registry.segments[0].coordinates[0] == (10.19, 56.165)
    assert len(registry.version) == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["lot"][0].update(capacity=0), "capacity' = 0 must be within"),
        (lambda d: d["lot"][0].update(kind="garage"), "must be one of"),
        (lambda d: d["lot"][0].update(lat=91), "lat' = 91"),
        (lambda d: d["lot"][0].pop("lon"), "field 'lon' is required"),
        (lambda d: d["lot"][0].update(colour="red"), "'colour' is not a known field"),
        (lambda d: d["device"][0].update(lot="nowhere"), "must name a defined lot"),
        (lambda d: d["spot"].append(dict(d["spot"][0], id="s2")), "used twice"),
        (lambda d: d["lot"].append(dict(d["lot"][0])), "defined twice"),
        (lambda d: d["site"][0].update(id="a/b"), "not a valid id"),
        (lambda d: d.update(parking=[]), "unknown tables"),
    ],
)
def test_invalid_entries_are_named(change: Any, message: str) -> None:
    data = _minimal()
    change(data)
    with pytest.raises(RegistryError, match=message):
        parse_registry(data)


def test_capacity_must_hold_the_spots() -> None:
    data = _minimal()
    data["spot"].append({"id": "s2", "lot": "l1", "device": "g1", "sensor": "b"})
    with pytest.raises(RegistryError, match="2 spots but capacity 1"):
        parse_registry(data)


def test_store_is_idempotent_and_versioned(db: psycopg.Connection) -> None:
    registry = load_registry(EXAMPLE)
    first = store_registry(db, registry, "example")
    again = store_registry(db, registry, "example")
    assert first.changed and not again.changed
    assert db.execute("SELECT count(*) FROM registry_versions").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM spots").fetchone() == (3,)
    smaller = parse_registry(_minimal())
    assert store_registry(db, smaller, "minimal").changed
    active = db.execute("SELECT lot_id FROM lots WHERE active ORDER BY lot_id").fetchall()
    assert active == [("l1",)]
