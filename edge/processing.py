"""Turn raw sensor events into readings: spot debounce, traffic intervals, pass-through."""

from __future__ import annotations

import logging
import math
from collections import deque
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
    whole: bool = True  # False: the agent started listening after the interval began
    counts: dict[str | None, list[float]] = field(default_factory=dict)  # lane -> [n, speed, occ]
    revision: int = 0
    revised: set[str | None] = field(default_factory=set)  # lanes with late detections unsent

    def add(self, event: SensorEvent) -> None:
        totals = self.counts.setdefault(event.sub_id, [0.0, 0.0, 0.0])
        totals[0] += 1
        totals[1] += event.value
        totals[2] += event.duration


# (lane, interval start, kind, value, revision)
IntervalReading = tuple[str | None, float, str, float, int]


class TrafficCounter:
    """Count vehicle detections into intervals aligned to wall-clock boundaries.

    Every known lane reports every interval, zero counts included (no traffic is data too).
    When the interval length changes, the open interval ends at the next boundary of the new
    grid, so intervals stay aligned. An interval is sent `grace_s` after it ends; a detection
    that reaches the agent later still counts: its interval is sent again with the next
    revision (the store keeps the highest), for `revise_within_s` after the interval ended.
    Later ones, and those of an interval the agent did not listen to whole (the one it started
    in), are counted in `dropped`: a count that missed vehicles is never sent as complete.
    """

    def __init__(self, settings: TrafficSection, since: float | None = None) -> None:
        self.settings = settings
        self._since = since  # when the agent started listening; None: at the first event
        self._open: _Interval | None = None
        self._sent: deque[_Interval] = deque()  # still open to revision, oldest first
        self._lanes: set[str | None] = set()
        self._pending: list[SensorEvent] = []
        self.late = 0  # detections that came after their interval was sent: sent revised
        self.dropped = 0  # detections no interval could take: counted here only
        self._dropped_logged = 0

    @property
    def lanes(self) -> int:
        """How many lanes have reported a vehicle."""
        return len(self._lanes)

    def observe(self, event: SensorEvent) -> None:
        """Take one vehicle detection (value = speed km/h, duration = s over the detector)."""
        self._lanes.add(event.sub_id)
        current = self._open or self._begin(event.at)
        if event.at >= current.end:
            self._pending.append(event)  # counted once the open interval is closed
        elif event.at >= current.start:
            current.add(event)
        else:
            self._late(event)

    def due(self, now: float) -> list[IntervalReading]:
        """Return the readings of every interval closed by `now`, and revisions of sent ones."""
        out: list[IntervalReading] = []
        current = self._open or self._begin(now)
        while now >= current.end + self.settings.grace_s:
            if current.whole:
                out.extend(self._close(current))
                self._sent.append(current)
            elif self._lanes:
                log.info(
                    "traffic interval from %.0f not sent: the agent started listening %.0f s "
                    "into it, so its counts are partial", current.start,
                    (self._since or current.start) - current.start,
                )  # fmt: skip
            current = self._open = self._interval_from(current.end)
            pending, self._pending = self._pending, []
            for event in pending:
                self.observe(event)
        out.extend(self._revisions())
        while self._sent and now - self._sent[0].end > self.settings.revise_within_s:
            self._sent.popleft()
        self._log_dropped()
        return out

    def _begin(self, now: float) -> _Interval:
        since = now if self._since is None else self._since
        self._since = since
        interval = self._interval_from(_floor(since, self.settings.interval_s))
        interval.whole = since <= interval.start
        self._open = interval
        return interval

    def _late(self, event: SensorEvent) -> None:
        for interval in reversed(self._sent):
            if interval.start <= event.at < interval.end:
                interval.add(event)
                interval.revised.add(event.sub_id)
                self.late += 1
                return
        self.dropped += 1

    def _revisions(self) -> list[IntervalReading]:
        out: list[IntervalReading] = []
        for interval in self._sent:
            if interval.revised:
                interval.revision += 1
                lanes = sorted(interval.revised, key=lambda lane: lane or "")
                log.info(
                    "traffic interval from %.0f sent again (revision %d): late detections on "
                    "%s", interval.start, interval.revision, ", ".join(map(str, lanes)),
                )  # fmt: skip
                for lane in lanes:
                    out.extend(self._lane(interval, lane))
                interval.revised.clear()
        return out

    def _log_dropped(self) -> None:
        if self.dropped > self._dropped_logged:
            log.warning(
                "%d vehicle detections came too late to count (%d in all): older than "
                "traffic.revise_within_s = %g s, or before the agent started listening",
                self.dropped - self._dropped_logged, self.dropped, self.settings.revise_within_s,
            )  # fmt: skip
            self._dropped_logged = self.dropped

    def _interval_from(self, start: float) -> _Interval:
        length = self.settings.interval_s
        return _Interval(start, _floor(start, length) + length)

    def _close(self, interval: _Interval) -> list[IntervalReading]:
        out: list[IntervalReading] = []
        for lane in sorted(self._lanes, key=lambda lane: lane or ""):
            out.extend(self._lane(interval, lane))
        return out

    @staticmethod
    def _lane(interval: _Interval, lane: str | None) -> list[IntervalReading]:
        count, speed_sum, on_detector = interval.counts.get(lane, [0.0, 0.0, 0.0])
        start, revision = interval.start, interval.revision
        out: list[IntervalReading] = [(lane, start, "vehicle_count", count, revision)]
        if count:
            out.append((lane, start, "mean_speed", round(speed_sum / count, 2), revision))
        share = min(100.0, 100.0 * on_detector / (interval.end - interval.start))
        out.append((lane, start, "detector_occupancy", round(share, 2), revision))
        return out


def _floor(moment: float, length: int) -> float:
    return math.floor(moment / length) * length


class Processor:
    """Route events: presence to the debouncer, vehicles to the counter, kinds pass through."""

    def __init__(
        self,
        device_id: str,
        parking: ParkingSection,
        traffic: TrafficSection,
        clock: ClockGuard,
        *,
        started_at: float | None = None,
    ) -> None:
        self.device_id = device_id
        self.parking = ParkingDebouncer(parking)
        self.traffic = TrafficCounter(traffic, started_at)
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
        for lane, start, kind, value, revision in self.traffic.due(now):
            out.append(self._checked(lane, start, kind, value, revision))
        return out

    def _checked(
        self, sub_id: str | None, at: float, kind: str, value: float, revision: int = 0
    ) -> Reading:
        reading = self._reading(sub_id, at, kind, value, revision)
        assert reading is not None, "the agent's own readings are always valid"
        return reading

    def _reading(
        self, sub_id: str | None, at: float, kind: str, value: float, revision: int = 0
    ) -> Reading | None:
        millis = round(at * 1000)  # millisecond times: a re-sent reading is the same reading
        try:
            return Reading(
                device_id=self.device_id,
                kind=kind,
                observed_at=epoch_to_datetime(millis / 1000),
                value=value,
                sub_id=sub_id,
                clock_suspect=self.clock.suspect(millis / 1000),
                revision=revision,
            )
        except ValueError as exc:
            self.rejected += 1
            log.warning(
                "rejected sensor event %s/%s = %r at %.3f: %s", sub_id, kind, value, at, exc
            )
            return None
