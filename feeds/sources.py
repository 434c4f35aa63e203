"""Reads the engine runs in a worker thread, and the segment views built from them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from feeds.forecast_view import Curve, curves, segment_forecast
from feeds.live import LiveParking
from feeds.model import FORECAST_PENDING, HORIZONS_MIN, Forecast, SegmentView, Unavailable
from store import feeds_reads
from store.feeds_reads import (
    FlowRow,
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
LOT_AHEAD: Final = timedelta(minutes=max(HORIZONS_MIN))
# how far ahead a segment's forecast steps are published (its forecast endpoint's horizon)
SEGMENT_AHEAD_MIN: Final = 120
NO_RECENT_FORECAST: Final = Unavailable(
    "no_recent_run", "no forecast run covers the next hour for this item yet"
)


@dataclass(frozen=True, slots=True)
class RegistryData:
    """The registry part of a full read."""

    lots: list[LotRow]
    segments: list[SegmentRow]


@dataclass(frozen=True, slots=True)
class Context:
    """Slow-moving inputs: trend baselines, latest flows, stored forecasts near now."""

    baselines: dict[str, float]
    flows: dict[str, FlowRow]
    forecast_reason: Unavailable
    # by stream ('occupancy', 'flow', 'speed') and series: why its latest run left it out
    skipped: dict[str, dict[str, Unavailable]] = field(default_factory=dict)
    lot_curves: dict[str, Curve] = field(default_factory=dict)
    flow_curves: dict[str, Curve] = field(default_factory=dict)
    speed_curves: dict[str, Curve] = field(default_factory=dict)
    lots_heard: dict[str, datetime] = field(default_factory=dict)

    @staticmethod
    def empty() -> Context:
        """Return a context with nothing known yet."""
        return Context({}, {}, FORECAST_PENDING)

    def unavailable(self, stream: str, series_id: str) -> Unavailable:
        """Return why a series of a stream has no forecast: its latest run's reason, if it
        left the series out, else the feeds' own."""
        return self.skipped.get(stream, {}).get(series_id, self.forecast_reason)


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
    # The view is built up to CONTEXT_S later than this read: a minute's margin either side.
    start, margin = now - timedelta(minutes=1), timedelta(minutes=1)
    lots = feeds_reads.near_forecasts(conn, "occupancy", start, now + LOT_AHEAD + margin)
    segments_end = now + timedelta(minutes=SEGMENT_AHEAD_MIN) + margin
    flow = feeds_reads.near_forecasts(conn, "flow", start, segments_end)
    speed = feeds_reads.near_forecasts(conn, "speed", start, segments_end)
    if lots is None or flow is None or speed is None:
        return Context(
            baselines=baselines, flows=flows, forecast_reason=FORECAST_PENDING, lots_heard=heard
        )
    return Context(
        baselines=baselines,
        flows=flows,
        forecast_reason=NO_RECENT_FORECAST,
        skipped={stream: _skipped(conn, stream) for stream in ("occupancy", "flow", "speed")},
        lot_curves={k: v for k, v in curves(lots).items() if k in capacities},
        flow_curves=curves(flow),
        speed_curves=curves(speed),
        lots_heard=heard,
    )


def _skipped(conn: psycopg.Connection, stream: str) -> dict[str, Unavailable]:
    skips = feeds_reads.forecast_skips(conn, stream)
    return {series: Unavailable(code, detail) for series, (code, detail) in skips.items()}


def segment_views(
    segments: list[SegmentRow], context: Context, now: datetime, stale_after_s: int
) -> tuple[SegmentView, ...]:
    """Build the public view of every segment from its latest complete flow bucket."""
    stale_after = timedelta(seconds=stale_after_s) + FLOW_BUCKET
    views = []
    for segment in segments:
        flow = context.flows.get(segment.segment_id)
        stale = flow is None or now - flow.bucket > stale_after
        flow_curve = context.flow_curves.get(segment.segment_id)
        speed_curve = context.speed_curves.get(segment.segment_id)
        # a stale bucket is not trusted to anchor the forecast
        fresh = None if stale else flow
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
                stale=stale,
                forecast=_ahead(flow_curve, context, segment.segment_id, fresh, "flow", now),
                speed_forecast=_ahead(
                    speed_curve, context, segment.segment_id, fresh, "speed", now
                ),
            )
        )
    return tuple(views)


def _ahead(
    curve: Curve | None,
    context: Context,
    segment_id: str,
    fresh: FlowRow | None,
    stream: str,
    now: datetime,
) -> Forecast:
    """Return a segment's forecast of a stream ('flow' or 'speed') re-anchored on its fresh
    bucket (None: stale or none)."""
    flow = stream == "flow"
    live = None if fresh is None else fresh.vehicle_count if flow else fresh.mean_speed
    at = None if fresh is None else fresh.bucket
    why = context.unavailable(stream, segment_id)
    return segment_forecast(curve, why, live, at, now, flow=flow)
