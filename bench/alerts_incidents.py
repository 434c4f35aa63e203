"""Traffic incident detection, judged on the simulator's incident scenarios and on Aarhus.

The simulator's road model (demand, point queues, Greenshields speeds, lane detectors) runs
28 days of history, then 7 quiet days and 7 days with incidents (a segment's capacity drops
to 20-40% for 20-60 minutes, in busy hours). The analytics job's model (`Auto`) issues speed
forecasts every hour with a 3 h horizon, fitted on the 28 days before; the alert rule
(`alerts.incidents.detect`, default parameters) runs on every 5-minute interval with the
lifecycle's clearing period, exactly as `streetsense alerts run` would on that data.

    nice -n 10 .venv/bin/python bench/alerts_incidents.py [--segments 20] [--seed 1]

Prints JSON: detection rate within 10 minutes, delays, false alarms per segment per week on
quiet days, and the alarm rate per week on the Aarhus recording.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from alerts.incidents import IncidentParams, detect
from alerts.kinds import KINDS
from analytics.models import Auto
from analytics.panel import Panel
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.incidents import Incident, capacity_factors, schedule
from simulators.traffic import SegmentQueues, lane_split
from simulators.world import segment_demand

STEP = 300
DAY = 86_400
HISTORY_DAYS = 28
HORIZON = 36  # the job's 3 h
RUN_EVERY = 3600
CLEAR_FOR_S = 600  # the default traffic-incident rule's clear_for_min
AARHUS = Path("/work/shared/data/aarhus_traffic_158324.csv")


@dataclass
class Roads:
    """Per 5-minute interval (rows) and segment (columns): what the detectors reported."""

    starts: np.ndarray
    speed: np.ndarray
    flow_vph: np.ndarray
    occupancy: np.ndarray
    capacity_vph: np.ndarray
    limits: np.ndarray
    ids: list[str]


def simulate(segments: int, seed: int, start: float, days: int, incidents: list[Incident]) -> Roads:
    """Run the simulator's road model over `days` from `start` with the incidents."""
    city = generate_city(CitySpec(seed=seed, lots=2, segments=segments))
    calendar = Calendar(seed=seed, timezone="Europe/Copenhagen")
    starts = start + np.arange(days * DAY // STEP) * STEP
    demand, capacity = segment_demand(city, calendar, starts + STEP / 2)
    ids = [s.id for s in city.segments]
    capacity = capacity * capacity_factors(starts, STEP, ids, incidents)
    limits = np.array([s.speed_limit_kmh * 1.02 for s in city.segments])
    intervals = SegmentQueues(len(ids)).advance(demand, capacity, limits[None, :], STEP)
    rng = np.random.default_rng(seed)
    shape = (starts.size, len(ids))
    speed, flow, occupancy = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    for i, segment in enumerate(city.segments):
        counts, speeds, occ = lane_split(
            intervals.flow_vph[:, i], intervals.speed_kmh[:, i], segment.lanes, STEP, rng
        )
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore"):
            speed[:, i] = np.nansum(speeds * counts, axis=1) / np.where(total > 0, total, np.nan)
        flow[:, i] = total * 3600.0 / STEP
        occupancy[:, i] = occ.mean(axis=1)
    return Roads(starts, speed, flow, occupancy,
                 np.array([s.capacity_vph for s in city.segments]),
                 np.array([s.speed_limit_kmh for s in city.segments]), ids)  # fmt: skip


def hourly_bands(speed: np.ndarray, starts: np.ndarray, limits: np.ndarray, first: int,
                 timezone: str) -> np.ndarray:  # fmt: skip
    """Return (intervals, segments) lower 80% speed band for every interval from `first` on,
    each from the newest hourly run whose data ended before the interval before it."""
    history = HISTORY_DAYS * DAY // STEP
    lo = np.full(speed.shape, np.nan)
    n = speed.shape[1]
    per_run = RUN_EVERY // STEP
    for run_end in range(first - per_run, speed.shape[0], per_run):
        window = speed[max(run_end - history, 0) : run_end].T
        panel = Panel(
            values=np.ascontiguousarray(window).ravel(), indptr=np.arange(n + 1) * window.shape[1],
            step=STEP, end=np.full(n, int(starts[run_end - 1]), dtype=np.int64),
            ids=tuple(str(i) for i in range(n)), capacity=limits * 1.5,
        )  # fmt: skip
        forecast = Auto(horizon=HORIZON, timezone=timezone).fit(panel).predict(HORIZON)
        # a run ending at E serves buckets whose pair starts at or after E: E+1 .. E+per_run
        for step in range(1, per_run + 1):
            row = run_end + step
            if first <= row < speed.shape[0]:
                lo[row] = forecast.lo[:, step]
        print(f"  forecast run {datetime.fromtimestamp(starts[run_end], UTC):%m-%d %H:%M}",
              file=sys.stderr, end="\r")  # fmt: skip
    return lo


def episodes(bad: np.ndarray, intervals: int) -> list[tuple[int, int]]:
    """Return (first row it fired on, last row) of each alert episode of one segment.

    The lifecycle: fires when the last `intervals` rows are bad; resolves once no row was bad
    for CLEAR_FOR_S (its clearing period).
    """
    found: list[tuple[int, int]] = []
    clear_rows = CLEAR_FOR_S // STEP
    open_at = -1
    quiet = 0
    for row in range(bad.size):
        if open_at < 0:
            if row >= intervals - 1 and bad[row - intervals + 1 : row + 1].all():
                open_at, quiet = row, 0
            continue
        quiet = 0 if bad[row] else quiet + 1
        if quiet >= clear_rows:
            found.append((open_at, row))
            open_at = -1
    if open_at >= 0:
        found.append((open_at, bad.size - 1))
    return found


def bad_rows(roads: Roads, lo: np.ndarray, params: IncidentParams) -> np.ndarray:
    """Return (intervals, segments) whether each interval is slow or collapsed."""
    flags = np.zeros(roads.speed.shape, dtype=bool)
    for row in range(roads.speed.shape[0]):
        one = detect(roads.speed[row : row + 1].T, lo[row : row + 1].T,
                     roads.flow_vph[row : row + 1].T, roads.occupancy[row : row + 1].T,
                     roads.capacity_vph, IncidentParams(1, params.below_band_kmh,
                     params.collapse_flow_share, params.collapse_occupancy))  # fmt: skip
        flags[row] = one.hold
    return flags


def judge(roads: Roads, lo: np.ndarray, incidents: list[Incident], quiet: tuple[int, int],
          busy: tuple[int, int], params: IncidentParams) -> dict[str, object]:  # fmt: skip
    """Score detection on the incident days and false alarms on the quiet days."""
    bad = bad_rows(roads, lo, params)
    column = {s: i for i, s in enumerate(roads.ids)}
    by_segment = {s: episodes(bad[:, i], params.intervals) for s, i in column.items()}
    delays = []
    for incident in incidents:
        # an alert fires when its second interval's data is in: the end of that interval
        fired = [roads.starts[a] + STEP for a, _ in by_segment[incident.segment]]
        ends = [roads.starts[b] + STEP for _, b in by_segment[incident.segment]]
        running = [f for f, e in zip(fired, ends, strict=True) if f <= incident.start < e]
        later = [f for f in fired if incident.start <= f <= incident.end + 1800]
        delays.append(0.0 if running else (min(later) - incident.start) / 60 if later else None)
    quiet_alarms = sum(1 for eps in by_segment.values() for a, _ in eps if quiet[0] <= a < quiet[1])
    false_busy = 0
    for segment, eps in by_segment.items():
        for a, b in eps:
            if not busy[0] <= a < busy[1]:
                continue
            t0, t1 = roads.starts[a], roads.starts[b] + STEP
            if not any(i.segment == segment and i.start - 600 <= t1 and t0 <= i.end + 3600
                       for i in incidents):  # fmt: skip
                false_busy += 1
    found = [d for d in delays if d is not None]
    weeks_quiet = (quiet[1] - quiet[0]) * STEP / (7 * DAY)
    weeks_busy = (busy[1] - busy[0]) * STEP / (7 * DAY)
    n = len(roads.ids)
    return {
        "incidents": len(incidents),
        "detected_within_10_min": round(sum(d <= 10.0 for d in found) / max(len(incidents), 1), 4),
        "detected_at_all": round(len(found) / max(len(incidents), 1), 4),
        "delay_min_median": round(float(np.median(found)), 1) if found else None,
        "delay_min_p90": round(float(np.percentile(found, 90)), 1) if found else None,
        "false_alarms_per_segment_week_quiet_days": round(quiet_alarms / (n * weeks_quiet), 3),
        "false_alarms_per_segment_week_incident_days": round(false_busy / (n * weeks_busy), 3),
        "segments_with_a_quiet_day_alarm": sum(
            1 for eps in by_segment.values() if any(quiet[0] <= a < quiet[1] for a, _ in eps)
        ),
    }


def default_params() -> IncidentParams:
    """Return the shipped traffic_incident rule's parameters."""
    d = {k: v.default for k, v in KINDS["traffic_incident"].params.items()}
    return IncidentParams(
        int(d["intervals"]), d["below_band_kmh"], d["collapse_flow_share"], d["collapse_occupancy"]
    )


def simulated(segments: int, seed: int) -> dict[str, object]:
    """Run the synthetic scenario and score it with the default rule and its two halves."""
    start = datetime(2026, 8, 3, tzinfo=UTC).timestamp()  # a Monday
    quiet_days, busy_days = 7, 7
    total = HISTORY_DAYS + quiet_days + busy_days
    city = generate_city(CitySpec(seed=seed, lots=2, segments=segments))
    busy_from = start + (HISTORY_DAYS + quiet_days) * DAY
    incidents = schedule([s.id for s in city.segments],
                         [busy_from + d * DAY for d in range(busy_days)],
                         np.random.default_rng(seed + 1000))  # fmt: skip
    roads = simulate(segments, seed, start, total, incidents)
    first = HISTORY_DAYS * DAY // STEP
    lo = hourly_bands(roads.speed, roads.starts, roads.limits, first, "Europe/Copenhagen")
    quiet = (first, first + quiet_days * DAY // STEP)
    busy = (quiet[1], roads.starts.size)
    params = default_params()
    no_band = np.full(lo.shape, np.nan)
    return {
        "segments": segments,
        "default_rule": judge(roads, lo, incidents, quiet, busy, params),
        "speed_band_only": judge(
            roads,
            lo,
            incidents,
            quiet,
            busy,
            IncidentParams(params.intervals, params.below_band_kmh, 0.0, 100.0),
        ),
        "flow_collapse_only": judge(roads, no_band, incidents, quiet, busy, params),
    }


def aarhus() -> dict[str, object]:
    """Alarm rate of the speed rule on the Aarhus segment (no detector occupancy there)."""
    rows = list(csv.DictReader(AARHUS.open()))
    zone_start = datetime.fromisoformat(rows[0]["TIMESTAMP"]).replace(tzinfo=UTC).timestamp()
    times = np.array([datetime.fromisoformat(r["TIMESTAMP"]).replace(tzinfo=UTC).timestamp()
                      for r in rows])  # fmt: skip
    first_slot = int(zone_start // STEP * STEP)
    length = int((times.max() - first_slot) // STEP) + 1
    speed = np.full((length, 1), np.nan)
    flow = np.full((length, 1), np.nan)
    slots = ((times - first_slot) // STEP).astype(int)
    speed[slots, 0] = [float(r["avgSpeed"]) for r in rows]
    flow[slots, 0] = [float(r["vehicleCount"]) * 12.0 for r in rows]
    starts = first_slot + np.arange(length) * STEP
    first = HISTORY_DAYS * DAY // STEP
    if length <= first + DAY // STEP:
        return {"error": "recording shorter than the history needed"}
    lo = hourly_bands(speed, starts, np.array([speed[:, 0][np.isfinite(speed[:, 0])].max()]),
                      first, "Europe/Copenhagen")  # fmt: skip
    roads = Roads(starts, speed, flow, np.full((length, 1), np.nan), np.array([np.inf]),
                  np.array([130.0]), ["158324"])  # fmt: skip
    params = default_params()
    params = IncidentParams(params.intervals, params.below_band_kmh, 0.0, 100.0)
    bad = bad_rows(roads, lo, params)[:, 0]
    eps = [(a, b) for a, b in episodes(bad, params.intervals) if a >= first]
    weeks = (length - first) * STEP / (7 * DAY)
    observed = float(np.isfinite(speed[first:, 0]).mean())
    return {
        "evaluated_days": round((length - first) * STEP / DAY, 1),
        "share_of_intervals_with_data": round(observed, 3),
        "alarms": len(eps),
        "alarms_per_segment_week": round(len(eps) / weeks, 2),
        "alarm_minutes_median": round(float(np.median([(b - a + 1) * 5 for a, b in eps])), 1)
        if eps else None,
        "alarm_times_utc": [f"{datetime.fromtimestamp(starts[a], UTC):%Y-%m-%d %H:%M}"
                            for a, _ in eps][:30],
    }  # fmt: skip


def main() -> int:
    """Run both judgements and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    result = {
        "simulated": simulated(args.segments, args.seed),
        "aarhus": aarhus() if AARHUS.exists() else {"error": f"{AARHUS} not found"},
        "seconds": 0.0,
    }
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
