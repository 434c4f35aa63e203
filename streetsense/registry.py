"""The city registry file (TOML): sites, lots, spots, road segments and devices.

Parsing and validation live here so every room reads one format; `store.registry` stores it.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from streetsense.errors import RegistryError
from streetsense.ids import describe_bad_id, is_valid_id


class LotKind(StrEnum):
    """Off-street car parks and on-street parking zones (Smart Data Models names them so)."""

    OFF_STREET = "off_street"
    ON_STREET = "on_street"


class DeviceKind(StrEnum):
    """What a device measures; decides which of lot, segment it must name."""

    PARKING = "parking"  # spot sensors, or a gateway for many spots of one lot
    COUNTER = "counter"  # a car park's entry/exit counter reporting occupied_spaces
    TRAFFIC = "traffic"  # a vehicle counter on a road segment (may sit on a streetlight)
    LIGHT = "light"  # a streetlight controller


@dataclass(frozen=True, slots=True)
class Site:
    """A deployment area (a city or a district); first level of every topic."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Lot:
    """A parking lot or on-street zone."""

    id: str
    site: str
    name: str
    kind: LotKind
    capacity: int
    lat: float
    lon: float
    area: str = ""


@dataclass(frozen=True, slots=True)
class Spot:
    """One parking space with its sensor: the device, and the sub-id when a gateway reports it."""

    id: str
    lot: str
    device: str
    sensor: str | None = None


@dataclass(frozen=True, slots=True)
class Segment:
    """A directed road segment; `coordinates` are [lon, lat] pairs, GeoJSON order."""

    id: str
    site: str
    name: str
    direction: str
    coordinates: tuple[tuple[float, float], ...]
    speed_limit_kmh: float
    capacity_vph: float = 1800.0
    area: str = ""


@dataclass(frozen=True, slots=True)
class Device:
    """A device that publishes; `lot` or `segment` ties its readings to what they measure."""

    id: str
    site: str
    kind: DeviceKind
    lot: str | None = None
    segment: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Registry:
    """A whole, validated registry; `version` is a digest of its content."""

    sites: tuple[Site, ...]
    lots: tuple[Lot, ...]
    spots: tuple[Spot, ...]
    segments: tuple[Segment, ...]
    devices: tuple[Device, ...]

    @property
    def version(self) -> str:
        """Return a digest of the content: the same registry always has the same version."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_TABLES: Final = ("site", "lot", "spot", "segment", "device")
T = TypeVar("T")


def load_registry(path: str | Path) -> Registry:
    """Read and validate a registry TOML file.

    Raises:
        RegistryError: the file is unreadable or an entry is invalid; names the entry and field.
    """
    try:
        with Path(path).open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read registry file {str(path)!r}: {exc}") from exc
    return parse_registry(data)


def parse_registry(data: Mapping[str, Any]) -> Registry:
    """Validate a registry given as a mapping of tables (`[[lot]]`, `[[device]]`, ...)."""
    unknown = set(data) - set(_TABLES)
    if unknown:
        raise RegistryError(f"unknown tables {sorted(unknown)}; a registry has {list(_TABLES)}")
    registry = Registry(
        sites=_entries(data, "site", _site),
        lots=_entries(data, "lot", _lot),
        spots=_entries(data, "spot", _spot),
        segments=_entries(data, "segment", _segment),
        devices=_entries(data, "device", _device),
    )
    _check_references(registry)
    return registry


def _entries(data: Mapping[str, Any], table: str, build: Callable[[_Entry], T]) -> tuple[T, ...]:
    raw = data.get(table, [])
    if not isinstance(raw, list):
        raise RegistryError(f"'{table}' must be an array of tables ([[{table}]])")
    built: list[T] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise RegistryError(f"{table} #{index + 1} must be a table")
        entry = _Entry(table, index, item)
        built.append(build(entry))
        entry.finish()
        if entry.id in seen:
            raise RegistryError(f"{table} '{entry.id}' is defined twice")
        seen.add(entry.id)
    return tuple(built)


class _Entry:
    """Typed access to one table entry, with errors that name it."""

    def __init__(self, table: str, index: int, item: Mapping[str, Any]) -> None:
        self.table, self.index, self.item = table, index, item
        self.used: set[str] = set()
        self.id = self.ident("id")

    def where(self, key: str) -> str:
        label = getattr(self, "id", None) or f"#{self.index + 1}"
        return f"{self.table} '{label}', field '{key}'"

    def raw(self, key: str, default: Any = ...) -> Any:
        self.used.add(key)
        if key in self.item:
            return self.item[key]
        if default is ...:
            raise RegistryError(f"{self.where(key)} is required")
        return default

    def ident(self, key: str, *, optional: bool = False) -> Any:
        value = self.raw(key, None if optional else ...)
        if value is None:
            return None
        if not isinstance(value, str) or not is_valid_id(value):
            raise RegistryError(f"{self.where(key)}: {describe_bad_id('id', str(value))}")
        return value

    def text(self, key: str, default: str | None = None) -> str:
        value = self.raw(key, ... if default is None else default)
        if not isinstance(value, str) or len(value) > 200:
            raise RegistryError(f"{self.where(key)} must be text of at most 200 characters")
        return value

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float:
        value = self.raw(key, ... if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"{self.where(key)} must be a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise RegistryError(f"{self.where(key)} = {value} must be within [{low}, {high}]")
        return float(value)

    def choice(self, key: str, kind: type[StrEnum]) -> Any:
        value = self.raw(key)
        try:
            return kind(value)
        except ValueError:
            allowed = [k.value for k in kind]
            raise RegistryError(f"{self.where(key)} = {value!r} must be one of {allowed}") from None

    def finish(self) -> None:
        extra = set(self.item) - self.used
        if extra:
            raise RegistryError(f"{self.where(sorted(extra)[0])} is not a known field")


def _site(e: _Entry) -> Site:
    return Site(id=e.id, name=e.text("name", e.id))


def _lot(e: _Entry) -> Lot:
    capacity = e.number("capacity", 1, 100_000)
    if capacity != int(capacity):
        raise RegistryError(f"{e.where('capacity')} must be a whole number")
    return Lot(
        id=e.id,
        site=e.ident("site"),
        name=e.text("name", e.id),
        kind=e.choice("kind", LotKind),
        capacity=int(capacity),
        lat=e.number("lat", -90, 90),
        lon=e.number("lon", -180, 180),
        area=e.text("area", ""),
    )


def _spot(e: _Entry) -> Spot:
    return Spot(
        id=e.id,
        lot=e.ident("lot"),
        device=e.ident("device"),
        sensor=e.ident("sensor", optional=True),
    )


def _segment(e: _Entry) -> Segment:
    raw = e.raw("coordinates")
    if not isinstance(raw, list) or not 2 <= len(raw) <= 1000:
        raise RegistryError(f"{e.where('coordinates')} must list 2 to 1000 [lon, lat] points")
    points: list[tuple[float, float]] = []
    for point in raw:
        if (
            not isinstance(point, list)
            or len(point) != 2
            or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
            or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90)
        ):
            raise RegistryError(f"{e.where('coordinates')}: {point!r} is not a [lon, lat] point")
        points.append((float(point[0]), float(point[1])))
    return Segment(
        id=e.id,
        site=e.ident("site"),
        name=e.text("name", e.id),
        direction=e.text("direction", ""),
        coordinates=tuple(points),
        speed_limit_kmh=e.number("speed_limit_kmh", 5, 200),
        capacity_vph=e.number("capacity_vph", 1, 100_000, 1800.0),
        area=e.text("area", ""),
    )


def _device(e: _Entry) -> Device:
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


def _check_references(registry: Registry) -> None:
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
            raise RegistryError(f"'{owner.id}' names site '{owner.site}', which is not defined")
    for device in registry.devices:
        needs_lot = device.kind in (DeviceKind.PARKING, DeviceKind.COUNTER)
        if needs_lot and device.lot not in lots:
            raise RegistryError(f"device '{device.id}' ({device.kind}) must name a defined lot")
        if device.kind is DeviceKind.TRAFFIC and device.segment not in segments:
            raise RegistryError(f"device '{device.id}' (traffic) must name a defined segment")
    sensors: set[tuple[str, str | None]] = set()
    spots_per_lot: dict[str, int] = {}
    for spot in registry.spots:
        if spot.lot not in lots:
            raise RegistryError(f"spot '{spot.id}' names lot '{spot.lot}', which is not defined")
        if spot.device not in devices or devices[spot.device].kind is not DeviceKind.PARKING:
            raise RegistryError(f"spot '{spot.id}' must name a defined parking device")
        if (spot.device, spot.sensor) in sensors:
            raise RegistryError(
                f"spot '{spot.id}': sensor {spot.sensor!r} of '{spot.device}' is used twice"
            )
        sensors.add((spot.device, spot.sensor))
        spots_per_lot[spot.lot] = spots_per_lot.get(spot.lot, 0) + 1
    for lot_id, count in spots_per_lot.items():
        if count > lots[lot_id].capacity:
            raise RegistryError(
                f"lot '{lot_id}' has {count} spots but capacity {lots[lot_id].capacity}"
            )
