"""The city registry file (TOML): sites, lots, spots, road segments and devices.

Parsing and validation live here so every room reads one format; `store.registry` stores it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from streetsense.errors import RegistryError
from streetsense.hours import hours_problem
from streetsense.ids import describe_bad_id, is_valid_id


class LotKind(StrEnum):
    """Off-street car parks and on-street parking zones (Smart Data Models names them so)."""

    OFF_STREET = "off_street"
    ON_STREET = "on_street"


class SpaceCategory(StrEnum):
    """Who or what a parking space is for (ParkAPI v3, DATEX II and NGSI-LD all tell them)."""

    GENERAL = "general"
    DISABLED = "disabled"
    EV_CHARGING = "ev_charging"
    WOMEN = "women"
    FAMILY = "family"
    CAR_SHARING = "car_sharing"
    MOTORCYCLE = "motorcycle"
    BUS = "bus"  # buses and coaches
    TRUCK = "truck"


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
class LotFacts:
    """What apps show about a lot besides its counts; every field is optional."""

    operator: str = ""
    address: str = ""
    entrances: tuple[tuple[float, float], ...] = ()  # [lon, lat] pairs, GeoJSON order
    max_height_m: float | None = None
    park_and_ride: bool | None = None
    fee: str = ""  # a summary, e.g. "2 EUR/h, 20 EUR/day"
    tariff_url: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Lot:
    """A parking lot or on-street zone.

    `spaces` holds the capacity of each category other than general, in category order;
    general spaces are the capacity left over. `opening_hours` is OpenStreetMap syntax ('' is
    always open).
    """

    id: str
    site: str
    name: str
    kind: LotKind
    capacity: int
    lat: float
    lon: float
    area: str = ""
    opening_hours: str = ""
    spaces: tuple[tuple[SpaceCategory, int], ...] = ()
    facts: LotFacts = LotFacts()

    def category_capacity(self) -> dict[SpaceCategory, int]:
        """Return the capacity of every category the lot has, general first."""
        others = dict(self.spaces)
        general = self.capacity - sum(others.values())
        return {SpaceCategory.GENERAL: general, **others} if general > 0 else others


@dataclass(frozen=True, slots=True)
class Spot:
    """One parking space with its sensor: the device, and the sub-id when a gateway reports it."""

    id: str
    lot: str
    device: str
    sensor: str | None = None
    category: SpaceCategory = SpaceCategory.GENERAL


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
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read registry file {str(path)!r}: {exc}") from exc
    return parse_registry(data, SourceLines(str(path), text))


class SourceLines:
    """Where each `[[table]]` entry and its keys sit in the file, so errors name the line.

    TOML parsers drop positions; headers and `key =` lines are found again in the text. An
    entry written some other way (inline arrays of tables) is named without a line.
    """

    _HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z_]+)\s*\]\]")

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines = text.splitlines()
        self.headers: dict[str, list[int]] = {}
        for number, line in enumerate(self.lines):
            match = self._HEADER.match(line)
            if match:
                self.headers.setdefault(match[1], []).append(number)

    def line_of(self, table: str, index: int, key: str | None) -> int | None:
        """Return the 1-based line of an entry's key (or of its header), if found."""
        starts = self.headers.get(table, [])
        if index >= len(starts):
            return None
        start = starts[index]
        if key is None:
            return start + 1
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for number in range(start + 1, len(self.lines)):
            line = self.lines[number]
            if self._HEADER.match(line) or (line.lstrip().startswith("[") and "=" not in line):
                break
            if pattern.match(line):
                return number + 1
        return start + 1


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
    build: Callable[[_Entry], T],
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
        entry = _Entry(table, index, item, source)
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


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL = re.compile(r"https?://[^\s\"<>]{1,490}\Z")
_PHONE = re.compile(r"\+?[0-9][0-9 ()/.-]{2,29}\Z")
_EMAIL = re.compile(r"[^@\s\"<>]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,}\Z")


class _Entry:
    """Typed access to one table entry, with errors that name it (and its line in the file)."""

    def __init__(
        self, table: str, index: int, item: Mapping[str, Any], source: SourceLines | None = None
    ) -> None:
        self.table, self.index, self.item, self.source = table, index, item, source
        self.used: set[str] = set()
        self.id = self.ident("id")

    def at(self, key: str | None) -> str:
        """Return "FILE line N: " for this entry (and key), or '' without a source."""
        if self.source is None:
            return ""
        line = self.source.line_of(self.table, self.index, key)
        return f"{self.source.name} line {line}: " if line else ""

    def where(self, key: str) -> str:
        label = getattr(self, "id", None) or f"#{self.index + 1}"
        return f"{self.at(key)}{self.table} '{label}', field '{key}'"

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

    def text(self, key: str, default: str | None = None, longest: int = 200) -> str:
        value = self.raw(key, ... if default is None else default)
        if not isinstance(value, str) or len(value) > longest:
            raise RegistryError(f"{self.where(key)} must be text of at most {longest} characters")
        if _CONTROL.search(value):
            # Feeds publish names in XML, CSV and JSON; control characters break XML 1.0.
            raise RegistryError(f"{self.where(key)} must not contain control characters")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], example: str) -> str:
        value = self.text(key, "", longest=500)
        if value and not pattern.match(value):
            raise RegistryError(f"{self.where(key)} = {value!r} is not valid; write e.g. {example}")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.raw(key, None)
        if value is not None and not isinstance(value, bool):
            raise RegistryError(f"{self.where(key)} must be true or false")
        return value

    def points(self, key: str, low: int, high: int) -> tuple[tuple[float, float], ...]:
        raw = self.raw(key, ... if low > 0 else [])
        if not isinstance(raw, list) or not low <= len(raw) <= high:
            raise RegistryError(f"{self.where(key)} must list {low} to {high} [lon, lat] points")
        points: list[tuple[float, float]] = []
        for point in raw:
            if (
                not isinstance(point, list)
                or len(point) != 2
                or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
                or not (-180 <= point[0] <= 180 and -90 <= point[1] <= 90)
            ):
                raise RegistryError(
                    f"{self.where(key)}: {point!r} is not a [lon, lat] point (GeoJSON order)"
                )
            points.append((float(point[0]), float(point[1])))
        return tuple(points)

    def number(self, key: str, low: float, high: float, default: float | None = None) -> float:
        value = self.raw(key, ... if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"{self.where(key)} must be a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise RegistryError(f"{self.where(key)} = {value} must be within [{low}, {high}]")
        return float(value)

    def choice(self, key: str, kind: type[StrEnum], default: Any = ...) -> Any:
        value = self.raw(key, default)
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


def _whole(e: _Entry, key: str, low: int, high: int, default: float | None = None) -> int:
    value = e.number(key, low, high, default)
    if value != int(value):
        raise RegistryError(f"{e.where(key)} must be a whole number")
    return int(value)


def _spaces(e: _Entry, capacity: int) -> tuple[tuple[SpaceCategory, int], ...]:
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


def _spot(e: _Entry) -> Spot:
    return Spot(
        id=e.id,
        lot=e.ident("lot"),
        device=e.ident("device"),
        sensor=e.ident("sensor", optional=True),
        category=e.choice("category", SpaceCategory, SpaceCategory.GENERAL.value),
    )


def _segment(e: _Entry) -> Segment:
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
