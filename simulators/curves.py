"""Hourly curves from simulated readings: what planners will see once the data is stored."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.city import Character, City
from simulators.demand import Array
from streetsense.readings import Reading, datetime_to_epoch
from streetsense.registry import LotKind


@dataclass(frozen=True, slots=True)
class Curves:
    """Hourly series from `start`: occupancy share per lot character, flow per segment, speed."""

    start: float
    occupancy: dict[Character, Array]
    inbound_vph: Array
    outbound_vph: Array
    speed_kmh: Array


def hourly_curves(city: City, readings: Sequence[Reading], start: float, hours: int) -> Curves:
    """Turn readings into hourly curves (spot states sampled every minute, counters averaged)."""
    share = _lot_shares(city, readings, start, hours)
    occupancy = {
        character: np.nanmean(
            np.array([share[lot.id] for lot in city.lots if lot.character is character]), axis=0
        )
        for character in Character
        if any(lot.character is character for lot in city.lots)
    }
    inbound, outbound, speed = _traffic(city, readings, start, hours)
    return Curves(start, occupancy, inbound, outbound, speed)


def _hour(reading: Reading, start: float) -> int:
    return int((datetime_to_epoch(reading.observed_at) - start) // 3600)


def _lot_shares(
    city: City, readings: Sequence[Reading], start: float, hours: int
) -> dict[str, Array]:
    sums: defaultdict[str, Array] = defaultdict(lambda: np.zeros(hours))
    counts: defaultdict[str, Array] = defaultdict(lambda: np.zeros(hours))
    garages = {lot.device_id: lot for lot in city.lots if lot.kind is LotKind.OFF_STREET}
    for reading in readings:
        lot = garages.get(reading.device_id)
        hour = _hour(reading, start)
        if lot is not None and reading.kind == "occupied_spaces" and 0 <= hour < hours:
            sums[lot.id][hour] += reading.value / lot.capacity
            counts[lot.id][hour] += 1
    shares = {lot: sums[lot] / np.maximum(counts[lot], 1) for lot in sums}
    shares.update(_street_shares(city, readings, start, hours))
    return shares


def _street_shares(
    city: City, readings: Sequence[Reading], start: float, hours: int
) -> dict[str, Array]:
    minutes = start + 60.0 * np.arange(hours * 60)
    shares = {}
    for lot in city.lots:
        if lot.kind is not LotKind.ON_STREET:
            continue
        mine = [r for r in readings if r.device_id == lot.device_id and r.kind == "occupied"]
        taken = np.zeros(minutes.size)
        for sensor in lot.sensors:
            events = [
                (datetime_to_epoch(r.observed_at), r.value) for r in mine if r.sub_id == sensor
            ]
            if not events:
                continue
            times, values = np.array(events).T
            # The state holds from each event to the next: sample it every minute.
            index = np.searchsorted(times, minutes, side="right") - 1
            taken += np.where(index >= 0, values[np.maximum(index, 0)], np.nan)
        shares[lot.id] = (taken / len(lot.sensors)).reshape(hours, 60).mean(axis=1)
    return shares


def _traffic(
    city: City, readings: Sequence[Reading], start: float, hours: int
) -> tuple[Array, Array, Array]:
    inbound_ids = {s.counter_id for s in city.segments if s.inbound}
    inbound, outbound = np.zeros(hours), np.zeros(hours)
    speed_sum, speed_weight = np.zeros(hours), np.zeros(hours)
    counts: dict[tuple[str, str | None, float], float] = {}
    for reading in readings:
        if reading.kind == "vehicle_count":
            counts[(reading.device_id, reading.sub_id, reading.observed_at.timestamp())] = (
                reading.value
            )
    for reading in readings:
        hour = _hour(reading, start)
        if not 0 <= hour < hours:
            continue
        if reading.kind == "vehicle_count":
            if reading.device_id in inbound_ids:
                inbound[hour] += reading.value / len(inbound_ids)
            else:
                outbound[hour] += reading.value / max(len(city.segments) - len(inbound_ids), 1)
        elif reading.kind == "mean_speed":
            key = (reading.device_id, reading.sub_id, reading.observed_at.timestamp())
            speed_sum[hour] += reading.value * counts.get(key, 0.0)
            speed_weight[hour] += counts.get(key, 0.0)
    return inbound, outbound, speed_sum / np.maximum(speed_weight, 1.0)
