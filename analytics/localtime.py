"""Seasonal slots of matrix columns and forecast steps, in UTC or in a city's local time.

In UTC every column of a right-aligned matrix lies a fixed number of slots before the first
forecast step, so slots follow from positions alone (`RelativeSlots`). In a zone with daylight
saving time the wall clock jumps, so slots come from each column's local time (`LocalSlots`);
the UTC offsets are found per transition, not per value, so the work stays vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from analytics.panel import SECONDS_PER_DAY, IntArray

# Offsets are sampled this far apart; zones change offset far less often than this.
_SAMPLE_SECONDS = SECONDS_PER_DAY // 4


class Slots(Protocol):
    """Where each column of a window, and each forecast step after it, lies in a season."""

    def columns(self, width: int, period: int) -> IntArray:
        """Return the slot of each of the window's last `width` columns."""
        ...

    def ahead(self, horizon: int, period: int) -> IntArray:
        """Return the slot of each forecast step 1..horizon."""
        ...


class RelativeSlots:
    """Slots in UTC: column t of a width-W window is slot (t - W) mod period, step j is j - 1."""

    relative = True

    def columns(self, width: int, period: int) -> IntArray:
        """Return the slot of each of the last `width` columns."""
        return (np.arange(width, dtype=np.int64) - width) % period

    def ahead(self, horizon: int, period: int) -> IntArray:
        """Return the slot of each forecast step 1..horizon."""
        return np.arange(horizon, dtype=np.int64) % period


@dataclass(frozen=True, slots=True, eq=False)
class LocalSlots:
    """Slots on the local wall clock: local slot numbers of a window's columns and its future."""

    past: IntArray
    future: IntArray
    relative = False

    @classmethod
    def of(cls, last: int, step: int, width: int, horizon: int, zone: ZoneInfo) -> LocalSlots:
        """Return the slots of `width` columns ending at epoch `last` and `horizon` steps after."""
        times = last + step * np.arange(1 - width, horizon + 1, dtype=np.int64)
        local = (times + utc_offsets(times, zone)) // step
        return cls(past=local[:width], future=local[width:])

    def columns(self, width: int, period: int) -> IntArray:
        """Return the slot of each of the last `width` columns."""
        return self.past[self.past.size - width :] % period

    def ahead(self, horizon: int, period: int) -> IntArray:
        """Return the slot of each forecast step 1..horizon."""
        return self.future[:horizon] % period


def hour_of_day(times: IntArray, zone: ZoneInfo | None) -> IntArray:
    """Return the hour of day (0-23) of each epoch second in `times` in `zone` (None: UTC)."""
    local = times if zone is None else times + utc_offsets(times.ravel(), zone).reshape(times.shape)
    hours: IntArray = local % SECONDS_PER_DAY // 3600
    return hours


def utc_offsets(times: IntArray, zone: ZoneInfo) -> IntArray:
    """Return the UTC offset in seconds of `zone` at each epoch second in `times`.

    The offset is sampled every few hours over the range; where two samples differ, the exact
    transition second is found by bisection, so the Python work grows with the span, not the
    number of times.
    """
    if times.size == 0:
        return np.zeros(0, dtype=np.int64)
    first, last = int(times.min()), int(times.max())
    samples = [*range(first, last, _SAMPLE_SECONDS), last]
    offsets = [_offset(t, zone) for t in samples]
    changes = [first]
    values = [offsets[0]]
    for k in range(1, len(samples)):
        if offsets[k] != offsets[k - 1]:
            changes.append(_transition(samples[k - 1], samples[k], zone))
            values.append(offsets[k])
    index = np.searchsorted(np.asarray(changes, dtype=np.int64), times, side="right") - 1
    return np.asarray(values, dtype=np.int64)[index]


def _offset(epoch: int, zone: ZoneInfo) -> int:
    """Return the UTC offset in seconds of `zone` at one epoch second."""
    offset = datetime.fromtimestamp(epoch, UTC).astimezone(zone).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _transition(before: int, after: int, zone: ZoneInfo) -> int:
    """Return the first epoch second in (before, after] with the offset seen at `after`."""
    target = _offset(after, zone)
    low, high = before, after
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, zone) == target:
            high = middle
        else:
            low = middle
    return high


def zone_of(name: str) -> ZoneInfo | None:
    """Return the IANA zone called `name`, or None for UTC (slots then need no calendar).

    Raises:
        ValueError: the name is not a known IANA zone; the message says how to fix it.
    """
    if name.strip().upper() in ("UTC", "Z", "ETC/UTC"):
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone '{name}'; give an IANA name such as Europe/Copenhagen or UTC"
        ) from exc
