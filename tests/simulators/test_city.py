"""City generation: deterministic per seed, and a registry `streetsense registry load` accepts."""

from __future__ import annotations

from pathlib import Path

from simulators.city import Character, CitySpec, generate_city
from simulators.registry_file import write_registry
from streetsense.registry import DeviceKind, LotKind, load_registry


def test_same_seed_same_city_other_seed_other_city(tmp_path: Path) -> None:
    first = write_registry(generate_city(CitySpec(seed=7)), tmp_path / "a.toml")
    again = write_registry(generate_city(CitySpec(seed=7)), tmp_path / "b.toml")
    other = write_registry(generate_city(CitySpec(seed=8)), tmp_path / "c.toml")
    assert (tmp_path / "a.toml").read_bytes() == (tmp_path / "b.toml").read_bytes()
    assert first.version == again.version != other.version


def test_registry_file_loads_with_every_part_of_the_city(tmp_path: Path) -> None:
    city = generate_city(CitySpec(seed=3, lots=12, segments=6))
    write_registry(city, tmp_path / "city.toml")
    registry = load_registry(tmp_path / "city.toml")
    assert len(registry.lots) == 12
    assert len(registry.segments) == 6
    kinds = {lot.kind for lot in registry.lots}
    assert kinds == {LotKind.ON_STREET, LotKind.OFF_STREET}
    devices = {d.id: d for d in registry.devices}
    for lot in city.lots:
        device = devices[lot.device_id]
        expected = DeviceKind.PARKING if lot.kind is LotKind.ON_STREET else DeviceKind.COUNTER
        assert device.kind is expected and device.lot == lot.id
    street_spots = sum(len(lot.sensors) for lot in city.lots)
    assert len(registry.spots) == street_spots > 0
    assert {spot.sensor for spot in registry.spots if spot.lot == "lot-001"} >= {"s01", "s02"}
    lamps = [d for d in registry.devices if d.kind is DeviceKind.LIGHT]
    assert len(lamps) == 6 * 2
    assert all(d.segment for d in registry.devices if d.kind is DeviceKind.TRAFFIC)


def test_every_lot_character_appears_and_lots_surround_the_centre() -> None:
    city = generate_city(CitySpec(seed=5, lots=12))
    assert {lot.character for lot in city.lots} == set(Character)
    lats = [lot.lat for lot in city.lots]
    lons = [lot.lon for lot in city.lots]
    assert min(lats) < city.centre[0] < max(lats)
    assert min(lons) < city.centre[1] < max(lons)
    inbound = [s for s in city.segments if s.inbound]
    assert 0 < len(inbound) < len(city.segments)
