"""The city registry file (TOML): sites, lots, spots, road segments and devices.

Parsing and validation live here so every room reads one format; `store.registry` stores it.
The model is in `registry_model` (re-exported here), typed entry access in `registry_entries`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from streetsense.errors import RegistryError
from streetsense.hours import hours_problem
from streetsense.registry_entries import Entry, SourceLines
from streetsense.registry_model import (
    Device,
    DeviceKind,
    Lot,
    LotFacts,
    LotKind,
    Registry,
    Segment,
    Site,
    SpaceCategory,
    Spot,
)

__all__ = [
    "Device",
    "DeviceKind",
    "Lot",
    "LotFacts",
    "LotKind",
    "Registry",
    "Segment",
    "Site",
    "SourceLines",
    "SpaceCategory",
    "Spot",
    "load_registry",
    "parse_registry",
]


_TABLES: Final = ("site", "lot", "spot", "segment", "device")
_URL = re.compile(r"https?://[^\s\"<>]{1,490}\Z")
_PHONE = re.compile(r"\+?[0-9][0-9 ()/.-]{2,29}\Z")
_EMAIL = re.compile(r"[^@\s\"<>]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}\Z")
T = TypeVar("T")


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry TOML file.

    Raises:
        RegistryError: the file is unreadable or an entry is invalid; names the entry and field.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read registry file {str(path)!r}: {exc}") from exc
    return parse_registry(data, SourceLines(str(path), text))


def parse_registry(data: Mapping[str, Any], source: SourceLines | None = None) -> Registry:
    """Validate a registry given as a mapping of tables (`[[lot]]`, `[[device]]`, ...).

    Args:
        data: the parsed tables.
        source: the file's text, so errors name the file and line (None: a mapping from code).
    """
    unknown = set(data) - set(_TABLES)
    if unknown:
        raise RegistryError(f"unknown tables {sorted(unknown)}; a registry has {list(_TABLES)}")
    registry = Registry(
        sites=_entries(data, "site", _site, source),
        lots=_entries(data, "lot", _lot, source),
        spots=_entries(data, "spot", _spot, source),
        segments=_entries(data, "segment", _segment, source),
        devices=_entries(data, "device", _device, source),
    )
    _check_references(registry, _Locator(data, source))
    return registry


def _entries(
    data: Mapping[str, Any],
    table: str,
    build: Callable[[Entry], T],
    source: SourceLines | None,
) -> tuple[T, ...]:
    raw = data.get(table, [])
    if not isinstance(raw, list):
        raise RegistryError(f"'{table}' must be an array of tables ([[{table}]])")
    built: list[T] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RegistryError(f"{table} #{index + 1} must be a table")
        entry = Entry(table, index, item, source)
        built.append(build(entry))
        entry.finish()
        if entry.id in seen:
            raise RegistryError(f"{entry.at(None)}{table} '{entry.id}' is defined twice")
        seen.add(entry.id)
    return tuple(built)


class _Locator:
    """Names the file line of an entry given its id (for checks across entries)."""

    def __init__(self, data: Mapping[str, Any], source: SourceLines | None) -> None:
        self.source = source
        self.index = {
            (table, item.get("id")): index
            for table in _TABLES
            for index, item in enumerate(data.get(table, []))
            if isinstance(item, dict)
        }

    def at(self, table: str, entry_id: str, key: str | None = None) -> str:
        """Return "FILE line N: " for an entry (and key), or '' without a source."""
        index = self.index.get((table, entry_id))
        if self.source is None or index is None:
            return ""
        line = self.source.line_of(table, index, key)
        return f"{self.source.name} line {line}: " if line else ""


def _site(e: Entry) -> Site:
    return Site(id=e.id, name=e.text("name", e.id))


def _lot(e: Entry) -> Lot:
    capacity = _whole(e, "capacity", 1, 100_000)
    hours = e.text("opening_hours", "", longest=10_000).strip()
    problem = hours_problem(hours) if hours else None
    if problem:
        raise RegistryError(f"{e.where('opening_hours')} = {hours[:80]!r} {problem}")
    return Lot(
        id=e.id,
        site=e.ident("site"),
        name=e.text("name", e.id),
        kind=e.choice("kind", LotKind),
        capacity=capacity,
        lat=e.number("lat", -90, 90),
        lon=e.number("lon", -180, 180),
        area=e.text("area", ""),
        opening_hours=hours,
        spaces=_spaces(e, capacity),
        facts=LotFacts(
            operator=e.text("operator", ""),
            address=e.text("address", ""),
            entrances=e.points("entrances", 0, 20),
            max_height_m=None
            if e.raw("max_height_m", None) is None
            else e.number("max_height_m", 1.0, 10.0),
            park_and_ride=e.flag("park_and_ride"),
            fee=e.text("fee", ""),
            tariff_url=e.matching("tariff_url", _URL, "'https://city.example/parking/fees'"),
            phone=e.matching("phone", _PHONE, "'+45 89 40 20 00'"),
            email=e.matching("email", _EMAIL, "'parking@city.example'"),
        ),
    )


def _whole(e: Entry, key: str, low: int, high: int, default: float | None = None) -> int:
    value = e.number(key, low, high, default)
    if value != int(value):
        raise RegistryError(f"{e.where(key)} must be a whole number")
    return int(value)


def _spaces(e: Entry, capacity: int) -> tuple[tuple[SpaceCategory, int], ...]:
    """Read `spaces = { disabled = 4, ev_charging = 10 }`: capacity per category."""
    raw = e.raw("spaces", {})
    allowed = [c.value for c in SpaceCategory]
    if not isinstance(raw, dict):
        raise RegistryError(
            f"{e.where('spaces')} must be a table of category = count, e.g. "
            "spaces = { disabled = 4, ev_charging = 10 }"
        )
    counts: dict[SpaceCategory, int] = {}
    for name, count in raw.items():
        if name not in allowed:
            raise RegistryError(
                f"{e.where('spaces')}: {name!r} is not a space category; use one of {allowed}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= capacity:
            raise RegistryError(
                f"{e.where('spaces')}: {name} = {count!r} must be a whole number from 0 to the "
                f"lot's capacity ({capacity})"
            )
        counts[SpaceCategory(name)] = count
    general = counts.pop(SpaceCategory.GENERAL, None)
    dedicated = sum(counts.values())
    if dedicated > capacity:
        raise RegistryError(
            f"{e.where('spaces')}: categories add up to {dedicated}, more than the capacity "
            f"({capacity}); general spaces are what is left, so lower a category or raise capacity"
        )
    if general is not None and general + dedicated != capacity:
        raise RegistryError(
            f"{e.where('spaces')}: general = {general} plus the other categories ({dedicated}) "
            f"must equal the capacity ({capacity}); drop general to let it be the rest"
        )
    return tuple((c, counts[c]) for c in SpaceCategory if c in counts and counts[c] > 0)


def _spot(e: Entry) -> Spot:
    return Spot(
        id=e.id,
        lot=e.ident("lot"),
        device=e.ident("device"),
        sensor=e.ident("sensor", optional=True),
        category=e.choice("category", SpaceCategory, SpaceCategory.GENERAL.value),
    )


def _segment(e: Entry) -> Segment:
    return Segment(
        id=e.id,
        site=e.ident("site"),
        name=e.text("name", e.id),
        direction=e.text("direction", ""),
        coordinates=e.points("coordinates", 2, 1000),
        speed_limit_kmh=e.number("speed_limit_kmh", 5, 200),
        capacity_vph=e.number("capacity_vph", 1, 100_000, 1800.0),
        area=e.text("area", ""),
    )


def _device(e: Entry) -> Device:
    lat = e.raw("lat", None)
    return Device(
        id=e.id,
        site=e.ident("site"),
        kind=e.choice("kind", DeviceKind),
        lot=e.ident("lot", optional=True),
        segment=e.ident("segment", optional=True),
        lat=None if lat is None else e.number("lat", -90, 90),
        lon=None if e.raw("lon", None) is None else e.number("lon", -180, 180),
    )


def _check_references(registry: Registry, locate: _Locator) -> None:
    sites = {s.id for s in registry.sites}
    lots = {lot.id: lot for lot in registry.lots}
    segments = {s.id for s in registry.segments}
    devices = {d.id: d for d in registry.devices}
    owners: tuple[Lot | Segment | Device, ...] = (
        *registry.lots,
        *registry.segments,
        *registry.devices,
    )
    for owner in owners:
        if owner.site not in sites:
            table = {Lot: "lot", Segment: "segment", Device: "device"}[type(owner)]
            raise RegistryError(
                f"{locate.at(table, owner.id, 'site')}'{owner.id}' names site '{owner.site}', "
                "which is not defined"
            )
    for device in registry.devices:
        needs_lot = device.kind in (DeviceKind.PARKING, DeviceKind.COUNTER)
        if needs_lot and device.lot not in lots:
            raise RegistryError(
                f"{locate.at('device', device.id, 'lot')}device '{device.id}' ({device.kind}) "
                "must name a defined lot"
            )
        if device.kind is DeviceKind.TRAFFIC and device.segment not in segments:
            raise RegistryError(
                f"{locate.at('device', device.id, 'segment')}device '{device.id}' (traffic) "
                "must name a defined segment"
            )
    _check_spots(registry, lots, devices, locate)


def _check_spots(
    registry: Registry, lots: dict[str, Lot], devices: dict[str, Device], locate: _Locator
) -> None:
    sensors: set[tuple[str, str | None]] = set()
    spots_per_lot: dict[str, int] = {}
    per_category: dict[tuple[str, SpaceCategory], int] = {}
    for spot in registry.spots:
        at = locate.at("spot", spot.id)
        if spot.lot not in lots:
            raise RegistryError(
                f"{at}spot '{spot.id}' names lot '{spot.lot}', which is not defined"
            )
        if spot.device not in devices or devices[spot.device].kind is not DeviceKind.PARKING:
            raise RegistryError(f"{at}spot '{spot.id}' must name a defined parking device")
        if (spot.device, spot.sensor) in sensors:
            raise RegistryError(
                f"{at}spot '{spot.id}': sensor {spot.sensor!r} of '{spot.device}' is used twice"
            )
        sensors.add((spot.device, spot.sensor))
        spots_per_lot[spot.lot] = spots_per_lot.get(spot.lot, 0) + 1
        key = (spot.lot, spot.category)
        per_category[key] = per_category.get(key, 0) + 1
    for lot_id, count in spots_per_lot.items():
        if count > lots[lot_id].capacity:
            raise RegistryError(
                f"{locate.at('lot', lot_id, 'capacity')}lot '{lot_id}' has {count} spots but "
                f"capacity {lots[lot_id].capacity}"
            )
    for (lot_id, category), count in per_category.items():
        declared = lots[lot_id].category_capacity().get(category, 0)
        if count > declared:
            raise RegistryError(
                f"{locate.at('lot', lot_id, 'spaces')}lot '{lot_id}' has {count} {category} "
                f"spot(s) but declares {declared} {category} space(s); set "
                f"spaces = {{ {category} = {count} }} (or more) on the lot, or fix the spots' "
                "category"
            )
