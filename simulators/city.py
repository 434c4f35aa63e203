"""A synthetic city from a seed: lots with spot sensors or counters, road segments with counters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from streetsense.registry import DeviceKind, LotKind

# Metres per degree of latitude; longitude degrees shrink with cos(latitude).
_M_PER_DEG = 111_320.0


class Character(StrEnum):
    """What drives a lot's demand over the day and week."""

    OFFICE = "office"
    RETAIL = "retail"
    RESIDENTIAL = "residential"
    VENUE = "venue"


# Districts: name, distance from the centre (m), bearing (degrees), the character of its lots.
_AREAS: tuple[tuple[str, float, float, Character], ...] = (
    ("old-town", 300.0, 20.0, Character.RETAIL),
    ("business", 900.0, 110.0, Character.OFFICE),
    ("harbour", 1_300.0, 200.0, Character.OFFICE),
    ("riverside", 1_800.0, 290.0, Character.RESIDENTIAL),
    ("north", 2_500.0, 350.0, Character.RESIDENTIAL),
    ("stadium", 2_200.0, 60.0, Character.VENUE),
)
# Mean parking stay in hours per character; short stays mean many spot events.
MEAN_STAY_H: dict[Character, float] = {
    Character.OFFICE: 5.0,
    Character.RETAIL: 1.2,
    Character.RESIDENTIAL: 9.0,
    Character.VENUE: 3.0,
}


@dataclass(frozen=True, slots=True)
class SimLot:
    """A lot of the synthetic city, with what the registry does not hold (character, scale)."""

    id: str
    name: str
    kind: LotKind
    character: Character
    area: str
    capacity: int
    lat: float
    lon: float
    demand_scale: float
    device_id: str
    sensors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SimSegment:
    """A directed road segment with its counter, lanes and lamps."""

    id: str
    name: str
    area: str
    inbound: bool
    lanes: int
    speed_limit_kmh: float
    capacity_vph: float
    coordinates: tuple[tuple[float, float], ...]
    demand_scale: float
    venue_distance_m: float
    counter_id: str
    lamp_ids: tuple[str, ...]

    @property
    def lane_ids(self) -> tuple[str, ...]:
        """The sub ids the counter reports lanes under."""
        return tuple(f"l{n}" for n in range(1, self.lanes + 1))


@dataclass(frozen=True, slots=True)
class City:
    """The whole synthetic city; `registry_toml` writes what `streetsense registry load` reads."""

    seed: int
    site: str
    name: str
    centre: tuple[float, float]  # (lat, lon)
    venue: tuple[float, float]
    lots: tuple[SimLot, ...]
    segments: tuple[SimSegment, ...]

    def lot(self, lot_id: str) -> SimLot:
        """Return the lot with this id."""
        return next(lot for lot in self.lots if lot.id == lot_id)

    def devices(self) -> list[tuple[str, DeviceKind]]:
        """Return every device id with its kind, in a stable order."""
        found: list[tuple[str, DeviceKind]] = []
        for lot in self.lots:
            kind = DeviceKind.PARKING if lot.kind is LotKind.ON_STREET else DeviceKind.COUNTER
            found.append((lot.device_id, kind))
        for segment in self.segments:
            found.append((segment.counter_id, DeviceKind.TRAFFIC))
            found.extend((lamp, DeviceKind.LIGHT) for lamp in segment.lamp_ids)
        return found


@dataclass(frozen=True, slots=True)
class CitySpec:
    """What to generate: sizes and the centre; the seed decides the rest."""

    seed: int = 1
    lots: int = 24
    segments: int = 16
    site: str = "city"
    name: str = "Streetsense City"
    centre: tuple[float, float] = (56.1572, 10.2107)
    on_street_share: float = 0.5
    lamps_per_segment: int = 2


def offset(
    origin: tuple[float, float], distance_m: float, bearing_deg: float
) -> tuple[float, float]:
    """Return the (lat, lon) `distance_m` from `origin` along `bearing_deg` (flat earth)."""
    lat, lon = origin
    north = distance_m * math.cos(math.radians(bearing_deg))
    east = distance_m * math.sin(math.radians(bearing_deg))
    new_lat = lat + north / _M_PER_DEG
    new_lon = lon + east / (_M_PER_DEG * math.cos(math.radians(lat)))
    return round(new_lat, 6), round(new_lon, 6)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the flat-earth distance in metres between two (lat, lon) points."""
    north = (a[0] - b[0]) * _M_PER_DEG
    east = (a[1] - b[1]) * _M_PER_DEG * math.cos(math.radians(a[0]))
    return math.hypot(north, east)


def generate_city(spec: CitySpec) -> City:
    """Generate a city; the same spec always gives the same city."""
    if spec.lots < 1 or spec.segments < 1:
        raise ValueError("a city needs at least one lot and one segment")
    rng = np.random.default_rng(spec.seed)
    venue_area = next(a for a in _AREAS if a[3] is Character.VENUE)
    venue = offset(spec.centre, venue_area[1], venue_area[2])
    lots = tuple(_lot(rng, spec, index) for index in range(spec.lots))
    segments = tuple(_segment(rng, spec, index, venue) for index in range(spec.segments))
    return City(
        seed=spec.seed,
        site=spec.site,
        name=spec.name,
        centre=spec.centre,
        venue=venue,
        lots=lots,
        segments=segments,
    )


def _lot(rng: np.random.Generator, spec: CitySpec, index: int) -> SimLot:
    # Every area gets lots before any gets a second, so even small cities have every character.
    area, area_distance, area_bearing, character = _AREAS[index % len(_AREAS)]
    on_street = rng.random() < spec.on_street_share and character is not Character.VENUE
    if index < len(_AREAS) and character is Character.RETAIL:
        on_street = True  # the old town always has kerbside sensors
    centre = offset(spec.centre, area_distance, area_bearing)
    lat, lon = offset(centre, float(rng.uniform(40, 350)), float(rng.uniform(0, 360)))
    lot_id = f"lot-{index + 1:03d}"
    if on_street:
        capacity = int(rng.integers(8, 31))
        sensors = tuple(f"s{n:02d}" for n in range(1, capacity + 1))
        kind, device_id, label = LotKind.ON_STREET, f"{lot_id}-gw", "street"
    else:
        capacity = int(rng.integers(12, 61)) * 10
        sensors = ()
        kind, device_id, label = LotKind.OFF_STREET, f"{lot_id}-counter", "garage"
    return SimLot(
        id=lot_id,
        name=f"{area.replace('-', ' ').title()} {label} {index + 1}",
        kind=kind,
        character=character,
        area=area,
        capacity=capacity,
        lat=lat,
        lon=lon,
        demand_scale=float(rng.uniform(0.8, 1.05)),
        device_id=device_id,
        sensors=sensors,
    )


def _segment(
    rng: np.random.Generator, spec: CitySpec, index: int, venue: tuple[float, float]
) -> SimSegment:
    # Segments come in pairs: the two carriageways of one radial road share its geometry.
    road = index // 2
    inbound = index % 2 == 0
    shape = np.random.default_rng([spec.seed, road, 3])
    bearing = (road * 137.5 + float(shape.uniform(-10, 10))) % 360  # golden angle spreads roads
    inner_m = float(shape.uniform(400, 1_500))
    outer_m = inner_m + float(shape.uniform(400, 900))
    lanes = int(shape.choice([1, 2, 2, 3]))
    limit = float(shape.choice([30.0, 50.0, 50.0, 70.0]))
    # Right-hand traffic: each carriageway sits 10 m to its own right of the road's axis.
    side = bearing - 90.0 if inbound else bearing + 90.0
    inner = offset(offset(spec.centre, inner_m, bearing), 10.0, side)
    outer = offset(offset(spec.centre, outer_m, bearing), 10.0, side)
    start, end = (outer, inner) if inbound else (inner, outer)
    # Per-lane capacity grows with the speed limit, as on real arterials.
    per_lane = 1_500.0 + 6.0 * limit
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    segment_id = f"seg-{index + 1:03d}"
    direction = "inbound" if inbound else "outbound"
    return SimSegment(
        id=segment_id,
        name=f"Radial {road + 1} {direction}",
        area=_nearest_area(spec.centre, middle),
        inbound=inbound,
        lanes=lanes,
        speed_limit_kmh=limit,
        capacity_vph=round(per_lane * lanes, 1),
        coordinates=((start[1], start[0]), (end[1], end[0])),
        demand_scale=float(rng.uniform(0.65, 0.95)),
        venue_distance_m=distance_m(middle, venue),
        counter_id=f"{segment_id}-counter",
        lamp_ids=tuple(f"{segment_id}-lamp{n}" for n in range(1, spec.lamps_per_segment + 1)),
    )


def _nearest_area(centre: tuple[float, float], point: tuple[float, float]) -> str:
    return min(_AREAS, key=lambda a: distance_m(offset(centre, a[1], a[2]), point))[0]


def agent_devices(city: City, lots: int, segments: int) -> list[str]:
    """Return the devices real agents run for: the first `lots` lots' gateways or counters and
    the first `segments` segments' traffic counters (`simulate run` leaves the same ones out)."""
    chosen = [lot.device_id for lot in city.lots[: max(0, lots)]]
    return chosen + [segment.counter_id for segment in city.segments[: max(0, segments)]]
