"""The simulated city running over time: demand into models, models into readings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from simulators.city import MEAN_STAY_H, Character, City, SimLot
from simulators.demand import (
    Array,
    Calendar,
    event_fill,
    event_traffic,
    parking_profile,
    traffic_profile,
)
from simulators.incidents import Incident, capacity_factors
from simulators.parking import LotCounters, SpotChains, rates
from simulators.traffic import SegmentQueues, lane_split
from streetsense.readings import Reading, epoch_to_datetime
from streetsense.registry import LotKind


@dataclass(frozen=True, slots=True)
class Cadence:
    """How often each kind of device reports, in seconds (traffic intervals align to the clock)."""

    parking_step_s: float = 60.0
    traffic_interval_s: float = 300.0
    counter_interval_s: float = 300.0
    lamp_interval_s: float = 900.0
    heartbeat_s: float = 3600.0  # gateways repeat every spot's state this often; 0: never
    status_s: float = 3600.0  # battery and signal of gateways and counters; 0: never


def lot_targets(city: City, calendar: Calendar, times: Array) -> Array:
    """Return (times, lots): the occupancy share each lot's demand asks for."""
    hours, day_types = calendar.local_hours(times)
    demand, _ = calendar.weather(times)
    fill = event_fill(calendar.events_between(float(times[0]), float(times[-1])), times)
    profiles = {c: parking_profile(c, hours, day_types) for c in Character}
    target = np.empty((times.size, len(city.lots)))
    for index, lot in enumerate(city.lots):
        # Residents park whatever the weather; shoppers and commuters react to it.
        weather = 1.0 if lot.character is Character.RESIDENTIAL else demand
        target[:, index] = profiles[lot.character] * lot.demand_scale * weather
        if lot.character is Character.VENUE:
            target[:, index] = np.maximum(target[:, index], fill)
    return np.clip(target, 0.0, 1.0)


def segment_demand(city: City, calendar: Calendar, times: Array) -> tuple[Array, Array]:
    """Return (times, segments) demand and effective capacity, both in vehicles per hour."""
    hours, day_types = calendar.local_hours(times)
    demand, capacity_factor = calendar.weather(times)
    events = calendar.events_between(float(times[0]), float(times[-1]))
    wanted = np.empty((times.size, len(city.segments)))
    capacity = np.empty_like(wanted)
    for index, segment in enumerate(city.segments):
        share = traffic_profile(segment.inbound, hours, day_types) * segment.demand_scale
        share = share + event_traffic(events, segment, times)
        wanted[:, index] = share * demand * segment.capacity_vph
        capacity[:, index] = segment.capacity_vph * capacity_factor
    return wanted, capacity


def lamp_level(latitude: float, hours: Array, day_of_year: Array, busy: Array) -> Array:
    """Return the lamp light level (%): off by day, full when busy at night, dimmed otherwise."""
    declination = np.radians(23.44) * np.sin(2 * np.pi * (284 + day_of_year) / 365.0)
    cos_hour = np.clip(-np.tan(np.radians(latitude)) * np.tan(declination), -1.0, 1.0)
    half_day_h = np.degrees(np.arccos(cos_hour)) / 15.0
    noon = 12.5  # civil noon lags solar noon in most of a time zone
    dark = np.abs(hours - noon) > half_day_h + 0.4  # lamps switch at civil twilight
    return np.where(dark, np.where(busy, 100.0, 40.0), 0.0)


class CitySimulation:
    """The city advanced in chunks; the same seed and start give the same readings."""

    def __init__(
        self,
        city: City,
        calendar: Calendar,
        start: float,
        cadence: Cadence | None = None,
        incidents: tuple[Incident, ...] = (),
    ) -> None:
        self.city = city
        self.incidents = incidents
        self.calendar = calendar
        self.cadence = cadence or Cadence()
        step = self.cadence.parking_step_s
        self.now = math.floor(start / step) * step
        rng = np.random.default_rng([city.seed, int(self.now)])
        self.rng = rng
        self.street = [lot for lot in city.lots if lot.kind is LotKind.ON_STREET]
        self.garages = [lot for lot in city.lots if lot.kind is LotKind.OFF_STREET]
        lot_of_spot = np.repeat(np.arange(len(self.street)), [len(x.sensors) for x in self.street])
        self.spot_names = [(lot, sensor) for lot in self.street for sensor in lot.sensors]
        self.chains = SpotChains(lot_of_spot.astype(np.int64), rng)
        self.counters = LotCounters(np.array([g.capacity for g in self.garages], np.int64), rng)
        self.queues = SegmentQueues(len(city.segments))
        self.lamp_rating = {
            lamp: float(rng.choice([60.0, 90.0, 120.0]))
            for segment in city.segments
            for lamp in segment.lamp_ids
        }
        self._index = {lot.id: i for i, lot in enumerate(city.lots)}
        self._started = False

    def advance(self, end: float) -> list[Reading]:
        """Run the city up to `end` (epoch s); return the readings observed meanwhile."""
        step = self.cadence.parking_step_s
        end = math.floor(end / step) * step
        if end <= self.now:
            return []
        readings: list[Reading] = []
        if not self._started:
            readings += self._start_state()
            self._started = True
        readings += self._parking(self.now, end)
        readings += self._traffic(self.now, end)
        readings += self._status(self.now, end)
        self.now = end
        readings.sort(key=lambda r: r.observed_at)
        return readings

    def _share(self, lots: list[SimLot], times: Array) -> Array:
        targets = lot_targets(self.city, self.calendar, times)
        return targets[:, [self._index[lot.id] for lot in lots]]

    def _start_state(self) -> list[Reading]:
        times = np.array([self.now])
        at = epoch_to_datetime(self.now)
        state = self.chains.start(self._share(self.street, times)[0])
        present = self.counters.start(self._share(self.garages, times)[0])
        readings = [
            Reading(lot.device_id, "occupied", at, float(state[i]), sub_id=sensor)
            for i, (lot, sensor) in enumerate(self.spot_names)
        ]
        readings += [
            Reading(g.device_id, "occupied_spaces", at, float(present[i]))
            for i, g in enumerate(self.garages)
        ]
        return readings

    def _parking(self, start: float, end: float) -> list[Reading]:
        step = self.cadence.parking_step_s
        times = np.arange(start, end + step / 2, step)
        readings: list[Reading] = []
        if self.street:
            share = self._share(self.street, times)
            stay = np.array([MEAN_STAY_H[lot.character] for lot in self.street])
            lam, mu = rates(share[:-1], share[1:], step, stay)
            beats = self._beats(start, end)
            after = {round((beat - start) / step) - 1 for beat in beats}
            events = self.chains.advance(start, step, lam, mu, after)
            readings += self._spot_readings(events.times, events.spots, events.occupied)
            for beat, state in zip(beats, events.snapshots, strict=True):
                readings += self._heartbeat(beat, state)
        if self.garages:
            share = self._share(self.garages, times)
            stay = np.array([MEAN_STAY_H[lot.character] for lot in self.garages])
            lam, mu = rates(share[:-1], share[1:], step, stay)
            present = self.counters.advance(step, lam, mu)
            readings += self._counter_readings(times[1:], present)
        return readings

    def _status(self, start: float, end: float) -> list[Reading]:
        every = self.cadence.status_s
        if every <= 0:
            return []
        first = math.floor(start / every) * every + every
        found: list[Reading] = []
        for moment in np.arange(first, end + 1e-6, every).tolist():
            at = epoch_to_datetime(moment)
            for lot in self.city.lots:
                # Batteries sag a little at night (cold) and radio fades with weather.
                day = (moment % 86_400) / 86_400
                volts = 3.6 + 0.05 * math.sin(2 * math.pi * (day - 0.25))
                rssi = float(np.clip(self.rng.normal(-78.0, 6.0), -125.0, -40.0))
                found.append(Reading(lot.device_id, "battery", at, round(volts, 3)))
                found.append(Reading(lot.device_id, "rssi", at, round(rssi)))
        return found

    def _spot_readings(
        self, times: Array, spots: npt.NDArray[np.int64], occupied: npt.NDArray[np.bool_]
    ) -> list[Reading]:
        found = []
        for moment, spot, value in zip(
            times.tolist(), spots.tolist(), occupied.tolist(), strict=True
        ):
            lot, sensor = self.spot_names[spot]
            # Agents send millisecond times, so a re-sent reading is the same reading.
            at = epoch_to_datetime(round(moment, 3))
            found.append(Reading(lot.device_id, "occupied", at, float(value), sub_id=sensor))
        return found

    def _beats(self, start: float, end: float) -> list[float]:
        every = self.cadence.heartbeat_s
        if every <= 0:
            return []
        first = math.floor(start / every) * every + every
        return np.arange(first, end + 1e-6, every).tolist()

    def _heartbeat(self, beat: float, state: npt.NDArray[np.bool_]) -> list[Reading]:
        # A millisecond before the beat: never the same instant as a change at the step start.
        at = epoch_to_datetime(beat - 0.001)
        return [
            Reading(lot.device_id, "occupied", at, float(state[i]), sub_id=sensor)
            for i, (lot, sensor) in enumerate(self.spot_names)
        ]

    def _counter_readings(self, times: Array, present: npt.NDArray[np.int64]) -> list[Reading]:
        every = self.cadence.counter_interval_s
        found = []
        for row, moment in enumerate(times.tolist()):
            if moment % every:
                continue
            at = epoch_to_datetime(moment)
            for column, garage in enumerate(self.garages):
                value = float(present[row, column])
                found.append(Reading(garage.device_id, "occupied_spaces", at, value))
        return found

    def _traffic(self, start: float, end: float) -> list[Reading]:
        every = self.cadence.traffic_interval_s
        first = math.floor(start / every) * every
        starts = np.arange(first, end - every + 1e-6, every)
        starts = starts[starts + every > start]  # intervals that end inside this chunk
        if starts.size == 0:
            return []
        demand, capacity = segment_demand(self.city, self.calendar, starts + every / 2)
        if self.incidents:
            ids = [s.id for s in self.city.segments]
            capacity = capacity * capacity_factors(starts, every, ids, self.incidents)
        limits = np.array([s.speed_limit_kmh * 1.02 for s in self.city.segments])
        intervals = self.queues.advance(demand, capacity, limits[None, :], every)
        readings: list[Reading] = []
        for index, segment in enumerate(self.city.segments):
            counts, speeds, occupancy = lane_split(
                intervals.flow_vph[:, index], intervals.speed_kmh[:, index],
                segment.lanes, every, self.rng,
            )  # fmt: skip
            for row, moment in enumerate(starts.tolist()):
                # An interval is stamped with its start, so it lands in the bucket it counts.
                at = epoch_to_datetime(moment)
                for lane_index, lane in enumerate(segment.lane_ids):
                    readings += _lane_readings(
                        segment.counter_id, lane, at,
                        int(counts[row, lane_index]), float(speeds[row, lane_index]),
                        float(occupancy[row, lane_index]),
                    )  # fmt: skip
        readings += self._lamps(starts, demand / capacity)
        return readings

    def _lamps(self, starts: Array, busy_share: Array) -> list[Reading]:
        lamp_every = self.cadence.lamp_interval_s
        keep = (starts % lamp_every) == 0
        if not keep.any():
            return []
        times = starts[keep]
        hours, _ = self.calendar.local_hours(times)
        days = np.array(
            [datetime.fromtimestamp(t, UTC).timetuple().tm_yday for t in times.tolist()], float
        )
        readings: list[Reading] = []
        for index, segment in enumerate(self.city.segments):
            level = lamp_level(self.city.centre[0], hours, days, busy_share[keep, index] > 0.15)
            for lamp in segment.lamp_ids:
                rated = self.lamp_rating[lamp]
                power = rated * level / 100.0 * self.rng.normal(1.0, 0.02, level.size) + 0.8
                for moment, lv, watts in zip(
                    times.tolist(), level.tolist(), power.tolist(), strict=True
                ):
                    at = epoch_to_datetime(moment)
                    readings.append(Reading(lamp, "lamp_dimming", at, lv))
                    readings.append(Reading(lamp, "lamp_power", at, round(watts, 1)))
        return readings


def _lane_readings(
    device: str, lane: str, at: datetime, count: int, speed: float, occupancy: float
) -> list[Reading]:
    found = [
        Reading(device, "vehicle_count", at, float(count), sub_id=lane),
        Reading(device, "detector_occupancy", at, round(occupancy, 2), sub_id=lane),
    ]
    if count > 0:  # a counter measures no speed when nothing passed
        found.append(Reading(device, "mean_speed", at, round(speed, 1), sub_id=lane))
    return found
