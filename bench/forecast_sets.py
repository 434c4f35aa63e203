"""The real recordings in shared/data as backtest CSVs (series_id,timestamp,value,capacity).

Each data set is a function of the recording, a time window and (for the variants that mimic
recordings kept aside) a sampling rule, so the same rows feed `streetsense forecast backtest` and
the goal harness (bench/forecast_goals.py). Timestamps stay as recorded (local wall clock, no
offset); the backtest reads them in the city's time zone.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
Row = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class DataSet:
    """Rows of one recording within [start, end) local time, optionally day-only (09-21 h)."""

    name: str
    source: str
    start: str = ""
    end: str = "9999"
    day_only: bool = False
    keep_every: int = 1

    def rows(self, data: Path = DATA) -> Iterator[Row]:
        """Yield (series_id, timestamp, value, capacity) rows of the window."""
        for row in READERS[self.source](data):
            stamp = row[1]
            if not self.start <= stamp < self.end:
                continue
            if self.day_only and not 9 <= int(stamp[11:13]) < 21:
                continue
            yield row

    def write(self, target: Path, data: Path = DATA) -> Path:
        """Write the rows as a backtest CSV and return its path."""
        with target.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["series_id", "timestamp", "value", "capacity"])
            for k, row in enumerate(self.rows(data)):
                if k % self.keep_every == 0:
                    out.writerow(row)
        return target


def aarhus_parking(data: Path) -> Iterator[Row]:
    """Occupied spaces of 8 Aarhus car parks, about every 30 min, May-Nov 2014."""
    with (data / "aarhus_parking.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            stamp = row["updatetime"].replace(" ", "T")[:19]
            yield row["garagecode"], stamp, row["vehiclecount"], row["totalspaces"]


def _aarhus_traffic(data: Path, column: str) -> Iterator[Row]:
    """One road segment's 5-minute vehicle count or mean speed (steps with vehicles only for
    speed: a step without vehicles has no speed)."""
    with (data / "aarhus_traffic_158324.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["status"] != "OK":
                continue
            if column == "avgSpeed" and float(row["vehicleCount"]) <= 0:
                continue
            yield row["REPORT_ID"], row["TIMESTAMP"][:19], row[column], ""


def aarhus_flow(data: Path) -> Iterator[Row]:
    """Vehicles per 5 min on Aarhus segment 158324, Aug-Sep 2014."""
    return _aarhus_traffic(data, "vehicleCount")


def aarhus_speed(data: Path) -> Iterator[Row]:
    """Mean km/h per 5 min on Aarhus segment 158324, Aug-Sep 2014."""
    return _aarhus_traffic(data, "avgSpeed")


def giessen(data: Path) -> Iterator[Row]:
    """Occupied spaces of 9 Gießen car parks, irregular 5-22 min, 09-21 h, Oct 2023-Dec 2024.

    Values and capacities are passed on unchanged (bad ones included): screening them is the
    backtest's job, as it would be for a planner's file.
    """
    with (data / "giessen" / "giessen_carparks_long.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            yield (
                row["carpark_id"],
                row["timestamp_local"][:19],
                row["occupied_spaces"],
                row["capacity"],
            )


READERS = {
    "aarhus_parking": aarhus_parking,
    "aarhus_flow": aarhus_flow,
    "aarhus_speed": aarhus_speed,
    "giessen": giessen,
}
