"""Traffic incident detection, judged on the simulator's incident scenarios and on Aarhus.

The simulator's road model (demand, point queues, Greenshields speeds, lane detectors) runs
minute by minute, as the edge agents count, over 28 days of history, then 7 quiet days and 7
days with incidents (a segment's capacity drops to 20-40% for 20-60 minutes, in busy hours).
The minutes summed into 5-minute intervals (as the flow_5m rollup does) feed the analytics
job's model (`Auto`), which issues speed forecasts every hour with a 3 h horizon, fitted on
the 28 days before, and the weekly history. The alert rule (`alerts.incidents.judge`, the
shipped parameters and variants) judges every reading as it arrives with the lifecycle's
clearing period, exactly as `streetsense alerts run` would: the 1-minute readings, and the
same roads as 5-minute intervals (the rule before it read raw readings). Aarhus is 5-minute
data: every variant judges it as it comes.

    nice -n 10 .venv/bin/python bench/alerts_incidents.py [--segments 20] [--seed 1]
        [--cache FOLDER]

Prints JSON: detection rate within 10 minutes, delays, false alarms per segment per week on
quiet days, and the alarm rate per week on the Aarhus recording.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from alerts.incidents import IncidentParams, Judged, Readings, judge, recurrent_low, widen
from alerts.kinds import KINDS
from analytics.models import Auto
from analytics.panel import Panel
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.incidents import Incident, capacity_factors, schedule
from simulators.traffic import SegmentQueues, lane_split
from simulators.world import segment_demand

STEP = 300
MINUTE = 60
DAY = 86_400
HISTORY_DAYS = 28
HORIZON = 36  # the job's 3 h
RUN_EVERY = 3600
CLEAR_FOR_S = 600  # the default traffic-incident rule's clear_for_min
FRESH_S = 180  # alerts.incident_inputs: a reading stands for now this long after its interval
AARHUS = Path("/work/shared/data/aarhus_traffic_158324.csv")


@dataclass
class Band:
    """Per interval and segment: the forecast's lower 80% edge and the forecast itself."""

    lo: np.ndarray
    mean: np.ndarray


@dataclass
class Roads:
    """Per 5-minute interval (rows) and segment (columns): what the detectors reported."""

    starts: np.ndarray
    speed: np.ndarray
    vehicles: np.ndarray
    occupancy: np.ndarray
    capacity_vph: np.ndarray
    limits: np.ndarray
    ids: list[str]
    congested: np.ndarray | None = None  # the simulator's queue: demand above capacity


def simulate(segments: int, seed: int, start: float, days: int, incidents: list[Incident]) -> Roads:
    """Run the simulator's road model minute by minute over `days` from `start`, as the edge
    agents count (one reading per lane and minute)."""
    city = generate_city(CitySpec(seed=seed, lots=2, segments=segments))
    calendar = Calendar(seed=seed, timezone="Europe/Copenhagen")
    starts = start + np.arange(days * DAY // MINUTE) * MINUTE
    demand, capacity = segment_demand(city, calendar, starts + MINUTE / 2)
    ids = [s.id for s in city.segments]
    capacity = capacity * capacity_factors(starts, MINUTE, ids, incidents)
    limits = np.array([s.speed_limit_kmh * 1.02 for s in city.segments])
    intervals = SegmentQueues(len(ids)).advance(demand, capacity, limits[None, :], MINUTE)
    rng = np.random.default_rng(seed)
    shape = (starts.size, len(ids))
    speed, flow, occupancy = np.full(shape, np.nan), np.zeros(shape), np.zeros(shape)
    for i, segment in enumerate(city.segments):
        counts, speeds, occ = lane_split(
            intervals.flow_vph[:, i], intervals.speed_kmh[:, i], segment.lanes, MINUTE, rng
        )
        total = counts.sum(axis=1)
        with np.errstate(invalid="ignore"):
            speed[:, i] = np.nansum(speeds * counts, axis=1) / np.where(total > 0, total, np.nan)
        flow[:, i] = total
        occupancy[:, i] = occ.mean(axis=1)
    return Roads(starts, speed, flow, occupancy,
                 np.array([s.capacity_vph for s in city.segments]),
                 np.array([s.speed_limit_kmh for s in city.segments]), ids,
                 intervals.congested)  # fmt: skip


def five_minutes(roads: Roads) -> Roads:
    """Return the roads in 5-minute intervals, as the flow_5m rollup sums the minutes: vehicles
    summed, speed weighted by vehicles, occupancy averaged, congested when any minute was."""
    per = STEP // MINUTE
    n, m = roads.speed.shape
    shape = (n // per, per, m)
    vehicles = roads.vehicles[: shape[0] * per].reshape(shape)
    speed = roads.speed[: shape[0] * per].reshape(shape)
    total = vehicles.sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean = np.nansum(speed * vehicles, axis=1) / np.where(total > 0, total, np.nan)
    congested = (
        roads.congested[: shape[0] * per].reshape(shape).any(axis=1)
        if roads.congested is not None
        else None
    )
    return Roads(roads.starts[: shape[0] * per : per], mean, total,
                 roads.occupancy[: shape[0] * per].reshape(shape).mean(axis=1),
                 roads.capacity_vph, roads.limits, roads.ids, congested)  # fmt: skip


def unweighted_gap(minutes: Roads) -> dict[str, float]:
    """Return how far 5-minute speeds move when a bucket's minute speeds are averaged without
    their vehicles' weights (as flow_5m averages a lane's readings) instead of with them."""
    per = STEP // MINUTE
    n, m = minutes.speed.shape
    shape = (n // per, per, m)
    speed = minutes.speed[: shape[0] * per].reshape(shape)
    vehicles = minutes.vehicles[: shape[0] * per].reshape(shape)
    with np.errstate(invalid="ignore"):
        weighted = np.nansum(speed * vehicles, axis=1) / vehicles.sum(axis=1)
        plain = np.nanmean(speed, axis=1)
        busy = vehicles.sum(axis=1) >= 10
    gap = np.abs(plain - weighted)[busy & np.isfinite(plain) & np.isfinite(weighted)]
    return {"median_kmh": round(float(np.median(gap)), 2),
            "p99_kmh": round(float(np.percentile(gap, 99)), 2),
            "max_kmh": round(float(gap.max()), 1)}  # fmt: skip


def queued_flow_shares(minutes: Roads, incidents: list[Incident]) -> dict[str, list[float]]:
    """Return percentiles (1, 50, 99) of the flow through a queue as a share of the road's
    capacity, over 5-minute windows ending in queued minutes: during incidents and otherwise."""
    per = STEP // MINUTE
    total = np.cumsum(np.nan_to_num(minutes.vehicles), axis=0)
    window = total.copy()
    window[per:] -= total[:-per]
    share = window * (60.0 / per) / minutes.capacity_vph[None, :]
    during = np.zeros(share.shape, dtype=bool)
    column = {s: i for i, s in enumerate(minutes.ids)}
    for incident in incidents:
        rows = (minutes.starts >= incident.start) & (minutes.starts < incident.end)
        during[rows, column[incident.segment]] = True
    queued = minutes.congested if minutes.congested is not None else np.zeros_like(during)
    queued = queued.copy()
    queued[:per] = False  # a window needs its 5 minutes
    levels = [1, 50, 99]
    return {"incident": np.percentile(share[queued & during], levels).round(2).tolist(),
            "other": np.percentile(share[queued & ~during], levels).round(2).tolist()}  # fmt: skip


def hourly_bands(speed: np.ndarray, starts: np.ndarray, limits: np.ndarray, first: int,
                 timezone: str) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Return (intervals, segments) lower 80% speed band and forecast for every interval from
    `first` on, each from the newest hourly run whose data ended before the interval before it."""
    history = HISTORY_DAYS * DAY // STEP
    lo = np.full(speed.shape, np.nan)
    mean = np.full(speed.shape, np.nan)
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
                mean[row] = forecast.mean[:, step]
        print(f"  forecast run {datetime.fromtimestamp(starts[run_end], UTC):%m-%d %H:%M}",
              file=sys.stderr, end="\r")  # fmt: skip
    return lo, mean


def episodes(ends: np.ndarray, present: np.ndarray, judged: Judged, row: int,
             slow_for_min: float, every: int) -> list[tuple[float, float]]:  # fmt: skip
    """Return (time it fired, time it resolved) of each alert episode of one segment.

    The service's lifecycle, evaluated as each reading arrives (at `ends`): fires when the
    windows have been slow for `slow_for_min` minutes or this one is severe; the segment holds
    while its newest reading is slow and fresh (until one interval and 3 minutes after it
    ended); the alert resolves once nothing held for CLEAR_FOR_S (the clearing period).
    """
    found: list[tuple[float, float]] = []
    opened = held = -1.0
    released: float | None = None  # when the segment stopped holding
    lapse = every * MINUTE + FRESH_S
    slow, severe = judged.slow[row].tolist(), judged.severe[row].tolist()
    minutes, times = judged.slow_min[row].tolist(), ends.tolist()
    for column in np.flatnonzero(present).tolist():
        end = times[column]
        if opened >= 0:
            if released is None and end > held + lapse:
                released = held + lapse  # no fresh reading: nothing holds
            if released is not None and end - released >= CLEAR_FOR_S:
                found.append((opened, released + CLEAR_FOR_S))
                opened = -1.0
        if opened < 0:
            if severe[column] or minutes[column] >= slow_for_min:
                opened, held, released = end, end, None
        elif slow[column]:
            held, released = end, None
        elif released is None:
            released = end
    if opened >= 0:
        found.append((opened, float(ends[-1])))
    return found


def on_minutes(roads: Roads, every: int) -> Readings:
    """Return the roads' readings on the minute grid, each at the minute its interval starts."""
    n, m = roads.speed.shape

    def place(values: np.ndarray) -> np.ndarray:
        out = np.full((m, n * every), np.nan)
        out[:, ::every] = values.T
        return out

    return Readings(place(roads.vehicles), place(roads.speed), place(roads.occupancy),
                    np.full(m, every, dtype=np.int64))  # fmt: skip


def judged_minutes(roads: Roads, every: int, band: Band,
                   params: IncidentParams) -> tuple[Readings, Judged]:  # fmt: skip
    """Judge the roads' readings (`every` minutes long; `roads` holds them, one row each)
    against the 5-minute forecast band and weekly history, as the service does."""
    five = roads if every == STEP // MINUTE else five_minutes(roads)
    per = STEP // MINUTE
    # the band's lowest within shift_intervals either side (each row from its own hourly run)
    lo = np.repeat(widen(band.lo, params.shift_intervals, axis=0), per, axis=0).T
    mean = np.repeat(widen(band.mean, params.shift_intervals, axis=0), per, axis=0).T
    usual = (np.repeat(usual_lows(five, params), per, axis=0).T
             if params.history_weeks else None)  # fmt: skip
    readings = on_minutes(roads, every) if every > 1 else Readings(
        roads.vehicles.T.copy(), roads.speed.T.copy(), roads.occupancy.T.copy(),
        np.ones(roads.speed.shape[1], dtype=np.int64))  # fmt: skip
    columns = readings.vehicles.shape[1]
    return readings, judge(readings, lo[:, :columns], mean[:, :columns], roads.capacity_vph,
                           params, usual[:, :columns] if usual is not None else None)  # fmt: skip


def shifted(values: np.ndarray, rows: int) -> np.ndarray:
    """Return values moved `rows` later (row r holds row r - rows), NaN where none."""
    out = np.full(values.shape, np.nan)
    if rows >= 0:
        out[rows:] = values[: values.shape[0] - rows]
    else:
        out[:rows] = values[-rows:]
    return out


def usual_lows(roads: Roads, params: IncidentParams) -> np.ndarray:
    """Return (intervals, segments) `recurrent_low` of each interval, as the rule computes it
    from the same times of week in the past `history_weeks` weeks."""
    week = 7 * DAY // STEP
    s = params.shift_intervals
    offsets = range(-s, s + 1)
    speeds = np.stack([np.stack([shifted(roads.speed, w * week - o) for o in offsets], axis=-1)
                       for w in range(1, params.history_weeks + 1)], axis=-2)  # fmt: skip
    counts = np.stack([np.stack([shifted(roads.vehicles, w * week - o) for o in offsets], axis=-1)
                       for w in range(1, params.history_weeks + 1)], axis=-2)  # fmt: skip
    n, m = roads.speed.shape
    low = recurrent_low(speeds.reshape(n * m, params.history_weeks, 2 * s + 1),
                        counts.reshape(n * m, params.history_weeks, 2 * s + 1), s,
                        params.min_vehicles)  # fmt: skip
    return low.reshape(n, m)


def score(roads: Roads, every: int, band: Band, incidents: list[Incident],
          quiet: tuple[float, float], busy: tuple[float, float],
          params: IncidentParams) -> dict[str, object]:  # fmt: skip
    """Score detection on the incident days and false alarms on the quiet days (epoch s)."""
    readings, judged = judged_minutes(roads, every, band, params)
    grid = roads.starts[0] + np.arange(readings.vehicles.shape[1]) * MINUTE
    ends = grid + every * MINUTE  # a reading is judged once its interval is complete
    column = {s: i for i, s in enumerate(roads.ids)}
    present = np.isfinite(readings.vehicles)
    by_segment = {s: episodes(ends, present[i], judged, i, params.slow_for_min, every)
                  for s, i in column.items()}  # fmt: skip
    delays = []
    for incident in incidents:
        eps = by_segment[incident.segment]
        running = [a for a, b in eps if a <= incident.start < b]
        later = [a for a, _ in eps if incident.start <= a <= incident.end + 1800]
        delays.append(0.0 if running else (min(later) - incident.start) / 60 if later else None)
    quiet_alarms = sum(1 for eps in by_segment.values() for a, _ in eps if quiet[0] <= a < quiet[1])
    false_busy = 0
    for segment, eps in by_segment.items():
        for a, b in eps:
            if busy[0] <= a < busy[1] and not any(
                i.segment == segment and i.start - 600 <= b and a <= i.end + 3600 for i in incidents
            ):
                false_busy += 1
    found = [d for d in delays if d is not None]
    # an incident that leaves more capacity than demand forms no queue: no detector can see it
    congesting = [
        i for i, incident in enumerate(incidents)
        if roads.congested is not None and roads.congested[
            (roads.starts >= incident.start - every * MINUTE) & (roads.starts < incident.end),
            column[incident.segment]].any()
    ]  # fmt: skip
    seen = [delays[i] for i in congesting if delays[i] is not None]
    weeks_quiet = (quiet[1] - quiet[0]) / (7 * DAY)
    weeks_busy = (busy[1] - busy[0]) / (7 * DAY)
    n = len(roads.ids)
    return {
        "incidents": len(incidents),
        "detected_within_10_min": round(sum(d <= 10.0 for d in found) / max(len(incidents), 1), 4),
        "detected_at_all": round(len(found) / max(len(incidents), 1), 4),
        "incidents_congesting": len(congesting),
        "congesting_detected_within_10_min": round(
            sum(d <= 10.0 for d in seen) / max(len(congesting), 1), 4
        ),
        "congesting_detected_at_all": round(len(seen) / max(len(congesting), 1), 4),
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
        window_min=d["window_min"], slow_for_min=d["slow_for_min"],
        below_band_kmh=d["below_band_kmh"], below_forecast_share=d["below_forecast_share"],
        min_vehicles=d["min_vehicles"], collapse_flow_share=d["collapse_flow_share"],
        collapse_occupancy=d["collapse_occupancy"], queue_flow_share=d["queue_flow_share"],
        severe_share=d["severe_share"], shift_intervals=int(d["shift_intervals"]),
        history_weeks=int(d["history_weeks"]),
    )  # fmt: skip


# before the 1-minute rule: two 5-minute intervals in a row (10 minutes of 5-minute data), the
# band's lowest within two 5-minute steps either side
BEFORE = 10.0
BEFORE_SHIFT = 2
# the rule before queue_flow_share: a slow speed counted at any flow, the band forgave 3 steps
NO_FLOW_CHECK = float("inf")
PREVIOUS_SHIFT = 3


def variants() -> dict[str, tuple[int, IncidentParams]]:
    """Return the shipped rule and the variants it is compared with, each with the length of
    the readings it judges (minutes)."""
    d = default_params()
    previous = replace(d, queue_flow_share=NO_FLOW_CHECK, shift_intervals=PREVIOUS_SHIFT)
    before = replace(previous, slow_for_min=BEFORE, shift_intervals=BEFORE_SHIFT)
    return {
        "default_rule": (1, d),
        "previous_rule_no_flow_check": (1, previous),
        "queue_flow_share_0.5": (1, replace(d, queue_flow_share=0.5)),
        "queue_flow_share_0.7": (1, replace(d, queue_flow_share=0.7)),
        "queue_flow_share_0.8": (1, replace(d, queue_flow_share=0.8)),
        "previous_rule_on_5_minute_data": (5, previous),
        "before_5_minute_intervals_2_in_a_row": (5, before),
        "before_5_minute_intervals_1": (5, replace(before, slow_for_min=5.0)),
        "default_rule_on_5_minute_data": (5, d),
        "shift_2_steps": (1, replace(d, shift_intervals=2)),
        "slow_for_5_min": (1, replace(d, slow_for_min=5.0)),
        "slow_for_8_min": (1, replace(d, slow_for_min=8.0)),
        "slow_for_10_min": (1, replace(d, slow_for_min=10.0)),
        "below_band_6_kmh": (1, replace(d, below_band_kmh=6.0)),
        "window_3_min": (1, replace(d, window_min=3.0)),
        "window_10_min": (1, replace(d, window_min=10.0, slow_for_min=11.0)),
        "no_time_shift": (1, replace(d, shift_intervals=0)),
        "no_weekly_history": (1, replace(d, history_weeks=0)),
        "band_edge_only": (1, replace(d, below_forecast_share=1e9, min_vehicles=0.0,
                                      collapse_flow_share=0.0, shift_intervals=0,
                                      history_weeks=0)),
        "speed_half_only": (1, replace(d, collapse_flow_share=0.0)),
        "flow_collapse_half_only": (1, replace(d, below_forecast_share=0.0)),
    }  # fmt: skip


def cached(path: Path | None, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Return arrays from an .npz cache, building (and saving) them when it is absent."""
    if path is not None and path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    arrays = build()
    if path is not None:
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    return arrays


def simulated(segments: int, seed: int, cache: Path | None) -> dict[str, object]:
    """Run the synthetic scenario and score the shipped rule and its variants on it."""
    start = datetime(2026, 8, 3, tzinfo=UTC).timestamp()  # a Monday
    quiet_days, busy_days = 7, 7
    total = HISTORY_DAYS + quiet_days + busy_days
    city = generate_city(CitySpec(seed=seed, lots=2, segments=segments))
    busy_from = start + (HISTORY_DAYS + quiet_days) * DAY
    incidents = schedule([s.id for s in city.segments],
                         [busy_from + d * DAY for d in range(busy_days)],
                         np.random.default_rng(seed + 1000))  # fmt: skip
    first = HISTORY_DAYS * DAY // STEP

    def build() -> dict[str, np.ndarray]:
        minutes = simulate(segments, seed, start, total, incidents)
        roads = five_minutes(minutes)
        lo, mean = hourly_bands(roads.speed, roads.starts, roads.limits, first,
                                "Europe/Copenhagen")  # fmt: skip
        return {"starts": minutes.starts, "speed": minutes.speed, "vehicles": minutes.vehicles,
                "occupancy": minutes.occupancy, "capacity": minutes.capacity_vph,
                "limits": minutes.limits, "lo": lo, "mean": mean,
                "congested": minutes.congested}  # fmt: skip

    a = cached(cache, build)
    minutes = Roads(a["starts"], a["speed"], a["vehicles"], a["occupancy"], a["capacity"],
                    a["limits"], [s.id for s in city.segments], a["congested"])  # fmt: skip
    roads = five_minutes(minutes)
    band = Band(a["lo"], a["mean"])
    quiet = (start + HISTORY_DAYS * DAY, busy_from)
    busy = (busy_from, start + total * DAY)
    return {
        "segments": segments,
        "rollup_unweighted_speed_gap": unweighted_gap(minutes),
        "queued_flow_share_of_capacity_p1_p50_p99": queued_flow_shares(minutes, incidents),
        **{name: score(minutes if every == 1 else roads, every, band, incidents, quiet, busy,
                       params)
           for name, (every, params) in variants().items()},
    }  # fmt: skip


def aarhus(cache: Path | None) -> dict[str, object]:
    """Alarm rate of the speed rule on the Aarhus segment (no detector occupancy there)."""
    rows = list(csv.DictReader(AARHUS.open()))
    times = np.array([datetime.fromisoformat(r["TIMESTAMP"]).replace(tzinfo=UTC).timestamp()
                      for r in rows])  # fmt: skip
    first_slot = int(times.min() // STEP * STEP)
    length = int((times.max() - first_slot) // STEP) + 1
    speed = np.full((length, 1), np.nan)
    vehicles = np.full((length, 1), np.nan)
    slots = ((times - first_slot) // STEP).astype(int)
    speed[slots, 0] = [float(r["avgSpeed"]) for r in rows]
    vehicles[slots, 0] = [float(r["vehicleCount"]) for r in rows]
    starts = first_slot + np.arange(length) * STEP
    first = HISTORY_DAYS * DAY // STEP
    if length <= first + DAY // STEP:
        return {"error": "recording shorter than the history needed"}
    ceiling = np.array([np.nanmax(speed)])
    a = cached(cache, lambda: dict(zip(("lo", "mean"), hourly_bands(
        speed, starts, ceiling, first, "Europe/Copenhagen"), strict=True)))  # fmt: skip
    roads = Roads(starts, speed, vehicles, np.full((length, 1), np.nan), np.array([np.inf]),
                  np.array([130.0]), ["158324"])  # fmt: skip
    weeks = (length - first) * STEP / (7 * DAY)
    result: dict[str, object] = {
        "evaluated_days": round((length - first) * STEP / DAY, 1),
        "share_of_intervals_with_data": round(float(np.isfinite(speed[first:, 0]).mean()), 3),
    }
    evaluated_from = float(starts[first])
    # the recording names no capacity: unknown, no flow check, unless taken as the highest
    # hourly rate its 5-minute counts reached in the history (a registry's guess at most)
    seen = replace(roads, capacity_vph=np.array([np.nanmax(vehicles[:first]) * 12.0]))
    runs = [(name, params, roads) for name, (_, params) in variants().items()]
    runs.append(("default_rule_capacity_highest_flow_seen", default_params(), seen))
    result["capacity_highest_flow_seen_vph"] = float(seen.capacity_vph[0])
    for name, params, road in runs:
        if name == "flow_collapse_half_only":
            continue  # no detector occupancy in the recording
        # the recording is 5-minute data: every rule judges it as it comes
        readings, judged = judged_minutes(road, 5, Band(a["lo"], a["mean"]), params)
        grid = starts[0] + np.arange(readings.vehicles.shape[1]) * MINUTE
        eps = [(x, y) for x, y in episodes(grid + STEP, np.isfinite(readings.vehicles[0]),
                                           judged, 0, params.slow_for_min, 5)
               if x >= evaluated_from]  # fmt: skip
        result[name] = {
            "alarms": len(eps),
            "alarms_per_segment_week": round(len(eps) / weeks, 2),
            "alarm_starts_utc": [f"{datetime.fromtimestamp(x, UTC):%m-%d %H:%M}"
                                 for x, _ in eps][:20],
        }  # fmt: skip
    return result


def main() -> int:
    """Run both judgements and print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder keeping the simulated roads and forecast bands between "
                        "runs (they take most of the time)")  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    folder = args.cache
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    sim_cache = folder / f"sim-{args.segments}-{args.seed}.npz" if folder else None
    result = {
        "simulated": simulated(args.segments, args.seed, sim_cache),
        "aarhus": aarhus(folder / "aarhus.npz" if folder else None)
        if AARHUS.exists() else {"error": f"{AARHUS} not found"},
        "seconds": 0.0,
    }  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
