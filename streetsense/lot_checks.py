"""Meaning checks on a lot's counts: what arrived is kept honest before it is published.

Free is never above capacity and occupied never below zero (clamped, with the reason), a
category never holds more than its spaces, and a lot counted by a gate counter is checked
against its own spot sensors. Failed checks travel with the lot in every feed and on the
dashboard, so both rooms read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

# Counters drift by a car or two between recalibrations: disagreements smaller than this are
# normal, not a fault.
TOLERANCE_SHARE: Final = 0.05
TOLERANCE_MIN: Final = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    """A meaning check that failed on a lot's counts, with the reason in words."""

    code: str
    reason: str


class Counts(Protocol):
    """A lot's raw counts, before any clamping."""

    @property
    def occupied(self) -> float:
        """Spaces taken as counted (the gate counter's when there is one)."""

    @property
    def counter(self) -> float | None:
        """Spaces taken by the gate counter, when the lot has one that reported."""

    @property
    def sensed(self) -> float | None:
        """Spaces taken by spot sensors, when the lot has any that reported."""

    @property
    def sensors(self) -> int:
        """Spot sensors heard from."""


def checked_occupied(capacity: int, live: Counts) -> tuple[int, tuple[Check, ...]]:
    """Return the occupied spaces to publish (within 0..capacity) and the checks that failed."""
    checks: list[Check] = []
    raw = round(live.occupied)
    if raw > capacity:
        checks.append(
            Check(
                "over_capacity",
                f"sensors report {raw} spaces taken, more than the lot's {capacity}: published "
                "as full; check the registry capacity or the counter's calibration",
            )
        )
    elif raw < 0:
        checks.append(
            Check(
                "negative_occupancy",
                f"the counter reports {raw} spaces taken (below zero: it missed entries): "
                "published as empty; recalibrate the counter",
            )
        )
    checks.extend(_counter_against_sensors(capacity, live))
    return max(0, min(raw, capacity)), tuple(checks)


def _counter_against_sensors(capacity: int, live: Counts) -> list[Check]:
    if live.counter is None or live.sensed is None:
        return []
    tolerance = max(TOLERANCE_MIN, TOLERANCE_SHARE * capacity)
    counter, sensed = round(live.counter), round(live.sensed)
    every_space = live.sensors >= capacity
    if sensed > counter + tolerance or (every_space and abs(counter - sensed) > tolerance):
        scope = "all" if every_space else f"{live.sensors} of {capacity}"
        return [
            Check(
                "counter_disagrees",
                f"the gate counter says {counter} spaces taken, spot sensors on {scope} spaces "
                f"say {sensed}: the lot's count may be wrong; check the counter and the sensors",
            )
        ]
    return []


def checked_category(name: str, capacity: int, occupied: float) -> tuple[int, Check | None]:
    """Return a category's occupied spaces within 0..capacity and the failed check, if any."""
    raw = round(occupied)
    if 0 <= raw <= capacity:
        return raw, None
    return max(0, min(raw, capacity)), Check(
        "category_over_capacity",
        f"{raw} {name} spaces are reported taken but the lot has {capacity}: check the spots' "
        "category in the registry",
    )
