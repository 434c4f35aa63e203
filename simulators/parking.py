"""Parking as a stochastic process: each space is a two-state chain whose rates track demand.

A space is taken at rate `lam` when free and freed at rate `mu` when taken. Choosing
`mu = mu0 + max(0, -p')/p` and `lam = (mu p + p')/(1 - p)` makes the expected occupancy follow
the target `p(t)` exactly (dp/dt = lam (1 - p) - mu p), while each space still sees plausible,
random arrivals and departures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulators.demand import Array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
MIN_SHARE = 0.02
MAX_SHARE = 0.98


@dataclass(frozen=True, slots=True)
class SpotEvents:
    """Spot state changes: time (epoch s), spot index, new state, sorted by time."""

    times: FloatArray
    spots: IntArray
    occupied: npt.NDArray[np.bool_]
    # State of every space after the steps asked for as snapshots, in the order asked.
    snapshots: tuple[npt.NDArray[np.bool_], ...] = ()


def rates(
    target: Array, target_next: Array, step_s: float, mean_stay_h: Array
) -> tuple[Array, Array]:
    """Return (arrival rate per free space, departure rate per taken space) per second.

    Args:
        target: the occupancy share wanted at the start of each step (clipped to 2-98%).
        target_next: the share wanted one step later, for the slope.
        step_s: the step length in seconds.
        mean_stay_h: the mean stay, broadcastable to `target`.
    """
    p = np.clip(target, MIN_SHARE, MAX_SHARE)
    slope = (np.clip(target_next, MIN_SHARE, MAX_SHARE) - p) / step_s
    mu = 1.0 / (mean_stay_h * 3600.0) + np.maximum(0.0, -slope) / p
    lam = (mu * p + slope) / (1.0 - p)
    return np.maximum(lam, 0.0), mu


class SpotChains:
    """The spaces of on-street lots, one chain per sensor, advanced step by step."""

    def __init__(self, lot_of_spot: IntArray, rng: np.random.Generator) -> None:
        self.lot_of_spot = lot_of_spot
        self.rng = rng
        self.state: npt.NDArray[np.bool_] | None = None

    def start(self, share: Array) -> npt.NDArray[np.bool_]:
        """Draw the initial state of every space from its lot's target share."""
        self.state = self.rng.random(self.lot_of_spot.size) < share[self.lot_of_spot]
        return self.state.copy()

    def advance(
        self, start_s: float, step_s: float, lam: Array, mu: Array, snapshot_after: set[int]
    ) -> SpotEvents:
        """Advance over steps; `lam`, `mu` are (steps, lots). Return the changes in order."""
        if self.state is None:
            raise RuntimeError("call start() before advance()")
        times: list[FloatArray] = []
        spots: list[IntArray] = []
        values: list[npt.NDArray[np.bool_]] = []
        state = self.state
        snapshots: list[npt.NDArray[np.bool_]] = []
        for step in range(lam.shape[0]):
            rate = np.where(state, mu[step][self.lot_of_spot], lam[step][self.lot_of_spot])
            flips = np.flatnonzero(self.rng.random(state.size) < -np.expm1(-rate * step_s))
            if flips.size:
                state[flips] = ~state[flips]
                offsets = self.rng.random(flips.size) * step_s
                times.append(start_s + step * step_s + offsets)
                spots.append(flips.astype(np.int64))
                values.append(state[flips].copy())
            if step in snapshot_after:
                snapshots.append(state.copy())
        return _sorted_events(times, spots, values, tuple(snapshots))


def _sorted_events(
    times: list[FloatArray],
    spots: list[IntArray],
    values: list[npt.NDArray[np.bool_]],
    snapshots: tuple[npt.NDArray[np.bool_], ...],
) -> SpotEvents:
    if not times:
        empty = np.empty(0)
        return SpotEvents(empty, empty.astype(np.int64), empty.astype(bool), snapshots)
    all_times = np.concatenate(times)
    order = np.argsort(all_times, kind="stable")
    spot_order = np.concatenate(spots)[order]
    return SpotEvents(all_times[order], spot_order, np.concatenate(values)[order], snapshots)


class LotCounters:
    """Vehicles present in off-street lots: binomial arrivals and departures per step."""

    def __init__(self, capacity: IntArray, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.present: IntArray = np.zeros_like(capacity)

    def start(self, share: Array) -> IntArray:
        """Draw the initial number of vehicles in each lot."""
        self.present = self.rng.binomial(self.capacity, np.clip(share, 0.0, 1.0)).astype(np.int64)
        return self.present.copy()

    def advance(self, step_s: float, lam: Array, mu: Array) -> IntArray:
        """Advance over steps; return (steps, lots) vehicles present at the end of each step."""
        history = np.empty(lam.shape, dtype=np.int64)
        for step in range(lam.shape[0]):
            free = self.capacity - self.present
            arrived = self.rng.binomial(free, -np.expm1(-lam[step] * step_s))
            left = self.rng.binomial(self.present, -np.expm1(-mu[step] * step_s))
            self.present = self.present + arrived - left
            history[step] = self.present
        return history
