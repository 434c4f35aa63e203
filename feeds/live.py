"""Live lot counts kept from the latest sensor readings, updated incrementally.

Same arithmetic as the `lot_now` rollup (each source's newest value, summed per lot), but fed
from readings as soon as they are committed instead of at the rollup refresh cadence. A lot
with a gate counter is counted by it; its spot sensors then give the categories and are
checked against it (see feeds.checks). Spot-level state lives only in this process's memory,
to add it up per lot; it is never published.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from store.feeds_reads import Observation, SensorMap

Source = tuple[str, str, str]  # device, kind, sub_id
GENERAL = "general"
COUNTER_KIND = "occupied_spaces"


@dataclass(frozen=True, slots=True)
class LiveLot:
    """A lot's raw counts: before clamping, so the meaning checks can see what arrived."""

    occupied: float
    observed_at: datetime
    counter: float | None  # the gate counter's occupied spaces, when the lot has one
    sensed: float | None  # spaces taken by spot sensors, when the lot has any
    sensors: int  # spot sensors heard from
    categories: dict[str, float]  # occupied per category, from spot sensors


class LiveParking:
    """Occupied spaces per lot from the newest reading of every spot sensor and counter."""

    def __init__(self, sensors: SensorMap) -> None:
        self._sensors = sensors
        self._sources: dict[Source, tuple[datetime, float]] = {}
        self._counter: dict[str, float] = {}
        self._sensed: dict[str, float] = {}
        self._sensor_count: dict[str, int] = {}
        self._categories: dict[str, dict[str, float]] = {}
        self._seen: dict[str, datetime] = {}

    def lot_of(self, obs: Observation) -> str | None:
        """Return the lot a reading counts for: its spot's, else its device's."""
        if obs.kind == "occupied":
            lot = self._sensors.spots.get((obs.device_id, obs.sub_id))
            if lot is not None:
                return lot
        return self._sensors.devices.get(obs.device_id)

    def apply(self, observations: Iterable[Observation]) -> set[str]:
        """Fold readings in (older or repeated ones change nothing); return the lots touched."""
        touched: set[str] = set()
        for obs in observations:
            lot = self.lot_of(obs)
            if lot is None:
                continue
            key = (obs.device_id, obs.kind, obs.sub_id)
            previous = self._sources.get(key)
            if previous is not None and previous[0] >= obs.observed_at:
                continue
            self._sources[key] = (obs.observed_at, obs.value)
            change = obs.value - (previous[1] if previous else 0.0)
            if obs.kind == COUNTER_KIND:
                self._counter[lot] = self._counter.get(lot, 0.0) + change
            else:
                self._sensed[lot] = self._sensed.get(lot, 0.0) + change
                if previous is None:
                    self._sensor_count[lot] = self._sensor_count.get(lot, 0) + 1
                category = self._sensors.categories.get((obs.device_id, obs.sub_id), GENERAL)
                per_lot = self._categories.setdefault(lot, {})
                per_lot[category] = per_lot.get(category, 0.0) + change
            seen = self._seen.get(lot)
            if seen is None or obs.observed_at > seen:
                self._seen[lot] = obs.observed_at
            touched.add(lot)
        return touched

    def lot(self, lot_id: str) -> LiveLot | None:
        """Return a lot's raw counts, or None before any of its sensors reported."""
        seen = self._seen.get(lot_id)
        if seen is None:
            return None
        counter = self._counter.get(lot_id)
        sensed = self._sensed.get(lot_id)
        return LiveLot(
            occupied=counter if counter is not None else (sensed or 0.0),
            observed_at=seen,
            counter=counter,
            sensed=sensed,
            sensors=self._sensor_count.get(lot_id, 0),
            categories=dict(self._categories.get(lot_id, {})),
        )

    def occupied(self, lot_id: str) -> tuple[int, datetime] | None:
        """Return a lot's occupied spaces (rounded) and the time of its newest reading."""
        found = self.lot(lot_id)
        return None if found is None else (round(found.occupied), found.observed_at)
