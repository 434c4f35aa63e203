"""The city registry's model: sites, lots, spots, road segments and devices, as validated."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum


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
