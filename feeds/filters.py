"""Query filters shared by lots and segments: bounding box, distance from a point."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from feeds.http import Problem

EARTH_RADIUS_M: Final = 6_371_008.8
MAX_RADIUS_M: Final = 100_000.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """min_lon, min_lat, max_lon, max_lat (GeoJSON / OGC API order)."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lon: float, lat: float) -> bool:
        """Tell whether a point lies inside (edges included)."""
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat


@dataclass(frozen=True, slots=True)
class Near:
    """A circle: lat, lon and radius in metres."""

    lat: float
    lon: float
    radius_m: float

    def distance_m(self, points: Iterable[tuple[float, float]]) -> float:
        """Return the distance to the nearest of some [lon, lat] points."""
        return min(haversine_m(self.lat, self.lon, lat, lon) for lon, lat in points)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _numbers(text: str, count: int, name: str, example: str) -> list[float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise Problem(
            400,
            f"Malformed {name}",
            f"{name}={text[:80]!r} must be {count} comma-separated numbers, e.g. {name}={example}",
            "bad-parameter",
            parameter=name,
        )
    return values


def parse_bbox(text: str | None) -> BoundingBox | None:
    """Parse `min_lon,min_lat,max_lon,max_lat`, refusing swapped or out-of-range corners."""
    if text is None:
        return None
    box = BoundingBox(*_numbers(text, 4, "bbox", "10.18,56.14,10.23,56.17"))
    problems = []
    if not (-180 <= box.min_lon <= 180 and -180 <= box.max_lon <= 180):
        problems.append("longitudes must be within [-180, 180]")
    if not (-90 <= box.min_lat <= 90 and -90 <= box.max_lat <= 90):
        problems.append("latitudes must be within [-90, 90]")
    if box.min_lon > box.max_lon or box.min_lat > box.max_lat:
        problems.append("the first corner must be south-west of the second (min before max)")
    if problems:
        raise Problem(
            400,
            "Bad bounding box",
            f"bbox={text[:80]!r}: {'; '.join(problems)}; order is min_lon,min_lat,max_lon,max_lat",
            "bad-parameter",
            parameter="bbox",
        )
    return box


def parse_near(text: str | None, radius_m: float) -> Near | None:
    """Parse `lat,lon` with a radius in metres."""
    if text is None:
        return None
    lat, lon = _numbers(text, 2, "near", "56.157,10.211")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise Problem(
            400,
            "Bad point",
            f"near={text[:80]!r} must be lat,lon with lat in [-90, 90] and lon in [-180, 180]",
            "bad-parameter",
            parameter="near",
        )
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise Problem(
            400,
            "Bad radius",
            f"radius_m={radius_m} must be above 0 and at most {MAX_RADIUS_M:.0f}",
            "bad-parameter",
            parameter="radius_m",
        )
    return Near(lat, lon, radius_m)


def select(
    items: Iterable[T],
    points: Callable[[T], Sequence[tuple[float, float]]],
    box: BoundingBox | None,
    near: Near | None,
    keep: Callable[[T], bool],
) -> list[tuple[T, float | None]]:
    """Keep items passing `keep` with a point in the box and within reach of `near`.

    Returns:
        (item, distance in metres or None) pairs; sorted by distance when `near` is given.
    """
    picked: list[tuple[T, float | None]] = []
    for item in items:
        if not keep(item):
            continue
        where = points(item)
        if box is not None and not any(box.contains(lon, lat) for lon, lat in where):
            continue
        distance = None
        if near is not None:
            distance = near.distance_m(where)
            if distance > near.radius_m:
                continue
        picked.append((item, distance))
    if near is not None:
        picked.sort(key=lambda pair: pair[1] or 0.0)
    return picked
