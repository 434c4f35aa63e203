"""A traffic incident from the simulator to an alert: simulated city -> MQTT (the test broker)
-> ingest -> PostgreSQL -> `streetsense alerts run --once`.

The simulator's incident (a segment keeping a quarter of its capacity, as the `incident` fault
does) is simulated in a Tuesday morning peak, when traffic fills the road, with the edge
agents' 1-minute counts, and re-timed to end at this minute: the rule judges the newest
readings against the real clock, and the morning's traffic is what makes a queue, whatever
time the test runs at. The speed forecast the rule compares with is the same morning without
the incident (what the analytics job would have forecast at best), written as a run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from harness.ingest import ingest_thread, settings_env, wait_until
from simulators.city import City, CitySpec, generate_city
from simulators.demand import Calendar
from simulators.incidents import Incident
from simulators.mqtt import PacedPublisher
from simulators.packs import SequenceBook
from simulators.registry_file import write_registry
from simulators.runner import Tally, deliver, make_packer
from simulators.scenario import INCIDENT_S, INCIDENT_SHARE
from simulators.world import Cadence, CitySimulation
from store.forecasts import Run, write_run
from store.registry import store_registry
from streetsense.config import Settings, with_overrides
from streetsense.readings import Reading
from streetsense.registry import load_registry
from streetsense.topics import Topics

# The morning peak the simulators' incident tests use: a Tuesday, 08:00 UTC.
PEAK = datetime(2026, 11, 17, 8, 0, tzinfo=UTC).timestamp()
STRETCH_S = 40 * 60.0
INCIDENT_AFTER_S = 15 * 60.0  # the road has been blocked for 25 minutes at the end
STEP_S = 300.0
STORED_WITHIN_S = 120.0
RULES = """
defaults = false

[[rule]]
name = "traffic-incident"
kind = "traffic_incident"
"""


def simulate(city: City, incidents: tuple[Incident, ...]) -> list[Reading]:
    """Return the peak's stretch with traffic counted every minute, as the agents count."""
    cadence = Cadence(traffic_interval_s=60.0)
    return CitySimulation(city, Calendar(seed=3), PEAK, cadence, incidents).advance(
        PEAK + STRETCH_S
    )


def retimed(readings: Sequence[Reading], shift_s: float) -> list[Reading]:
    """Return the readings observed `shift_s` later."""
    shift = timedelta(seconds=shift_s)
    return [replace(r, observed_at=r.observed_at + shift) for r in readings]


def band_from(clean: Sequence[Reading], city: City, first: float, steps: int) -> np.ndarray:
    """Return (segments, steps) the vehicle-weighted speed of each 5-minute step from `first`
    in readings without the incident; a step past them repeats the last one."""
    speed_sum = np.zeros((len(city.segments), steps))
    vehicles = np.zeros_like(speed_sum)
    row = {segment.counter_id: i for i, segment in enumerate(city.segments)}
    counts = {(r.device_id, r.sub_id, r.observed_at): r.value for r in clean
              if r.kind == "vehicle_count" and r.device_id in row}  # fmt: skip
    for r in clean:
        if r.kind == "mean_speed" and r.device_id in row:
            step = int((r.observed_at.timestamp() - first) // STEP_S)
            count = counts.get((r.device_id, r.sub_id, r.observed_at), 0.0)
            speed_sum[row[r.device_id], step] += r.value * count
            vehicles[row[r.device_id], step] += count
    with np.errstate(invalid="ignore", divide="ignore"):
        speeds = speed_sum / vehicles
    for k in range(1, steps):  # carried forward to the steps after the stretch
        speeds[:, k] = np.where(np.isnan(speeds[:, k]), speeds[:, k - 1], speeds[:, k])
    return speeds


def streetsense(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line with the test's settings."""
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", *args],
        env=settings_env(settings), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def stored(url: str) -> int:
    """Return how many readings the store holds."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


def test_a_simulated_incident_fires_one_alert_for_its_segment(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    city = generate_city(CitySpec(seed=3, lots=2, segments=4))
    registry = tmp_path / "city.toml"
    write_registry(city, registry)
    url = settings.database.url
    with psycopg.connect(url) as conn:
        store_registry(conn, load_registry(registry), "simulated city")
    settings = with_overrides(settings, ingest={"device_burst": 100_000, "device_rate_per_s": 1e6})
    blocked = city.segments[0]
    incident = Incident(blocked.id, PEAK + INCIDENT_AFTER_S, INCIDENT_S, INCIDENT_SHARE)
    simulated, clean = simulate(city, (incident,)), simulate(city, ())
    # the stretch ends at this minute: its newest readings are the ones the rule judges now
    shift = math.floor(time.time() / 60.0) * 60.0 - (PEAK + STRETCH_S)
    readings = retimed(simulated, shift)
    first = math.floor((PEAK + shift) / STEP_S) * STEP_S
    steps = int((PEAK + shift + STRETCH_S - first) // STEP_S) + 6
    speeds = band_from(retimed(clean, shift), city, first, steps)
    with psycopg.connect(url) as conn, conn.transaction():
        data_end = datetime.fromtimestamp(first, UTC)
        run = Run("speed", 300, data_end, data_end - timedelta(days=28), data_end, steps, "test")
        ids = [segment.id for segment in city.segments]
        write_run(conn, run, ids, speeds, speeds - 6.0, speeds + 6.0, ["test"] * len(ids))
    keys = {(r.device_id, r.kind, r.sub_id or "", r.observed_at) for r in readings}
    messages = make_packer(city, topics, window_s=60.0).pack(readings, SequenceBook())
    with ingest_thread(settings, "incident-e2e"), PacedPublisher(settings, window=200) as out:
        deliver(messages, out, Tally())
        out.flush()
        assert wait_until(lambda: stored(url) >= len(keys), STORED_WITHIN_S, step=0.2), (
            f"ingest stored {stored(url)} of {len(keys)} readings"
        )
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    done = streetsense(settings, "alerts", "run", "--once", "--rules", str(rules))
    assert done.returncode == 0, done.stderr
    listed = streetsense(settings, "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    active = [json.loads(line) for line in listed.stdout.splitlines()]
    found = [(a["rule"], a["subject_id"], a["state"]) for a in active]
    assert found == [("traffic-incident", blocked.id, "firing")], active
