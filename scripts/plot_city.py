#!/usr/bin/env python3
"""Plot a simulated week of the city: hourly occupancy by lot character, flow and speed.

Writes docs/img/city-curves.png and docs/img/city-map.png (Pillow, no plotting library):

    .venv/bin/python scripts/plot_city.py [--seed 1] [--out docs/img/city-curves.png]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulators.city import Character, City, CitySpec, generate_city
from simulators.curves import Curves, hourly_curves
from simulators.demand import Calendar
from simulators.world import CitySimulation
from streetsense.registry import LotKind

WIDTH, PANEL_H, MARGIN_L, MARGIN_R, TOP = 1500, 300, 90, 190, 60
COLOURS = {
    Character.OFFICE: (31, 119, 180),
    Character.RETAIL: (255, 127, 14),
    Character.RESIDENTIAL: (44, 160, 44),
    Character.VENUE: (214, 39, 40),
}
ROADS = {True: (60, 60, 60), False: (170, 170, 170)}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Series = tuple[str, np.ndarray, tuple[int, int, int]]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Return Pillow's built-in font at a size (scalable since Pillow 10.1)."""
    return ImageFont.load_default(size=size)


def panel(
    draw: ImageDraw.ImageDraw, top: int, title: str, unit: str, series: Sequence[Series],
    ceiling: float,
) -> None:  # fmt: skip
    """Draw one panel: frame, day grid, y ticks, lines and legend."""
    left, right, bottom = MARGIN_L, WIDTH - MARGIN_R, top + PANEL_H - 50
    height = bottom - top
    draw.text((left, top - 30), title, fill="black", font=font(20))
    hours = len(series[0][1])
    for day in range(8):
        x = left + (right - left) * day * 24 / hours
        draw.line([(x, top), (x, bottom)], fill=(200, 200, 200))
        if day < 7:
            draw.text(
                (x + (right - left) / 14 - 14, bottom + 8), DAYS[day], fill="black", font=font(15)
            )
    for tick in np.linspace(0, ceiling, 5):
        y = bottom - height * tick / ceiling
        draw.line([(left, y), (right, y)], fill=(235, 235, 235))
        draw.text(
            (10, y - 8),
            f"{tick:,.0f}{unit}" if ceiling > 2 else f"{tick:.0%}",
            fill="black",
            font=font(14),
        )
    draw.rectangle([left, top, right, bottom], outline="black")
    for index, (label, values, colour) in enumerate(series):
        points = [
            (left + (right - left) * (h + 0.5) / hours, bottom - height * min(v, ceiling) / ceiling)
            for h, v in enumerate(values.tolist())
            if np.isfinite(v)
        ]
        draw.line(points, fill=colour, width=3)
        y = top + 10 + index * 26
        draw.line([(right + 15, y + 8), (right + 45, y + 8)], fill=colour, width=4)
        draw.text((right + 52, y), label, fill="black", font=font(15))


def render(curves: Curves, start: datetime, path: Path) -> None:
    """Render the three panels to a PNG."""
    image = Image.new("RGB", (WIDTH, TOP + 3 * PANEL_H + 20), "white")
    draw = ImageDraw.Draw(image)
    end = start + timedelta(days=7)
    draw.text(
        (MARGIN_L, 12),
        f"Simulated city, week of {start:%Y-%m-%d} to {end - timedelta(days=1):%Y-%m-%d} "
        "(hourly, UTC; match on Saturday 15:00)",
        fill="black",
        font=font(22),
    )
    occupancy = [(c.value, v, COLOURS[c]) for c, v in curves.occupancy.items()]
    panel(draw, TOP + 40, "Parking occupancy by lot character", "", occupancy, 1.0)
    flow = [
        ("inbound", curves.inbound_vph, (31, 119, 180)),
        ("outbound", curves.outbound_vph, (255, 127, 14)),
    ]
    ceiling = float(np.ceil(max(curves.inbound_vph.max(), curves.outbound_vph.max()) / 500) * 500)
    panel(draw, TOP + 40 + PANEL_H, "Traffic flow per segment (vehicles/h)", "", flow, ceiling)
    speed = [("mean speed", curves.speed_kmh, (100, 100, 100))]
    panel(draw, TOP + 40 + 2 * PANEL_H, "Mean speed, weighted by vehicles (km/h)", "", speed, 60.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)


def render_map(city: City, path: Path, size: int = 900) -> None:
    """Draw the city: lots by character (squares on-street, discs off-street), radial roads."""
    image = Image.new("RGB", (size + 260, size + 40), "white")
    draw = ImageDraw.Draw(image)
    points = [(lot.lat, lot.lon) for lot in city.lots]
    points += [(lat, lon) for s in city.segments for lon, lat in s.coordinates]
    lats, lons = [p[0] for p in points], [p[1] for p in points]
    scale_lon = math.cos(math.radians(city.centre[0]))
    span = max(max(lats) - min(lats), (max(lons) - min(lons)) * scale_lon) * 1.15
    middle = ((max(lats) + min(lats)) / 2, (max(lons) + min(lons)) / 2)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        x = (lon - middle[1]) * scale_lon / span * size + size / 2
        return x, size / 2 - (lat - middle[0]) / span * size + 20

    for segment in city.segments:
        (lon0, lat0), (lon1, lat1) = segment.coordinates[0], segment.coordinates[-1]
        colour = ROADS[segment.inbound]
        draw.line([xy(lat0, lon0), xy(lat1, lon1)], fill=colour, width=1 + segment.lanes)
    for lot in city.lots:
        x, y = xy(lot.lat, lot.lon)
        r = 4 + math.sqrt(lot.capacity) / 2
        box = [x - r, y - r, x + r, y + r]
        if lot.kind is LotKind.ON_STREET:
            draw.rectangle(box, fill=COLOURS[lot.character], outline="black")
        else:
            draw.ellipse(box, fill=COLOURS[lot.character], outline="black")
    cx, cy = xy(*city.centre)
    draw.line([(cx - 8, cy), (cx + 8, cy)], fill="black", width=2)
    draw.line([(cx, cy - 8), (cx, cy + 8)], fill="black", width=2)
    legend = [(c.value, COLOURS[c]) for c in Character]
    legend += [("inbound carriageway", ROADS[True]), ("outbound carriageway", ROADS[False])]
    for index, (label, colour) in enumerate(legend):
        y = 30 + index * 28
        draw.rectangle([size + 20, y, size + 40, y + 16], fill=colour)
        draw.text((size + 50, y - 1), label, fill="black", font=font(16))
    note = "squares: on-street\n(spot sensors)\ndiscs: garages\n(counters)\n+: centre"
    draw.multiline_text((size + 20, 30 + len(legend) * 28 + 10), note, fill="black", font=font(15))
    draw.text((20, 12), f"City seed {city.seed}: {len(city.lots)} lots, "
              f"{len(city.segments)} segments", fill="black", font=font(20))  # fmt: skip
    image.save(path, optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Simulate one week and plot it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--monday", default="2026-11-02", help="the Monday the week starts")
    parser.add_argument("--out", default="docs/img/city-curves.png")
    parser.add_argument("--map", default="docs/img/city-map.png", help="empty: no map")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.monday).replace(tzinfo=UTC)
    city = generate_city(CitySpec(seed=args.seed))
    began = start.timestamp()
    readings = CitySimulation(city, Calendar(seed=args.seed), began).advance(began + 7 * 86_400)
    render(hourly_curves(city, readings, began, 7 * 24), start, Path(args.out))
    if args.map:
        render_map(city, Path(args.map))
    sys.stdout.write(f"{len(readings)} readings plotted to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
