"""What the city map stands on: the configured tile server, and the base we draw ourselves.

A base map comes from a tile server the planners' browsers must reach (Carto's public one by
default). Offline, or behind a firewall, it stays blank, so the map always draws what the
registry knows underneath the lots and roads: each area's outline and name. The dashboard
checks once in a while whether the style answers from its own host and says which setting to
change when it does not.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Final

import pandas as pd
from pydeck.bindings.map_styles import get_from_map_identifier

PROBE_TIMEOUT_S: Final = 2.0
# Room around the places of an area, in degrees (about 150 m), so the outline encloses them.
PADDING_DEG: Final = 0.0015
Point = tuple[float, float]  # (lon, lat)


def style_url(setting: str) -> str | None:
    """Return the MapLibre style URL a `dashboard.map_style` setting names, or None for none."""
    name = setting.strip()
    return get_from_map_identifier(name, "carto") if name else None


def style_answers(url: str) -> bool:
    """Tell whether a map style URL answers from this host within PROBE_TIMEOUT_S."""
    if not url.startswith(("https://", "http://")):
        return False
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_S) as response:  # noqa: S310
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def area_outlines(lots: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Return one row per area: its name, outline (a closed [lon, lat] ring) and label point.

    The outline is the convex hull of the area's lots and road points, padded so that every
    place lies inside it. Places without an area are left out.
    """
    places: dict[str, list[Point]] = {}
    for area, lon, lat in lots[["area", "lon", "lat"]].itertuples(index=False):
        if area:
            places.setdefault(area, []).append((float(lon), float(lat)))
    for area, path in segments[["area", "path"]].itertuples(index=False):
        if area:
            places.setdefault(area, []).extend((float(p[0]), float(p[1])) for p in path)
    rows = []
    for area, points in sorted(places.items()):
        ring = convex_hull(_padded(points))
        rows.append({
            "area": area,
            "outline": [list(p) for p in [*ring, ring[0]]],
            "lon": sum(p[0] for p in points) / len(points),
            "lat": max(p[1] for p in points) + PADDING_DEG,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["area", "outline", "lon", "lat"])


def _padded(points: Iterable[Point]) -> list[Point]:
    return [
        (lon + dx, lat + dy)
        for lon, lat in points
        for dx in (-PADDING_DEG, PADDING_DEG)
        for dy in (-PADDING_DEG, PADDING_DEG)
    ]


def convex_hull(points: Sequence[Point]) -> list[Point]:
    """Return the convex hull of points, counter-clockwise (Andrew's monotone chain)."""
    ordered = sorted(set(points))
    if len(ordered) <= 2:
        return ordered

    def cross(o: Point, a: Point, b: Point) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(sequence: Iterable[Point]) -> list[Point]:
        chain: list[Point] = []
        for point in sequence:
            while len(chain) >= 2 and cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
        return chain

    lower, upper = half(ordered), half(reversed(ordered))
    return lower[:-1] + upper[:-1]
