"""Live lot counts, as the database adds them up from each source's newest reading.

Same arithmetic as the `lot_now` rollup (each source's newest value, summed per lot), read as
soon as readings are committed instead of at the rollup refresh cadence: the full read takes
every lot, each poll re-reads only the lots that new transactions touched. A lot with a gate
counter is counted by it; its spot sensors then give the categories and are checked against it
(see streetsense.lot_checks). The feeds never see a spot's state, only these sums (migration 045).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from store.feeds_reads import LotParking

GENERAL = "general"


@dataclass(frozen=True, slots=True)
class LiveLot:
    """A lot's raw counts: before clamping, so the meaning checks can see what arrived."""

    occupied: float
    observed_at: datetime
    counter: float | None  # the gate counter's occupied spaces, when the lot has one
    sensed: float | None  # spaces taken by spot sensors, when the lot has any
    sensors: int  # spot sensors heard from
    categories: dict[str, float]  # occupied per category, from spot sensors

    @staticmethod
    def of(row: LotParking) -> LiveLot:
        """Return the live counts of a lot as the database summed them."""
        occupied = row.counter if row.counter is not None else (row.sensed or 0.0)
        return LiveLot(
            occupied=occupied,
            observed_at=row.observed_at,
            counter=row.counter,
            sensed=row.sensed,
            sensors=row.sensors,
            categories={name: float(value) for name, value in row.categories.items()},
        )


class LiveParking:
    """The live counts of every lot, replaced lot by lot as the database reports them."""

    def __init__(self, rows: Iterable[LotParking] = ()) -> None:
        self._lots = {row.lot_id: LiveLot.of(row) for row in rows}

    def apply(self, lot_ids: Iterable[str], rows: Iterable[LotParking]) -> set[str]:
        """Take fresh counts of `lot_ids` (a lot without a row has no reading left); return
        the lots whose counts changed."""
        fresh = {row.lot_id: LiveLot.of(row) for row in rows}
        changed = set()
        for lot_id in lot_ids:
            found = fresh.get(lot_id)
            if self._lots.get(lot_id) == found:
                continue
            changed.add(lot_id)
            if found is None:
                self._lots.pop(lot_id, None)
            else:
                self._lots[lot_id] = found
        return changed

    def lot(self, lot_id: str) -> LiveLot | None:
        """Return a lot's raw counts, or None before any of its sensors reported."""
        return self._lots.get(lot_id)

    def occupied(self, lot_id: str) -> tuple[int, datetime] | None:
        """Return a lot's occupied spaces (rounded) and the time of its newest reading."""
        found = self.lot(lot_id)
        return None if found is None else (round(found.occupied), found.observed_at)
