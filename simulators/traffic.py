"""Road traffic: a point queue per segment and Greenshields' fundamental diagram for speed.

Greenshields: v = vf (1 - k/kj), q = v k, so capacity qmax = vf kj / 4 at half the jam
density. Uncongested traffic sits on the free branch, v = vf/2 (1 + sqrt(1 - q/qmax)); once
demand exceeds capacity a queue forms, the segment flows a little below capacity (the
capacity drop seen on real roads) and speed falls to the congested branch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.demand import Array

# Flow while a queue discharges, as a share of capacity.
CAPACITY_DROP = 0.92
# Effective vehicle length plus detector length: occupancy % = density (veh/km) x 0.6.
OCCUPANCY_PER_DENSITY = 0.6
LANE_SPEED = (0.95, 1.0, 1.05, 1.08)
LANE_SHARE = (1.25, 1.0, 0.8, 0.7)


def free_speed(flow_share: Array, free_flow_kmh: Array) -> Array:
    """Return the uncongested speed for flow as a share of capacity (0..1)."""
    return free_flow_kmh / 2.0 * (1.0 + np.sqrt(1.0 - np.clip(flow_share, 0.0, 1.0)))


def congested_speed(flow_share: Array, free_flow_kmh: Array) -> Array:
    """Return the speed on the congested branch for flow as a share of capacity (0..1)."""
    return free_flow_kmh / 2.0 * (1.0 - np.sqrt(1.0 - np.clip(flow_share, 0.0, 1.0)))


@dataclass(frozen=True, slots=True)
class Intervals:
    """Per interval and segment: flow (veh/h), space-mean speed (km/h), whether congested."""

    flow_vph: Array
    speed_kmh: Array
    congested: npt.NDArray[np.bool_]


class SegmentQueues:
    """Point queues of the segments; demand beyond capacity waits for the next interval."""

    def __init__(self, segments: int) -> None:
        self.queue = np.zeros(segments)

    def advance(
        self, demand_vph: Array, capacity_vph: Array, free_flow_kmh: Array, interval_s: float
    ) -> Intervals:
        """Advance over intervals; arrays are (intervals, segments)."""
        hours = interval_s / 3600.0
        flow = np.empty_like(demand_vph)
        speed = np.empty_like(demand_vph)
        congested = np.empty(demand_vph.shape, dtype=bool)
        for step in range(demand_vph.shape[0]):
            waiting = self.queue + demand_vph[step] * hours
            capacity = capacity_vph[step] * hours
            jammed = waiting > capacity
            served = np.where(jammed, capacity * CAPACITY_DROP, waiting)
            self.queue = waiting - served
            share = served / capacity
            flow[step] = served / hours
            speed[step] = np.where(
                jammed,
                congested_speed(share, free_flow_kmh),
                free_speed(share, free_flow_kmh),
            )
            congested[step] = jammed
        return Intervals(flow, speed, congested)


def lane_split(
    flow_vph: Array, speed_kmh: Array, lanes: int, interval_s: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int64], Array, Array]:
    """Split one segment's flow over its lanes: counts, mean speeds and detector occupancy.

    Args:
        flow_vph: (intervals,) flow of the segment.
        speed_kmh: (intervals,) its space-mean speed.
        lanes: how many lanes.
        interval_s: the counting interval.
        rng: the random source.

    Returns:
        (intervals, lanes) arrays: vehicle counts, mean speeds (NaN without vehicles), occupancy %.
    """
    share = np.array(LANE_SHARE[:lanes])
    share = share / share.sum()
    expected = flow_vph[:, None] * share[None, :] * interval_s / 3600.0
    counts = rng.poisson(expected).astype(np.int64)
    factor = np.array(LANE_SPEED[:lanes])[None, :]
    noise = 1.0 + rng.normal(0.0, 0.04, counts.shape) / np.sqrt(np.maximum(counts, 1))
    speeds = np.clip(speed_kmh[:, None] * factor * noise, 3.0, 250.0)
    speeds = np.where(counts > 0, speeds, np.nan)
    density = counts * 3600.0 / interval_s / np.maximum(speed_kmh[:, None] * factor, 3.0)
    occupancy = np.clip(density * OCCUPANCY_PER_DENSITY, 0.0, 100.0)
    return counts, speeds, occupancy
