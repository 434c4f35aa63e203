"""Replay recorded lot occupancy (the common open-data layout) as counter devices.

The layout is one row per observation with a lot id, its capacity, the vehicles present and a
timestamp; column names vary between cities, so each role accepts several names.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.city import offset
from streetsense.errors import ConfigError
from streetsense.readings import Reading

log = logging.getLogger(__name__)
# Accepted column names per role, most specific first (Aarhus: garagecode, totalspaces, ...).
COLUMNS = {
    "lot": ("garagecode", "lot_id", "lot", "carpark", "name"),
    "capacity": ("totalspaces", "capacity", "total", "spaces"),
    "occupancy": ("vehiclecount", "occupancy", "occupied", "occupied_spaces", "count"),
    "time": ("updatetime", "timestamp", "time", "observed_at", "datetime"),
}


@dataclass(frozen=True, slots=True)
class Observation:
    """One recorded row: lot, capacity, vehicles present, when (aware UTC)."""

    lot: str
    capacity: int
    occupied: float
    at: datetime


@dataclass(frozen=True, slots=True)
class Recording:
    """A whole recording, sorted by time, and how many rows were unusable."""

    observations: list[Observation]
    skipped: int

    def lots(self) -> dict[str, int]:
        """Return every lot id with the largest capacity recorded for it."""
        found: dict[str, int] = {}
        for row in self.observations:
            found[row.lot] = max(found.get(row.lot, 0), row.capacity)
        return found


def lot_id(raw: str) -> str:
    """Turn a recorded lot name into a valid id (`NORREPORT` -> `norreport`)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", raw.strip().lower()).strip("-_")
    return (slug or "lot")[:56]


def read_recording(path: str | Path, timezone: str = "UTC") -> Recording:
    """Read a recording; rows that cannot be read are counted, logged once, and skipped.

    Raises:
        ConfigError: the file is missing or has no column for one of the roles.
    """
    zone = ZoneInfo(timezone)
    try:
        with Path(path).open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            roles = _roles(reader.fieldnames or [], path)
            observations, skipped = _rows(reader, roles, zone)
    except OSError as exc:
        raise ConfigError(f"cannot read the recording {str(path)!r}: {exc}") from exc
    observations.sort(key=lambda o: o.at)
    if skipped:
        log.warning("%s: skipped %d unreadable rows", path, skipped)
    return Recording(observations, skipped)


def _roles(names: Iterable[str], path: str | Path) -> dict[str, str]:
    lowered = {name.strip().lower(): name for name in names}
    roles = {}
    for role, candidates in COLUMNS.items():
        match = next((lowered[c] for c in candidates if c in lowered), None)
        if match is None:
            raise ConfigError(
                f"{path}: no {role} column; name one of {', '.join(candidates)} "
                f"(found {', '.join(lowered)})"
            )
        roles[role] = match
    return roles


def _rows(
    reader: csv.DictReader[str], roles: dict[str, str], zone: ZoneInfo
) -> tuple[list[Observation], int]:
    observations: list[Observation] = []
    skipped = 0
    for row in reader:
        try:
            moment = datetime.fromisoformat(row[roles["time"]].strip())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            observations.append(
                Observation(
                    lot=lot_id(row[roles["lot"]]),
                    capacity=int(float(row[roles["capacity"]])),
                    occupied=float(row[roles["occupancy"]]),
                    at=moment.astimezone(UTC),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped += 1
    return observations, skipped


def shifted_readings(
    recording: Recording, days: float, end: datetime, *, align_days: int = 1
) -> tuple[list[Reading], int]:
    """Return the last `days` of the recording as counter readings, moved to end by `end`.

    The shift is a whole number of `align_days`: 1 keeps the time of day (the replay ends
    within the day before `end`), 7 also keeps the weekday (it ends within the week before).

    Returns:
        The readings (device `<lot>-counter`, kind `occupied_spaces`) and how many
        observations could not be readings (negative counts).
    """
    if not recording.observations:
        return [], 0
    last = recording.observations[-1].at
    first = last - timedelta(days=days)
    step = timedelta(days=align_days)
    shift = step * ((end - last) // step)
    readings: list[Reading] = []
    refused = 0
    for row in recording.observations:
        if row.at < first:
            continue
        device = f"{row.lot}-counter"
        try:
            readings.append(Reading(device, "occupied_spaces", row.at + shift, row.occupied))
        except ValueError:
            refused += 1
    return readings, refused


def registry_tables(
    recording: Recording, site: str, centre: tuple[float, float]
) -> dict[str, list[dict[str, object]]]:
    """Return registry tables for the recorded lots (placed round the centre: files lack places)."""
    lots = sorted(recording.lots().items())
    tables: dict[str, list[dict[str, object]]] = {
        "site": [{"id": site, "name": f"Replayed lots ({site})"}],
        "lot": [],
        "device": [],
    }
    for index, (lot, capacity) in enumerate(lots):
        lat, lon = offset(centre, 600.0 + 150.0 * index, index * 360.0 / max(len(lots), 1))
        tables["lot"].append(
            {"id": lot, "site": site, "name": lot.upper(), "kind": "off_street",
             "capacity": max(capacity, 1), "lat": lat, "lon": lon, "area": "replay"}
        )  # fmt: skip
        tables["device"].append(
            {"id": f"{lot}-counter", "site": site, "kind": "counter", "lot": lot}
        )
    return tables
