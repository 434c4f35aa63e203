"""Detections that reach the agent after their interval was sent: end to end, nothing missed.

A sensor process starved of CPU (or a serial line that lagged) hands the agent detections
later than the grace period allows. The agent used to send those intervals short (zero at
worst) and log the stragglers as late; now it sends them again revised, ingest stores the
higher revision, and the rollups carry every vehicle.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from edge.agent import Agent
from edge.drivers import VEHICLE, SensorEvent
from harness.ingest import count, ingest_thread, wait_until
from simulators.agents import agent_config
from store.registry import store_registry
from store.rollups import refresh
from streetsense.config import Settings, with_overrides
from streetsense.lifecycle import StopSignal
from tests.store.support import city

SPEED = 30.0  # device seconds per real second
LAG_S = 20.0  # how long after a vehicle passed the agent hears of it (grace is 2 s)
MINUTES = 6


class LaggingDriver:
    """Vehicles every 2 device seconds on two lanes, handed over LAG_S after they passed."""

    def __init__(self, first_interval: float) -> None:
        self._origin = first_interval - 5.0  # the agent starts before its first interval
        self._started = time.monotonic()
        self.events = [
            SensorEvent(first_interval + 1.0 + 2 * n, VEHICLE, 50.0, f"L{n % 2 + 1}", 0.4)
            for n in range(MINUTES * 30)
        ]
        self._next = 0

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._started) * SPEED

    def poll(self, timeout: float) -> list[SensorEvent]:
        time.sleep(timeout)
        clock = self.now()
        due = []
        while self._next < len(self.events) and self.events[self._next].at + LAG_S <= clock:
            due.append(self.events[self._next])
            self._next += 1
        return due

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def agent_running(settings: Settings, tmp_path: Path) -> Iterator[tuple[Agent, LaggingDriver]]:
    """A real agent for the city's traffic loop, fed by the lagging driver, in a thread."""
    first_interval = math.floor(time.time() / 60) * 60 - 3600.0  # an hour ago: never "future"
    driver = LaggingDriver(first_interval)
    config = agent_config(
        settings, "centre", "loop", tmp_path,
        traffic={"interval_s": 60, "grace_s": 2.0},
        status={"heartbeat_s": 1.0},
        buffer={"synchronous": "normal"},
    )  # fmt: skip
    agent = Agent(config, driver=driver, stop=StopSignal())
    thread = threading.Thread(target=agent.run, name="agent-loop", daemon=True)
    thread.start()
    yield agent, driver
    agent.stop.stop()
    thread.join(30)


def test_late_detections_are_stored_as_revisions_and_reach_the_rollups(
    settings: Settings, agent_running: tuple[Agent, LaggingDriver]
) -> None:
    url = settings.database.url
    with psycopg.connect(url) as conn, conn.transaction():
        store_registry(conn, city(), "tests")
    agent, driver = agent_running
    stored = "SELECT coalesce(sum(value), 0) FROM readings WHERE kind = 'vehicle_count'"
    with ingest_thread(settings):
        every_vehicle = wait_until(lambda: count(url, stored) == len(driver.events), 60)
        late = "SELECT (status->>'late_detections')::float8 FROM device_state"
        assert wait_until(lambda: (count(url, late) or 0) > 0, 20)
    assert every_vehicle, f"{count(url, stored)} of {len(driver.events)} vehicles stored"
    assert agent.processor.traffic.late > 0
    assert agent.processor.traffic.dropped == 0
    assert count(url, "SELECT count(*) FROM readings WHERE revision > 0") > 0
    whole = with_overrides(settings, database={"timescale": "off"})
    with psycopg.connect(url, autocommit=True) as conn:
        refresh(conn, whole)
        rolled = conn.execute("SELECT sum(vehicle_count) FROM flow_5m").fetchone()
    assert rolled == (len(driver.events),)
