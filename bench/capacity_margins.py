"""Which counts a margin over a lot's capacity would refuse, on real car-park recordings.

Usage: .venv/bin/python bench/capacity_margins.py [--data ../shared/data]

For each car park of Aarhus (`aarhus_parking.csv`) and Gießen (`giessen/giessen_carparks_long.csv`)
counts the readings over its capacity and those `ingest.capacity_margin` would refuse at each
margin (`occupied > capacity x (1 + margin)`). Aarhus gives one capacity per car park; Gießen's
changes over time, so the one it gave most often stands for the registered capacity. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARGINS = (0.0, 0.25, 0.5, 1.0, 2.0)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def aarhus(path: Path) -> dict[str, tuple[float, list[float]]]:
    """Return each car park's capacity and counts."""
    counts: dict[str, list[float]] = defaultdict(list)
    capacity: dict[str, float] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            counts[row["garagecode"]].append(float(row["vehiclecount"]))
            capacity[row["garagecode"]] = float(row["totalspaces"])
    return {lot: (capacity[lot], values) for lot, values in counts.items()}


def giessen(path: Path) -> dict[str, tuple[float, list[float]]]:
    """Return each car park's most frequent positive capacity and its counts."""
    counts: dict[str, list[float]] = defaultdict(list)
    capacities: dict[str, Counter[float]] = defaultdict(Counter)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            occupied, capacity = _number(row["occupied_spaces"]), _number(row["capacity"])
            if occupied is None:
                continue
            counts[row["carpark_id"]].append(occupied)
            if capacity is not None and capacity > 0:  # the feed also says -3108 and 0
                capacities[row["carpark_id"]][capacity] += 1
    return {lot: (capacities[lot].most_common(1)[0][0], v) for lot, v in counts.items()}


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    sets = {
        "Aarhus": aarhus(args.data / "aarhus_parking.csv"),
        "Gießen": giessen(args.data / "giessen" / "giessen_carparks_long.csv"),
    }
    margins = " | ".join(f"refused at {m:g}" for m in MARGINS)
    print(f"| data set | car park | capacity | readings | over capacity | {margins} |")
    print("|---" * (5 + len(MARGINS)) + "|")
    for name, lots in sets.items():
        for lot, (capacity, values) in sorted(lots.items()):
            over = sum(v > capacity for v in values)
            refused = " | ".join(str(sum(v > capacity * (1 + m) for v in values)) for m in MARGINS)
            print(f"| {name} | {lot} | {capacity:g} | {len(values)} | {over} | {refused} |")


if __name__ == "__main__":
    main()
