"""Traffic endpoints: road segments with flow, speed, congestion and forecast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from feeds import datex2, datex2_traffic, formats, ngsi
from feeds.engine import Snapshot
from feeds.filters import BoundingBox, Near, parse_bbox, parse_near, select
from feeds.forecast_view import segment_steps
from feeds.http import Cached, Problem, Rendered, render, render_json, respond
from feeds.model import Congestion, SegmentView
from feeds.negotiate import MEDIA_TYPES, Format, choose
from feeds.routes_parking import (
    DEFAULT_LIMIT,
    BboxQuery,
    FormatQuery,
    LimitQuery,
    NearQuery,
    OffsetQuery,
    RadiusQuery,
)
from feeds.runtime import Runtime, require_ready
from feeds.schemas import (
    Segment,
    SegmentForecastDocument,
    SegmentPage,
    documented,
    documented_as,
)
from feeds.sources import SEGMENT_AHEAD_MIN

router = APIRouter(tags=["traffic"])
FLOW_MAX_AGE: Final = 30
STEP_MIN: Final = 5
HorizonQuery = Annotated[
    int,
    Query(
        ge=STEP_MIN, le=SEGMENT_AHEAD_MIN, multiple_of=STEP_MIN,
        description=f"minutes ahead, a multiple of {STEP_MIN} up to {SEGMENT_AHEAD_MIN}",
    ),
]  # fmt: skip
SEGMENT_FORMATS: Final = (Format.JSON, Format.JSONLD, Format.GEOJSON, Format.CSV)


def select_segments(
    segments: Sequence[SegmentView],
    box: BoundingBox | None,
    near: Near | None,
    congestion: Congestion | None,
) -> list[tuple[SegmentView, float | None]]:
    """Filter segments (a segment is inside when any of its points is)."""
    return select(
        segments,
        lambda segment: segment.coordinates,
        box,
        near,
        lambda segment: congestion is None or segment.congestion is congestion,
    )


@router.get(
    "/v1/traffic/segments",
    summary="Every road segment with its latest flow",
    responses=documented(SegmentPage, "application/ld+json", "application/geo+json", "text/csv"),
)
async def list_segments(
    request: Request,
    bbox: BboxQuery = None,
    near: NearQuery = None,
    radius_m: RadiusQuery = 1000.0,
    congestion: Annotated[Congestion | None, Query(description="only this level")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
    format: FormatQuery = None,
) -> Response:
    """List segments; json and jsonld are paged, geojson and csv are the whole bulk download."""
    runtime = require_ready(request)
    chosen = choose(request, format, SEGMENT_FORMATS)
    snapshot = runtime.engine.snapshot
    params = (bbox, near, radius_m, congestion, limit, offset)
    key = ("segments", snapshot.segments_version, chosen, params)

    def build() -> Rendered:
        picked = select_segments(
            snapshot.segments, parse_bbox(bbox), parse_near(near, radius_m), congestion
        )
        return _render_segments(runtime, chosen, picked, limit, offset)

    rendered = runtime.cache.get(key, build)
    answer = Cached(rendered, FLOW_MAX_AGE, snapshot.segments_modified)
    return runtime.remember(request, snapshot, answer)


def _render_segments(
    runtime: Runtime,
    chosen: Format,
    picked: list[tuple[SegmentView, float | None]],
    limit: int,
    offset: int,
) -> Rendered:
    segments = [segment for segment, _ in picked]
    if chosen is Format.CSV:
        return render(formats.segments_csv(segments).encode(), MEDIA_TYPES[chosen])
    if chosen is Format.GEOJSON:
        return render_json(formats.segments_geojson(segments), MEDIA_TYPES[chosen])
    page = picked[offset : offset + limit]
    if chosen is Format.JSONLD:
        entities = [ngsi.segment_entity(s, runtime.provider) for s, _ in page]
        return render_json([e for e in entities if e is not None], ngsi.MEDIA_TYPE)
    items = []
    for segment, distance in page:
        item = formats.segment_dict(segment)
        if distance is not None:
            item["distance_m"] = round(distance, 1)
        items.append(item)
    document: dict[str, Any] = {
        "total": len(picked),
        "offset": offset,
        "limit": limit,
        "count": len(items),
        "segments": items,
    }
    return render_json(document)


@router.get(
    "/v1/traffic/segments/{segment_id}",
    summary="One road segment",
    responses=documented(Segment, "application/ld+json"),
)
async def get_segment(
    request: Request,
    segment_id: str,
    format: FormatQuery = None,
) -> Response:
    """Return one segment (json, or jsonld when it has an observation)."""
    runtime = require_ready(request)
    chosen = choose(request, format, (Format.JSON, Format.JSONLD))
    snapshot = runtime.engine.snapshot
    segment = _segment_or_404(runtime, segment_id)
    document: dict[str, Any] | None = formats.segment_dict(segment)
    if chosen is Format.JSONLD:
        document = ngsi.segment_entity(segment, runtime.provider)
        if document is None:
            raise Problem(
                404,
                "No observation yet",
                f"segment '{segment.id}' has no complete flow bucket yet, so there is no "
                "TrafficFlowObserved entity; ask for format=json meanwhile",
                "no-observation",
            )
    rendered = render_json(document, MEDIA_TYPES[chosen])
    answer = Cached(rendered, FLOW_MAX_AGE, snapshot.segments_modified)
    return runtime.remember(request, snapshot, answer)


def _segment_or_404(runtime: Runtime, segment_id: str) -> SegmentView:
    segment = runtime.engine.snapshot.segment_index.get(segment_id)
    if segment is None:
        raise Problem(
            404,
            "Unknown segment",
            f"there is no segment '{segment_id[:64]}'; list them at /v1/traffic/segments",
            "unknown-segment",
        )
    return segment


@router.get(
    "/v1/traffic/segments/{segment_id}/forecast",
    summary="Flow and speed expected every 5 minutes ahead, with their 80% bands",
    responses=documented(SegmentForecastDocument),
)
async def get_segment_forecast(
    request: Request, segment_id: str, horizon: HorizonQuery = 60
) -> Response:
    """Return the segment's forecast every 5 minutes up to `horizon` minutes, re-anchored on
    its latest 5-minute bucket."""
    runtime = require_ready(request)
    segment = _segment_or_404(runtime, segment_id)
    snapshot = runtime.engine.snapshot
    document = _steps(runtime, snapshot, segment, horizon)
    modified = snapshot.segments_modified
    return respond(request, render_json(document), max_age=FLOW_MAX_AGE, last_modified=modified)


def _steps(
    runtime: Runtime, snapshot: Snapshot, segment: SegmentView, horizon: int
) -> dict[str, Any]:
    """Return a segment's re-anchored steps up to `horizon` minutes, counted from when its
    published forecast was built (so they agree with the segment's own document)."""
    context = runtime.engine.context
    return segment_steps(
        segment,
        context.flow_curves.get(segment.id),
        context.speed_curves.get(segment.id),
        context.unavailable("flow", segment.id),
        segment.forecast.start or snapshot.segments_modified,
        horizon,
        STEP_MIN,
    )


@router.get(
    "/v1/traffic/datex2/forecast",
    summary=f"DATEX II v{datex2.VERSION} ElaboratedDataPublication: every segment's latest "
    "speed and flow and their forecast every 5 minutes",
    responses=documented_as(datex2.MEDIA_TYPE),
)
async def datex2_forecast(request: Request, horizon: HorizonQuery = 60) -> Response:
    """Return each segment's latest fresh bucket (`forecast` false) and its re-anchored speed
    and flow forecasts up to `horizon` minutes (`forecast` true), rendered once per snapshot
    and horizon in a worker thread (a large city's takes seconds)."""
    runtime = require_ready(request)
    snapshot = runtime.engine.snapshot

    def build() -> Rendered:
        forecasts = [
            datex2_traffic.SegmentForecast(segment, _steps(runtime, snapshot, segment, horizon))
            for segment in snapshot.segments
        ]
        if not datex2_traffic.has_data(forecasts):
            # The publication needs at least one physical quantity.
            raise Problem(
                404,
                "No traffic data yet",
                "no segment has a fresh 5-minute bucket or a forecast yet, so there is nothing "
                "to publish; retry in a few minutes",
                "no-observation",
            )
        body = datex2_traffic.forecast_document(
            forecasts, snapshot.segments_modified,
            country=runtime.settings.city.country, publisher=runtime.provider,
        )  # fmt: skip
        return render(body, datex2.MEDIA_TYPE)

    key = ("datex2-traffic", horizon)
    rendered = await runtime.documents.get(snapshot.segments_version, key, build)
    # Not remembered for the hot path: its entries would keep old snapshots' documents.
    return Cached(rendered, FLOW_MAX_AGE, snapshot.segments_modified).response(request)
