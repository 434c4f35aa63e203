"""Traffic incidents: a segment's capacity drops for a while (a crash, a broken-down lorry).

Capacity in an interval is the time-weighted mean over it, so an incident that starts half way
through an interval already halves that interval's loss, as a detector would see it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.demand import Array


@dataclass(frozen=True, slots=True)
class Incident:
    """A capacity drop on one segment: from `start` (epoch s) for `duration_s`, to `share`."""

    segment: str
    start: float
    duration_s: float
    share: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0 or self.duration_s <= 0:
            raise ValueError("an incident keeps a share of capacity in [0, 1) for a positive time")

    @property
    def end(self) -> float:
        """When the road is clear again (epoch s)."""
        return self.start + self.duration_s


def capacity_factors(
    starts: Array, interval_s: float, segments: Sequence[str], incidents: Sequence[Incident]
) -> Array:
    """Return (intervals, segments) factors to multiply capacity by (1 where nothing happens)."""
    factors = np.ones((starts.size, len(segments)))
    column = {segment: i for i, segment in enumerate(segments)}
    for incident in incidents:
        if incident.segment not in column:
            continue
        overlap = np.clip(
            np.minimum(starts + interval_s, incident.end) - np.maximum(starts, incident.start),
            0.0,
            interval_s,
        )
        blocked = overlap / interval_s
        factors[:, column[incident.segment]] *= 1.0 - blocked * (1.0 - incident.share)
    return factors


def schedule(
    segments: Sequence[str],
    days: Sequence[float],
    rng: np.random.Generator,
    *,
    per_segment_day: float = 1.0,
    hours: tuple[float, float] = (7.0, 19.0),
    minutes: tuple[float, float] = (20.0, 60.0),
    share: tuple[float, float] = (0.2, 0.4),
) -> list[Incident]:
    """Draw incidents on the given days (epoch s of each midnight, UTC) in busy hours.

    Each segment gets a Poisson number of incidents a day, at uniform times within `hours`,
    lasting uniformly `minutes`, keeping uniformly `share` of the capacity; incidents of one
    segment never overlap.
    """
    found: list[Incident] = []
    for segment in segments:
        for midnight in days:
            taken: list[tuple[float, float]] = []
            for _ in range(int(rng.poisson(per_segment_day))):
                start = midnight + rng.uniform(*hours) * 3600.0
                duration = rng.uniform(*minutes) * 60.0
                if any(start < end + 3600 and begin < start + duration + 3600
                       for begin, end in taken):  # fmt: skip
                    continue  # an hour apart, so each is its own incident
                taken.append((start, start + duration))
                found.append(Incident(segment, start, duration, float(rng.uniform(*share))))
    return sorted(found, key=lambda i: (i.start, i.segment))
