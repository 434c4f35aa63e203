"""Evaluate each rule's condition on a snapshot: which subjects fire and which still hold.

`fire` is the raising edge (the rule's threshold), `hold` the clearing edge (hysteresis): an
open alert stays open while its subject holds, and only resolves after it stopped holding for
the rule's `clear_for_min`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from alerts.incident_inputs import assess, params_of, since
from alerts.rules import Rule, Scope
from alerts.snapshot import STEP, Snapshot
from store.alerts_inputs import Columns


@dataclass(frozen=True, slots=True)
class Candidate:
    """A subject whose condition holds (and fires, when `fire`)."""

    subject_kind: str
    subject_id: str
    site_id: str
    area: str
    fire: bool
    value: float | None
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    # what scopes match on besides kind, id, site and area
    lot_id: str = ""
    segment_id: str = ""
    device_kind: str = ""


Findings = dict[tuple[str, str], Candidate]


def evaluate(rule: Rule, snap: Snapshot) -> Findings:
    """Return the rule's candidates in its scope, keyed by (subject kind, subject id)."""
    found = EVALUATORS[rule.kind](rule.params, snap)
    return {(c.subject_kind, c.subject_id): c for c in found if in_scope(rule.scope, c)}


def in_scope(scope: Scope, c: Candidate) -> bool:
    """Return whether a candidate lies in a scope (every non-empty list must match)."""
    checks = (
        (scope.sites, c.site_id),
        (scope.areas, c.area),
        (scope.lots, c.lot_id or (c.subject_id if c.subject_kind == "lot" else "")),
        (scope.segments, c.segment_id or (c.subject_id if c.subject_kind == "segment" else "")),
        (scope.devices, c.subject_id if c.subject_kind == "device" else ""),
        (scope.device_kinds, c.device_kind),
    )
    return all(not allowed or value in allowed for allowed, value in checks)


def _rows(cols: Columns, mask: np.ndarray | None = None) -> Iterator[dict[str, Any]]:
    names = list(cols)
    count = len(next(iter(cols.values()))) if cols else 0
    for i in np.flatnonzero(mask) if mask is not None else range(count):
        yield {name: cols[name][i] for name in names}


def _lot(
    row: dict[str, Any], fire: bool, value: float | None, summary: str, **details: Any
) -> Candidate:
    return Candidate("lot", row["id"], row["site_id"], row["area"], fire, value, summary,
                     dict(details), lot_id=row["id"])  # fmt: skip


def lot_occupancy(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A lot at or above a share of its capacity (holds until below `clear_below`); a closed
    lot is never full."""
    lots = snap.lots
    with np.errstate(invalid="ignore", divide="ignore"):
        share = lots["occupied"] / lots["capacity"]
        hold = share >= min(params["clear_below"], params["above"])
    hold &= ~_closed(lots, snap)
    for row, s in zip(_rows(lots, hold), share[hold], strict=True):
        fire = bool(s >= params["above"])
        text = f"{row['id']} is {s:.0%} full ({row['occupied']:.0f} of {row['capacity']:.0f})"
        yield _lot(row, fire, float(s), text)


def _closed(lots: Columns, snap: Snapshot) -> np.ndarray:
    closed = snap.closed_lots
    return np.array([lot_id in closed for lot_id in lots["id"]], dtype=bool)


def lot_fill_forecast(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A lot whose forecast's lower 80% edge reaches `above` within `within_min`."""
    cols = snap.fill_forecast(timedelta(minutes=params["within_min"]), params["above"])
    lots = {r["id"]: r for r in _rows(snap.lots)}
    for i, lot_id in enumerate(cols["id"]):
        row = lots.get(lot_id)
        full_at = cols["full_at"][i]
        if row is None or np.isnan(full_at) or lot_id in snap.closed_lots:
            continue
        minutes = max((full_at - snap.epoch) / 60.0, 0.0)
        when = datetime.fromtimestamp(full_at, UTC)
        text = f"{lot_id} forecast full within {minutes:.0f} min (80% band), at {when:%H:%M} UTC"
        yield _lot(row, True, float(cols["lo80"][i]), text, full_at=when.isoformat())


def traffic_incident(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A segment whose rolling window of newest readings has been slow below its speed band,
    or collapsed, for `slow_for_min` minutes of data."""
    segs = snap.segments
    found = assess(snap, segs, params_of(params))
    for i in np.flatnonzero(found.hold):
        segment, below, speed = str(segs["id"][i]), found.below_kmh[i], found.speed[i]
        began = since(found, int(i))
        why = (
            f"speed {speed:.0f} km/h, {below:.0f} km/h below its 80% band"
            if np.isfinite(below) and below > 0 else "flow collapsed with detectors occupied"
        )  # fmt: skip
        yield Candidate(
            "segment", segment, segs["site_id"][i], segs["area"][i], bool(found.fire[i]),
            float(speed) if np.isfinite(speed) else None,
            f"{segment}: {why} for {found.slow_min[i]:.0f} min (since {began:%H:%M} UTC)",
            {"below_band_kmh": None if not np.isfinite(below) else round(float(below), 1),
             "collapse": bool(found.collapse[i]), "forecast_run": found.run_id,
             "since": began.isoformat(), "slow_min": float(found.slow_min[i])},
            segment_id=segment,
        )  # fmt: skip


def stale_data(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A lot or segment whose newest data is older than `after_min` (or that never reported)."""
    limit = snap.epoch - params["after_min"] * 60.0
    lots = snap.lots
    with np.errstate(invalid="ignore"):
        stale = ~(lots["data_at"] >= limit)
    for row in _rows(lots, stale):
        yield _lot(
            row, True, _age_min(snap, row["data_at"]), _stale_text(row["id"], snap, row["data_at"])
        )
    segs = snap.segments
    stale = snap.stale_segments(timedelta(minutes=params["after_min"]))
    for i, segment in enumerate(segs["id"]):
        if segment in stale:
            at = stale[segment]
            text = _stale_text(segment, snap, at)
            yield Candidate("segment", segment, segs["site_id"][i], segs["area"][i], True,
                            _age_min(snap, at), text, segment_id=segment)  # fmt: skip


def _age_min(snap: Snapshot, at: float) -> float | None:
    return None if np.isnan(at) else round((snap.epoch - at) / 60.0, 1)


def _stale_text(subject: str, snap: Snapshot, at: float) -> str:
    age = _age_min(snap, at)
    return f"{subject}: no data yet" if age is None else f"{subject}: no data for {age:.0f} min"


def _device(
    row: dict[str, Any], fire: bool, value: float | None, summary: str, **details: Any
) -> Candidate:
    return Candidate("device", row["id"], row["site_id"], row["area"], fire, value, summary,
                     dict(details), lot_id=row["lot_id"], segment_id=row["segment_id"],
                     device_kind=row["kind"])  # fmt: skip


def device_offline(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A device silent past `after_min`, or whose Last Will said it went offline."""
    devs = snap.devices("offline", snap.now - timedelta(minutes=params["after_min"]))
    for row in _rows(devs):
        age = _age_min(snap, row["last_seen_at"])
        why = "its Last Will was seen" if not row["online"] else f"silent for {age:.0f} min"
        yield _device(row, True, age, f"{row['id']} offline: {why}")


def battery_low(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A battery below `below_v` (holds until above `clear_above_v`)."""
    devs = snap.devices("battery_below", max(params["clear_above_v"], params["below_v"]))
    for row in _rows(devs):
        fire = bool(row["battery"] < params["below_v"])
        yield _device(
            row, fire, float(row["battery"]), f"{row['id']}: battery {row['battery']:.2f} V"
        )


def buffer_growing(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """An edge buffer holding more than `above` unsent readings."""
    devs = snap.devices("buffer_depth_above", params["above"])
    for row in _rows(devs):
        text = f"{row['id']}: {row['buffer_depth']:.0f} readings waiting in its buffer"
        yield _device(row, True, float(row["buffer_depth"]), text)


def buffer_dropping(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """An edge buffer that dropped more than `above` readings at its cap."""
    devs = snap.devices("buffer_dropped_above", params["above"])
    for row in _rows(devs):
        text = f"{row['id']}: its buffer dropped {row['buffer_dropped']:.0f} readings"
        yield _device(row, True, float(row["buffer_dropped"]), text)


def clock_suspect(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A device whose readings were flagged with a suspect clock within the window."""
    flagged = snap.clock_suspects(timedelta(minutes=params["window_min"]))
    listed = [d for d, count in flagged.items() if count >= params["at_least"]]
    devs = snap.devices("listed", ids=listed)
    for row in _rows(devs):
        count = flagged[row["id"]]
        yield _device(row, True, count, f"{row['id']}: {count:.0f} readings with a suspect clock")


def stuck_sensor(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """A spot sensor with one value through `hours` while other sensors of its lot changed."""
    spots = snap.spot_activity(timedelta(hours=params["hours"]))
    changed_per_lot: dict[str, int] = {}
    for lot_id, changed in zip(spots["lot_id"], spots["changed"], strict=True):
        changed_per_lot[lot_id] = changed_per_lot.get(lot_id, 0) + int(changed)
    stuck: dict[str, list[str]] = {}
    for i, device in enumerate(spots["id"]):
        lot_id = spots["lot_id"][i]
        if (
            not spots["changed"][i]
            and spots["readings"][i] >= params["min_readings"]
            and changed_per_lot.get(lot_id, 0) >= params["lot_changed"]
        ):
            stuck.setdefault(device, []).append(spots["sub_id"][i] or "(own sensor)")
    devs = snap.devices("listed", ids=list(stuck))
    for row in _rows(devs):
        sensors = stuck[row["id"]]
        text = (
            f"{row['id']}: {len(sensors)} sensor(s) unchanged for {params['hours']:.0f} h "
            "while its lot changed"
        )
        yield _device(row, True, float(len(sensors)), text, sensors=sensors[:50])


def implausible(params: Any, snap: Snapshot) -> Iterator[Candidate]:
    """Occupied above capacity x factor, or a segment's flow above capacity x factor."""
    lots = snap.lots
    with np.errstate(invalid="ignore"):
        over = lots["occupied"] > lots["capacity"] * params["capacity_factor"]
    for row in _rows(lots, over):
        text = f"{row['id']}: {row['occupied']:.0f} occupied, capacity {row['capacity']:.0f}"
        yield _lot(row, True, float(row["occupied"]), text)
    data = snap.intervals(1)
    segs = snap.segments
    cap = dict(zip(segs["id"], segs["capacity_vph"], strict=True))
    latest = data["bucket"] == snap.last_bucket.timestamp()
    hours = STEP.total_seconds() / 3600.0
    index = {segment: i for i, segment in enumerate(segs["id"])}
    for i in np.flatnonzero(latest):
        segment = data["id"][i]
        flow = data["vehicle_count"][i] / hours
        if segment in index and flow > cap[segment] * params["flow_factor"]:
            j = index[segment]
            text = f"{segment}: {flow:.0f} veh/h, capacity {cap[segment]:.0f}"
            yield Candidate("segment", segment, segs["site_id"][j], segs["area"][j], True,
                            float(flow), text, segment_id=segment)  # fmt: skip


EVALUATORS: dict[str, Callable[[Any, Snapshot], Iterator[Candidate]]] = {
    "lot_occupancy": lot_occupancy,
    "lot_fill_forecast": lot_fill_forecast,
    "traffic_incident": traffic_incident,
    "stale_data": stale_data,
    "device_offline": device_offline,
    "battery_low": battery_low,
    "buffer_growing": buffer_growing,
    "buffer_dropping": buffer_dropping,
    "clock_suspect": clock_suspect,
    "stuck_sensor": stuck_sensor,
    "implausible": implausible,
}
