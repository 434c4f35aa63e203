"""Turn raw sensor events into readings: spot debounce, traffic intervals, pass-through."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from edge.clock import ClockGuard
from edge.config import ParkingSection, TrafficSection
from edge.drivers import PRESENCE, VEHICLE, SensorEvent
from streetsense.readings import Reading, epoch_to_datetime

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Spot:
    raw: bool  # what the sensor says now
    raw_since: float  # since when it says so
    state: bool | None = None  # debounced state; None until first confirmed
    last_sent: float = -math.inf


class ParkingDebouncer:
    """Debounce spot presence with hysteresis and re-send every spot's state periodically.

    A spot becomes occupied once a car has been present for `occupied_after_s`, free once it
    has been absent for `free_after_s`. A change is stamped with the moment the car arrived or
    left (not when it was confirmed), so occupancy is not shifted by the debounce delay.
    """

    def __init__(self, settings: ParkingSection) -> None:
        self.settings = settings
        self._spots: dict[str | None, _Spot] = {}

    def observe(self, event: SensorEvent) -> None:
        """Take one raw presence event."""
        present = event.value >= 0.5
        spot = self._spots.get(event.sub_id)
        if spot is None:
            self._spots[event.sub_id] = _Spot(present, event.at)
        elif spot.raw != present:
            spot.raw, spot.raw_since = present, event.at

    def due(self, now: float) -> list[tuple[str | None, float, bool]]:
        """Return (spot, time, occupied) for confirmed changes and heartbeats due by `now`."""
        out: list[tuple[str | None, float, bool]] = []
        for sub_id, spot in self._spots.items():
            hold = self.settings.occupied_after_s if spot.raw else self.settings.free_after_s
            if spot.raw != spot.state and now - spot.raw_since >= hold:
                spot.state = spot.raw
                spot.last_sent = max(spot.raw_since, spot.last_sent + 0.001)
                out.append((sub_id, spot.last_sent, spot.raw))
            elif (
                spot.state is not None
                and spot.raw == spot.state  # no pending change: the state is current
                and now - spot.last_sent >= self.settings.heartbeat_s
            ):
                spot.last_sent = now
                out.append((sub_id, now, spot.state))
        return out


@dataclass(slots=True)
class _Interval:
    start: float
    end: float
    counts: dict[str | None, list[float]] = field(default_factory=dict)  # lane -> [n, speed, occ]


class TrafficCounter:
    """Count vehicle detections into intervals aligned to wall-clock boundaries.

    Every known lane reports every interval, zero counts included (no traffic is data too).
    When the interval length changes, the open interval ends at the next boundary of the new
    grid, so intervals stay aligned.
    """

    def __init__(self, settings: TrafficSection) -> None:
        self.settings = settings
        self._open: _Interval | None = None
        self._lanes: set[str | None] = set()
        self._pending: list[SensorEvent] = []
        self.late = 0

    def observe(self, event: SensorEvent) -> None:
        """Take one vehicle detection (value = speed km/h, duration = s over the detector)."""
        self._lanes.add(event.sub_id)
        if self._open is None:
            self._open = self._interval_from(_floor(event.at, self.settings.interval_s))
        if event.at < self._open.start:
            self.late += 1
            log.warning("vehicle at %.3f is before the open interval; counted as late", event.at)
        elif event.at >= self._open.end:
            self._pending.append(event)  # counted once the open interval is closed
        else:
            totals = self._open.counts.setdefault(event.sub_id, [0.0, 0.0, 0.0])
            totals[0] += 1
            totals[1] += event.value
            totals[2] += event.duration

    def due(self, now: float) -> list[tuple[str | None, float, str, float]]:
        """Return (lane, interval start, kind, value) for every interval closed by `now`."""
        out: list[tuple[str | None, float, str, float]] = []
        while self._open is not None and now >= self._open.end + self.settings.grace_s:
            out.extend(self._close(self._open))
            self._open = self._interval_from(self._open.end)
            pending, self._pending = self._pending, []
            for event in pending:
                self.observe(event)
        return out

    def _interval_from(self, start: float) -> _Interval:
        length = self.settings.interval_s
        return _Interval(start, _floor(start, length) + length)

    def _close(self, interval: _Interval) -> list[tuple[str | None, float, str, float]]:
        out: list[tuple[str | None, float, str, float]] = []
        for lane in sorted(self._lanes, key=lambda lane: lane or ""):
            count, speed_sum, on_detector = interval.counts.get(lane, [0.0, 0.0, 0.0])
            out.append((lane, interval.start, "vehicle_count", count))
            if count:
                out.append((lane, interval.start, "mean_speed", round(speed_sum / count, 2)))
            share = min(100.0, 100.0 * on_detector / (interval.end - interval.start))
            out.append((lane, interval.start, "detector_occupancy", round(share, 2)))
        return out


def _floor(moment: float, length: int) -> float:
    return math.floor(moment / length) * length


class Processor:
    """Route events: presence to the debouncer, vehicles to the counter, kinds pass through."""

    def __init__(
        self, device_id: str, parking: ParkingSection, traffic: TrafficSection, clock: ClockGuard
    ) -> None:
        self.device_id = device_id
        self.parking = ParkingDebouncer(parking)
        self.traffic = TrafficCounter(traffic)
        self.clock = clock
        self.rejected = 0

    def reconfigure(self, parking: ParkingSection, traffic: TrafficSection) -> None:
        """Apply new thresholds and interval length without losing state."""
        self.parking.settings = parking
        self.traffic.settings = traffic

    def accept(self, events: list[SensorEvent]) -> list[Reading]:
        """Take raw events; return the pass-through readings they yield at once."""
        out: list[Reading] = []
        for event in events:
            if event.name == PRESENCE:
                self.parking.observe(event)
            elif event.name == VEHICLE:
                self.traffic.observe(event)
            else:
                reading = self._reading(event.sub_id, event.at, event.name, event.value)
                if reading is not None:
                    out.append(reading)
        return out

    def tick(self, now: float) -> list[Reading]:
        """Return readings that time makes due: confirmed spot changes, heartbeats, intervals."""
        out: list[Reading] = []
        for spot, at, occupied in self.parking.due(now):
            out.append(self._checked(spot, at, "occupied", 1.0 if occupied else 0.0))
        for lane, start, kind, value in self.traffic.due(now):
            out.append(self._checked(lane, start, kind, value))
        return out

    def _checked(self, sub_id: str | None, at: float, kind: str, value: float) -> Reading:
        reading = self._reading(sub_id, at, kind, value)
        assert reading is not None, "the agent's own readings are always valid"
        return reading

    def _reading(self, sub_id: str | None, at: float, kind: str, value: float) -> Reading | None:
        millis = round(at * 1000)  # millisecond times: a re-sent reading is the same reading
        try:
            return Reading(
                device_id=self.device_id,
                kind=kind,
                observed_at=epoch_to_datetime(millis / 1000),
                value=value,
                sub_id=sub_id,
                clock_suspect=self.clock.suspect(millis / 1000),
            )
        except ValueError as exc:
            self.rejected += 1
            log.warning(
                "rejected sensor event %s/%s = %r at %.3f: %s", sub_id, kind, value, at, exc
            )
            return None
