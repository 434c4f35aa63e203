"""Live lot counts kept from the latest sensor readings, updated incrementally.

Same arithmetic as the `lot_now` rollup (each source's newest value, summed per lot), but fed
from readings as soon as they are committed instead of at the rollup refresh cadence.
Spot-level state lives only in this process's memory, to add it up per lot; it is never
published.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from store.feeds_reads import Observation, SensorMap

Source = tuple[str, str, str]  # device, kind, sub_id


class LiveParking:
    """Occupied spaces per lot from the newest reading of every spot sensor and counter."""

    def __init__(self, sensors: SensorMap) -> None:
        self._sensors = sensors
        self._sources: dict[Source, tuple[datetime, float]] = {}
        self._occupied: dict[str, float] = {}
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
            self._occupied[lot] = (
                self._occupied.get(lot, 0.0) + obs.value - (previous[1] if previous else 0.0)
            )
            seen = self._seen.get(lot)
            if seen is None or obs.observed_at > seen:
                self._seen[lot] = obs.observed_at
            touched.add(lot)
        return touched

    def occupied(self, lot_id: str) -> tuple[int, datetime] | None:
        """Return a lot's occupied spaces (rounded) and the time of its newest reading."""
        seen = self._seen.get(lot_id)
        if seen is None:
            return None
        return round(self._occupied[lot_id]), seen
