"""Reads the engine runs in a worker thread, and the segment views built from them."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from feeds.live import LiveParking
from feeds.model import FORECAST_PENDING, HORIZONS_MIN, Forecast, SegmentView
from store import feeds_reads
from store.feeds_reads import (
    FlowRow,
    ForecastPoint,
    LotParking,
    LotRow,
    PublicOverride,
    RecentTransactions,
    SegmentRow,
)

__all__ = [
    "Context", "LotRow", "RecentChanges", "RegistryData", "read_context", "read_full",
    "read_overrides", "read_recent",
]  # fmt: skip

RECENT_WINDOW_S: Final = 120.0  # fast-poll window of observed time; older ones: full read
TREND_LOOKBACK: Final = timedelta(minutes=15)
FLOW_BUCKET: Final = timedelta(minutes=5)
FORECAST_LOOKBACK: Final = timedelta(hours=1)
FORECAST_LOOKAHEAD: Final = timedelta(minutes=max(HORIZONS_MIN) + 1)
NO_RECENT_FORECAST: Final = "no forecast run covers the next hour for this item yet"


@dataclass(frozen=True, slots=True)
class RegistryData:
    """The registry part of a full read."""

    lots: list[LotRow]
    segments: list[SegmentRow]


@dataclass(frozen=True, slots=True)
class Context:
    """Slow-moving inputs: trend baselines, latest flows, forecasts."""

    baselines: dict[str, float]
    flows: dict[str, FlowRow]
    forecast_reason: str
    lot_forecasts: dict[str, Forecast] = field(default_factory=dict)
    segment_forecasts: dict[str, Forecast] = field(default_factory=dict)
    lots_heard: dict[str, datetime] = field(default_factory=dict)

    @staticmethod
    def empty() -> Context:
        """Return a context with nothing known yet."""
        return Context({}, {}, FORECAST_PENDING)

    def lot_forecast(self, lot_id: str) -> Forecast:
        """Return a lot's forecast, or an empty one carrying the reason."""
        return self.lot_forecasts.get(lot_id) or _missing(self.forecast_reason)

    def segment_forecast(self, segment_id: str) -> Forecast:
        """Return a segment's forecast, or an empty one carrying the reason."""
        return self.segment_forecasts.get(segment_id) or _missing(self.forecast_reason)


def _missing(reason: str) -> Forecast:
    return Forecast(values=(None,) * len(HORIZONS_MIN), issued_at=None, reason=reason)


@dataclass(frozen=True, slots=True)
class RecentChanges:
    """What one fast poll found: the transactions seen and the fresh counts of the lots they
    touched."""

    transactions: RecentTransactions
    lots: list[LotParking]


def read_recent(
    conn: psycopg.Connection, since: datetime | None, seen: Collection[str]
) -> RecentChanges:
    """Read which lots parking readings received since `since` touched (all of the recent
    window when None), then those lots' counts."""
    found = feeds_reads.parking_transactions_since(conn, since, RECENT_WINDOW_S, seen)
    lots = feeds_reads.lot_parking(conn, found.lots) if found.lots else []
    return RecentChanges(found, lots)


def read_overrides(conn: psycopg.Connection) -> dict[str, PublicOverride]:
    """Read operators' status overrides (one small table, read every few seconds)."""
    return feeds_reads.read_overrides(conn)


def read_full(conn: psycopg.Connection) -> tuple[RegistryData, LiveParking, datetime | None]:
    """Read the registry and every lot's live counts; return them with the newest receive
    time among the readings counted (where the fast poll picks up from)."""
    registry = RegistryData(
        lots=feeds_reads.read_lots(conn), segments=feeds_reads.read_segments(conn)
    )
    rows = feeds_reads.lot_parking(conn)
    return registry, LiveParking(rows), max((row.received_at for row in rows), default=None)


def read_context(conn: psycopg.Connection, capacities: dict[str, int]) -> Context:
    """Read trend baselines (15 minutes ago), the latest flows, near-term forecasts, and when
    each lot's sensors were last heard from."""
    now = datetime.now(UTC)
    baselines = feeds_reads.occupancy_at(conn, now - TREND_LOOKBACK)
    flows = feeds_reads.latest_flows(conn) or {}
    heard = feeds_reads.lots_heard(conn)
    window = (now - FORECAST_LOOKBACK, now + FORECAST_LOOKAHEAD)
    lots = feeds_reads.near_forecasts(conn, "occupancy", *window)
    segments = feeds_reads.near_forecasts(conn, "flow", *window)
    if lots is None or segments is None:
        return Context(
            baselines=baselines, flows=flows, forecast_reason=FORECAST_PENDING, lots_heard=heard
        )
    lot_forecasts = {}
    for lot_id, values, issued in _by_horizon(lots, now):
        capacity = capacities.get(lot_id)
        if capacity is not None:
            available = tuple(
                None if v is None else float(max(0, min(capacity, round(capacity - v))))
                for v in values
            )
            lot_forecasts[lot_id] = Forecast(available, issued, None)
    return Context(
        baselines=baselines,
        flows=flows,
        forecast_reason=NO_RECENT_FORECAST,
        lot_forecasts=lot_forecasts,
        segment_forecasts={
            segment_id: Forecast(
                tuple(None if v is None else max(0.0, v) for v in values), issued, None
            )
            for segment_id, values, issued in _by_horizon(segments, now)
        },
        lots_heard=heard,
    )


def _by_horizon(
    points: list[ForecastPoint], now: datetime
) -> Iterator[tuple[str, tuple[float | None, ...], datetime]]:
    """Yield each series' forecast at +15/+30/+60 min: the step whose interval holds it."""
    for series_id, group in itertools.groupby(points, key=lambda p: p.series_id):
        steps = list(group)
        values = []
        for minutes in HORIZONS_MIN:
            moment = now + timedelta(minutes=minutes)
            values.append(
                next(
                    (
                        p.yhat
                        for p in steps
                        if p.at <= moment < p.at + timedelta(seconds=p.step_seconds)
                    ),
                    None,
                )
            )
        if any(v is not None for v in values):
            yield series_id, tuple(values), max(p.issued_at for p in steps)


def segment_views(
    segments: list[SegmentRow], context: Context, now: datetime, stale_after_s: int
) -> tuple[SegmentView, ...]:
    """Build the public view of every segment from its latest complete flow bucket."""
    stale_after = timedelta(seconds=stale_after_s) + FLOW_BUCKET
    views = []
    for segment in segments:
        flow = context.flows.get(segment.segment_id)
        views.append(
            SegmentView(
                id=segment.segment_id,
                name=segment.name,
                direction=segment.direction,
                area=segment.area,
                coordinates=segment.coordinates,
                speed_limit_kmh=segment.speed_limit_kmh,
                capacity_vph=segment.capacity_vph,
                bucket=flow.bucket if flow else None,
                vehicle_count=flow.vehicle_count if flow else None,
                mean_speed=flow.mean_speed if flow else None,
                detector_occupancy=flow.detector_occupancy if flow else None,
                stale=flow is None or now - flow.bucket > stale_after,
                forecast=context.segment_forecast(segment.segment_id),
            )
        )
    return tuple(views)
