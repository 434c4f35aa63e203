"""Real edge agents driven by the city models: the same agent code a pole-mounted device runs.

`CityDriver` implements the edge `SensorDriver` Protocol. It turns the models' output into
the raw events hardware produces (presence detections with the odd false blip, single
vehicles with speed and time over the detector), so the agent's debounce and interval
counting do their real work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from edge.agent import Agent
from edge.config import AgentConfig, validate
from edge.drivers import PRESENCE, VEHICLE, SensorDriver, SensorEvent
from simulators.city import City
from simulators.demand import Calendar
from simulators.world import Cadence, CitySimulation
from streetsense.config import Settings
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading, datetime_to_epoch

log = logging.getLogger(__name__)
# Effective length a vehicle covers the loop for (vehicle plus detector), metres.
DETECTION_LENGTH_M = 5.5
FALSE_BLIP_SHARE = 0.15
CHUNK_S = 60.0


def sub_city(city: City, device_id: str) -> City:
    """Return the part of the city one device sees: its lot or its segment."""
    lots = tuple(lot for lot in city.lots if lot.device_id == device_id)
    segments = tuple(
        s for s in city.segments if device_id == s.counter_id or device_id in s.lamp_ids
    )
    if not lots and not segments:
        raise ValueError(f"device {device_id!r} is not in the city")
    segments = tuple(
        replace(s, lamp_ids=tuple(x for x in s.lamp_ids if x == device_id)) for s in segments
    )
    return replace(city, lots=lots, segments=segments)


class CityDriver:
    """Raw sensor events of one device of the simulated city, on a clock `speed` times real."""

    def __init__(
        self,
        city: City,
        calendar: Calendar,
        device_id: str,
        *,
        speed: float = 1.0,
        start: float | None = None,
        cadence: Cadence | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.device_id = device_id
        self.speed = speed
        self._monotonic = monotonic  # tests step it by hand
        self._origin = time.time() if start is None else start
        self._started = monotonic()
        world = sub_city(city, device_id)
        # The agent sends its own heartbeats; the model must not invent extra ones.
        cadence = replace(cadence or Cadence(), heartbeat_s=0.0)
        self._simulation = CitySimulation(world, calendar, self._origin, cadence)
        self._interval = cadence.traffic_interval_s
        self._rng = np.random.default_rng([city.seed, sum(device_id.encode())])
        self._events: deque[SensorEvent] = deque()

    def now(self) -> float:
        """Return the device clock: the simulation's time."""
        return self._origin + (self._monotonic() - self._started) * self.speed

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return the events due by now, waiting up to `timeout` seconds for the next one."""
        clock = self.now()
        # The model yields a traffic interval's vehicles only once it has run past the
        # interval's end: it must run a whole interval ahead, or a vehicle due now would be
        # made (and reach the agent) only after the agent had sent its interval.
        if self._simulation.now < clock + self._interval + CHUNK_S:
            self._extend(clock + self._interval + 2 * CHUNK_S)
        if not self._events or self._events[0].at > clock:
            wait = (self._events[0].at - clock) / self.speed if self._events else timeout
            time.sleep(max(0.0, min(timeout, wait)))
            clock = self.now()
        due: list[SensorEvent] = []
        while self._events and self._events[0].at <= clock:
            due.append(self._events.popleft())
        return due

    def close(self) -> None:
        """Nothing to release."""

    def _extend(self, until: float) -> None:
        readings = [r for r in self._simulation.advance(until) if r.device_id == self.device_id]
        speeds = {(r.observed_at, r.sub_id): r.value for r in readings if r.kind == "mean_speed"}
        fresh: list[SensorEvent] = []
        for reading in readings:
            if reading.kind == "vehicle_count":
                speed = speeds.get((reading.observed_at, reading.sub_id), 50.0)
                at = datetime_to_epoch(reading.observed_at)
                fresh += self._vehicles(at, int(reading.value), reading.sub_id, speed)
            else:
                fresh += self._raw(reading)
        # A sensor reports nothing from before it was switched on: no vehicle that passed
        # earlier, and a spot's state as it was found at switch-on.
        fresh = [
            event if event.at >= self._origin else replace(event, at=self._origin)
            for event in fresh
            if event.at >= self._origin or event.name != VEHICLE
        ]
        merged = sorted([*self._events, *fresh], key=lambda e: e.at)
        self._events = deque(merged)

    def _raw(self, reading: Reading) -> list[SensorEvent]:
        at = datetime_to_epoch(reading.observed_at)
        if reading.kind == "occupied":
            events = [SensorEvent(at, PRESENCE, reading.value, reading.sub_id)]
            if reading.value and self._rng.random() < FALSE_BLIP_SHARE:
                # A pedestrian or a passing van: seconds of presence the debounce must ignore.
                blip = at - 20.0
                events += [
                    SensorEvent(blip, PRESENCE, 1.0, reading.sub_id),
                    SensorEvent(blip + 3.0, PRESENCE, 0.0, reading.sub_id),
                ]
            return events
        if reading.kind in ("mean_speed", "detector_occupancy"):
            return []  # the agent measures these itself from the single vehicles
        return [SensorEvent(at, reading.kind, reading.value, reading.sub_id)]

    def _vehicles(
        self, start: float, count: int, lane: str | None, speed: float
    ) -> list[SensorEvent]:
        if count == 0:
            return []
        times = np.sort(start + self._rng.random(count) * self._interval)
        speeds = np.clip(speed * self._rng.normal(1.0, 0.08, count), 3.0, 200.0)
        durations = DETECTION_LENGTH_M / (speeds / 3.6)
        return [
            SensorEvent(round(float(t), 3), VEHICLE, round(float(v), 1), lane, float(d))
            for t, v, d in zip(times, speeds, durations, strict=True)
        ]


def agent_config(
    settings: Settings, site: str, device_id: str, state_dir: Path, **sections: dict[str, object]
) -> AgentConfig:
    """Return an edge agent configuration for one simulated device on the city's broker.

    Its confirmation key is `<state_dir>/keys/<device>.key`, as `streetsense registry key
    --out <state_dir>/keys` writes it (without it the agent trusts no confirmation).
    """
    config = AgentConfig()
    key_file = state_dir / "keys" / f"{device_id}.key"
    config = replace(
        config,
        device=replace(
            config.device,
            site=site,
            id=device_id,
            confirm_key_file=str(key_file) if key_file.exists() else "",
        ),
        mqtt=replace(
            config.mqtt,
            url=settings.mqtt.url,
            topic_prefix=settings.mqtt.topic_prefix,
            protocol=settings.mqtt.protocol,
        ),
        buffer=replace(config.buffer, path=str(state_dir / f"{device_id}.sqlite")),
    )
    for name, values in sections.items():
        config = replace(config, **{name: replace(getattr(config, name), **values)})
    validate(config)
    return config


class AgentFleet:
    """A few real agents in threads of this process, each with its own buffer and link."""

    def __init__(self, members: Sequence[tuple[AgentConfig, SensorDriver]]) -> None:
        self.stop = StopSignal()
        self.agents = [Agent(config, driver=driver, stop=self.stop) for config, driver in members]
        self.threads = [
            threading.Thread(target=a.run, name=f"agent-{a.config.device.id}", daemon=True)
            for a in self.agents
        ]

    def __enter__(self) -> AgentFleet:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.stop()
        for thread in self.threads:
            thread.join(30)
            if thread.is_alive():
                log.warning("%s did not stop within 30 s", thread.name)
