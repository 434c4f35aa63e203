"""Where a lot's capacity changed lastingly, so its forecast is fitted on its new self only.

A capacity reading belongs to a run of equal values. A run is lasting when its own readings span
at least `MIN_HOLD_SECONDS` (a day); a lasting change is a lasting run whose level differs by at
least `MIN_RELATIVE_CHANGE` from an earlier lasting run's. Gießen's Rathaus switches between 250
and 170 spaces every evening and holds 250 over weekends: its weekday runs are short and its
lasting runs share one level, so it has no change. Its Karstadt (695 -> 475 -> 380) and
Westanlage (235 -> 310) have; Am Bahnhof's 242 -> 240 -> 239 (register corrections) has not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from analytics.panel import SECONDS_PER_DAY, Panel
from analytics.readiness import Skip

# A new capacity counts once its readings have spanned a day (longer than any evening switch).
MIN_HOLD_SECONDS = SECONDS_PER_DAY
# Smaller differences are register corrections, not spaces opened or closed.
MIN_RELATIVE_CHANGE = 0.10
# A change is cut at only when the readings since differ by this much (mean, same times of
# week a week earlier): Karstadt's 475 -> 380 left its weekday counts as they were (only
# Saturday peaks were capped), and cutting its history made its forecasts worse.
MIN_DEMAND_SHIFT = 0.15


@dataclass(frozen=True, slots=True)
class Change:
    """A capacity change of one series: the first slot of its new level, old and new level.

    `pending`: the new level is new to the window but has not held a day yet.
    """

    row: int
    slot: int
    old: float
    new: float
    pending: bool = False


def _runs(capacity: npt.NDArray[np.float64]) -> list[tuple[float, int, int]]:
    """Return (level, first slot, last slot) of each run of equal capacities (gaps skipped)."""
    slots = np.flatnonzero(np.isfinite(capacity) & (capacity > 0))
    if slots.size == 0:
        return []
    levels = capacity[slots]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(levels)) + 1))
    ends = np.concatenate((starts[1:] - 1, [slots.size - 1]))
    return [
        (float(levels[s]), int(slots[s]), int(slots[e])) for s, e in zip(starts, ends, strict=True)
    ]


def _differs(new: float, old: float) -> bool:
    """Return True when two capacities differ by more than a register correction."""
    return abs(new - old) >= MIN_RELATIVE_CHANGE * old


def last_change(row: int, capacity: npt.NDArray[np.float64], step: int) -> Change | None:
    """Return one series' last capacity change, or None.

    `capacity` holds the capacity per slot (NaN: no reading). The new level is the latest
    lasting run's; the cut is at the first run after the last lasting run whose level differs
    from it (short runs in between belong to neither level). When the latest run is short, at
    a level that differs from the latest lasting one and appears nowhere earlier in the window,
    the change is pending: neither the old level nor the few readings since tell the future.
    """
    runs = _runs(capacity)
    hold = MIN_HOLD_SECONDS // step
    lasting = [i for i, (_, first, last) in enumerate(runs) if last - first + 1 >= hold]
    if not lasting:
        return None
    new = runs[lasting[-1]][0]
    latest, since, _ = runs[-1]
    if _differs(latest, new) and all(level != latest for level, _, _ in runs[:-1]):
        return Change(row, since, new, latest, pending=True)
    for i in reversed(lasting[:-1]):
        old = runs[i][0]
        if _differs(new, old):
            return Change(row, runs[i + 1][1], old, new)
    return None


def demand_moved(values: npt.NDArray[np.float64], slot: int, step: int) -> bool:
    """Return True unless the readings of (at most) the week from `slot` stay within
    `MIN_DEMAND_SHIFT` of those at the same times a week earlier (True without a week before)."""
    week = 7 * SECONDS_PER_DAY // step
    if slot < week:
        return True
    after = values[slot : slot + week]
    before = values[slot - week : slot - week + after.size]
    both = np.isfinite(after) & np.isfinite(before)
    old = float(before[both].mean()) if both.any() else 0.0
    if old <= 0:
        return True
    return bool(abs(float(after[both].mean()) / old - 1) >= MIN_DEMAND_SHIFT)


def lasting_changes(
    capacity: npt.NDArray[np.float64],
    step: int,
    values: npt.NDArray[np.float64] | None = None,
) -> list[Change]:
    """Return the last change of each series of a (series x slot) capacity grid.

    With the readings (`values`, the same shape), a lasting change after which the readings
    kept their level (`demand_moved`) is left out: the old self still tells the future.
    """
    changes = [last_change(row, capacity[row], step) for row in range(capacity.shape[0])]
    return [
        change
        for change in changes
        if change is not None
        and (
            values is None or change.pending or demand_moved(values[change.row], change.slot, step)
        )
    ]


def since_changes(panel: Panel, changes: list[Change]) -> Panel:
    """Return the panel with each changed series' readings before its change left out."""
    if not changes:
        return panel
    values = panel.values.copy()
    for change in changes:
        first = int(panel.indptr[change.row])
        values[first : first + change.slot] = np.nan
    return replace(panel, values=values)


def pending_skips(changes: list[Change], start: datetime, step: int) -> list[Skip]:
    """Return a skip, with its sentence, for each series whose new capacity is still pending."""
    skips = []
    for change in changes:
        if change.pending:
            since = start + timedelta(seconds=change.slot * step)
            skips.append(Skip(change.row, "capacity_changed", (
                f"capacity changed from {change.old:g} to {change.new:g} at "
                f"{since:%Y-%m-%d %H:%M} UTC: neither the old capacity's readings nor the "
                f"few since tell the future; a forecast resumes once the new capacity has "
                f"held {MIN_HOLD_SECONDS // 3600} h"
            )))  # fmt: skip
    return skips
