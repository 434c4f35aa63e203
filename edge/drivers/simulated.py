"""A simple built-in sensor model: spots with arrivals and departures, lanes, a lamp.

Richer models live in `simulators/` and plug in through the same `SensorDriver` Protocol.
Time can be accelerated (`driver.speed`); every event has a distinct millisecond so the store's
unique key (device, kind, sub_id, time) never mistakes two events for one.
"""

from __future__ import annotations

import math
import random
import time

from edge.config import DriverSection
from edge.drivers import PRESENCE, VEHICLE, SensorEvent

LAMP_RATED_W = 120.0


class SimulatedDriver:
    """Poisson events at `event_rate` per virtual second over spots, lanes and a lamp."""

    def __init__(self, section: DriverSection) -> None:
        self._random = random.Random(section.seed)  # noqa: S311 - a model, not cryptography
        self._speed = section.speed
        self._rate = section.event_rate
        self._spots = [f"S{n}" for n in range(1, section.spots + 1)]
        self._lanes = [f"L{n}" for n in range(1, section.lanes + 1)]
        self._lamp = section.lamp
        self._present = dict.fromkeys(self._spots, False)
        self._origin = time.time()
        self._started = time.monotonic()
        self._next_at = self._origin
        self._last_ms = 0
        self._lamp_turn = 0

    def now(self) -> float:
        """Return the virtual clock."""
        return self._origin + (time.monotonic() - self._started) * self._speed

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return the events due by now, waiting up to `timeout` seconds for the next one."""
        wait = (self._next_at - self.now()) / self._speed
        if wait > 0:
            time.sleep(min(timeout, wait))
        events: list[SensorEvent] = []
        clock = self.now()
        while self._next_at <= clock and len(events) < 10_000:
            events.append(self._event(self._next_at))
            self._next_at += self._random.expovariate(self._rate)
        return events

    def close(self) -> None:
        """Nothing to release."""

    def _event(self, at: float) -> SensorEvent:
        # Distinct milliseconds, strictly increasing.
        millis = max(round(at * 1000), self._last_ms + 1)
        self._last_ms = millis
        moment = millis / 1000
        choices = [c for c, on in (("spot", self._spots), ("lane", self._lanes)) if on]
        if self._lamp:
            choices.append("lamp")
        if not choices:
            return SensorEvent(moment, "rssi", -60.0 - self._random.random() * 30)
        choice = self._random.choice(choices)
        if choice == "spot":
            spot = self._random.choice(self._spots)
            self._present[spot] = not self._present[spot]
            return SensorEvent(moment, PRESENCE, float(self._present[spot]), spot)
        if choice == "lane":
            speed = max(5.0, self._random.gauss(45.0, 10.0))
            return SensorEvent(
                moment, VEHICLE, round(speed, 1), self._random.choice(self._lanes), 0.3
            )
        return self._lamp_event(moment)

    def _lamp_event(self, moment: float) -> SensorEvent:
        hour = (moment % 86_400) / 3600
        # Full at night, off by day, a ramp around dawn (6-7 h) and dusk (17-18 h).
        level = min(1.0, max(0.0, math.cos((hour - 0.5) / 24 * 2 * math.pi) * 2 + 0.5))
        self._lamp_turn ^= 1
        if self._lamp_turn:
            return SensorEvent(moment, "lamp_dimming", round(level * 100, 1))
        return SensorEvent(moment, "lamp_power", round(level * LAMP_RATED_W + 1.5, 1))
