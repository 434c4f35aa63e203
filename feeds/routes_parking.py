"""Parking endpoints: lots, one lot, its history and forecast, the LTA DataMall twin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from feeds import formats, lta, ngsi
from feeds.filters import BoundingBox, Near, parse_bbox, parse_near, select
from feeds.history import history_document
from feeds.http import Cached, Problem, Rendered, render, render_json, respond
from feeds.model import HORIZONS_MIN, LotView
from feeds.negotiate import MEDIA_TYPES, Format, choose
from feeds.runtime import Runtime, require_ready
from feeds.schemas import History, Lot, LotForecastDocument, LotPage, LtaPage, documented
from streetsense.hours import OpeningStatus
from streetsense.registry import SpaceCategory

router = APIRouter(tags=["parking"])
LIVE_MAX_AGE: Final = 5
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000
LOT_FORMATS: Final = (Format.JSON, Format.JSONLD, Format.GEOJSON, Format.CSV)

BboxQuery = Annotated[
    str | None,
    Query(description="min_lon,min_lat,max_lon,max_lat", examples=["10.18,56.14,10.23,56.17"]),
]
NearQuery = Annotated[str | None, Query(description="lat,lon: only within radius_m of it")]
RadiusQuery = Annotated[float, Query(gt=0, le=100_000, description="radius around `near`, m")]
FormatQuery = Annotated[
    Format | None, Query(description="representation; overrides the Accept header")
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (json, jsonld)")]
OffsetQuery = Annotated[int, Query(ge=0, le=1_000_000, description="items to skip")]


def select_lots(
    lots: Sequence[LotView],
    box: BoundingBox | None,
    near: Near | None,
    min_free: int | None,
    kind: str | None,
    category: SpaceCategory | None = None,
    status: OpeningStatus | None = None,
) -> list[tuple[LotView, float | None]]:
    """Filter lots; with `near`, sort them by distance and return it alongside.

    With `category`, only lots that have such spaces, and `min_free` counts that category's
    free spaces (a closed lot, or a category no sensor watches, has none to count).
    """

    def keep(lot: LotView) -> bool:
        if kind is not None and lot.kind != kind:
            return False
        if status is not None and lot.status is not status:
            return False
        available = lot.available
        if category is not None:
            found = lot.category(category.value)
            if found is None:
                return False
            available = found.available
        return min_free is None or (available is not None and available >= min_free)

    return select(lots, lambda lot: ((lot.lon, lot.lat),), box, near, keep)


@router.get(
    "/v1/parking/lots",
    summary="Every lot with its availability, trend and forecast",
    responses=documented(LotPage, "application/ld+json", "application/geo+json", "text/csv"),
)
async def list_lots(
    request: Request,
    bbox: BboxQuery = None,
    near: NearQuery = None,
    radius_m: RadiusQuery = 1000.0,
    min_free: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    kind: Annotated[str | None, Query(pattern="^(off_street|on_street)$")] = None,
    category: Annotated[
        SpaceCategory | None,
        Query(description="only lots with such spaces; `min_free` then counts these"),
    ] = None,
    status: Annotated[OpeningStatus | None, Query(description="open, closed or unknown")] = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    offset: OffsetQuery = 0,
    format: FormatQuery = None,
) -> Response:
    """List lots; json and jsonld are paged, geojson and csv are the whole bulk download."""
    runtime = require_ready(request)
    chosen = choose(request, format, LOT_FORMATS)
    snapshot = runtime.engine.snapshot
    params = (bbox, near, radius_m, min_free, kind, category, status, limit, offset)
    key = ("lots", snapshot.lots_version, chosen, params)

    def build() -> Rendered:
        picked = select_lots(
            snapshot.lots, parse_bbox(bbox), parse_near(near, radius_m), min_free, kind,
            category, status,
        )  # fmt: skip
        return _render_lots(request, runtime, chosen, picked, limit, offset)

    rendered = runtime.cache.get(key, build)
    return runtime.remember(
        request, snapshot, Cached(rendered, LIVE_MAX_AGE, snapshot.lots_modified)
    )


def _render_lots(
    request: Request,
    runtime: Runtime,
    chosen: Format,
    picked: list[tuple[LotView, float | None]],
    limit: int,
    offset: int,
) -> Rendered:
    if chosen is Format.CSV:
        return render(formats.lots_csv(lot for lot, _ in picked).encode(), MEDIA_TYPES[chosen])
    if chosen is Format.GEOJSON:
        return render_json(formats.lots_geojson(lot for lot, _ in picked), MEDIA_TYPES[chosen])
    page = picked[offset : offset + limit]
    if chosen is Format.JSONLD:
        entities = [
            ngsi.lot_entity(lot, runtime.provider, runtime.settings.city.timezone)
            for lot, _ in page
        ]
        return render_json(entities, ngsi.MEDIA_TYPE)
    items = []
    for lot, distance in page:
        item = formats.lot_dict(lot)
        if distance is not None:
            item["distance_m"] = round(distance, 1)
        items.append(item)
    following = offset + limit
    document: dict[str, Any] = {
        "total": len(picked),
        "offset": offset,
        "limit": limit,
        "count": len(items),
        "next": _page_url(request, following) if following < len(picked) else None,
        "lots": items,
    }
    return render_json(document)


def _page_url(request: Request, offset: int) -> str:
    query = dict(request.query_params)
    query["offset"] = str(offset)
    return f"{request.url.path}?{urlencode(query)}"


def _lot_or_404(runtime: Runtime, lot_id: str) -> LotView:
    lot = runtime.engine.snapshot.lot_index.get(lot_id)
    if lot is None:
        raise Problem(
            404,
            "Unknown lot",
            f"there is no lot '{lot_id[:64]}'; list the lots at /v1/parking/lots",
            "unknown-lot",
        )
    return lot


@router.get(
    "/v1/parking/lots/{lot_id}",
    summary="One lot",
    responses=documented(Lot, "application/ld+json"),
)
async def get_lot(request: Request, lot_id: str, format: FormatQuery = None) -> Response:
    """Return one lot (json or jsonld)."""
    runtime = require_ready(request)
    chosen = choose(request, format, (Format.JSON, Format.JSONLD))
    lot = _lot_or_404(runtime, lot_id)
    snapshot = runtime.engine.snapshot
    document = (
        ngsi.lot_entity(lot, runtime.provider, runtime.settings.city.timezone)
        if chosen is Format.JSONLD
        else formats.lot_dict(lot)
    )
    rendered = render_json(document, MEDIA_TYPES[chosen])
    modified = lot.observed_at or snapshot.lots_modified
    return runtime.remember(request, snapshot, Cached(rendered, LIVE_MAX_AGE, modified))


@router.get(
    "/v1/parking/lots/{lot_id}/history",
    summary="A lot's occupancy over time",
    responses=documented(History),
)
def get_history(
    request: Request,
    lot_id: str,
    start: Annotated[datetime | None, Query(alias="from", description="ISO 8601, UTC")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO 8601; default now")] = None,
    resolution: Annotated[str | None, Query(pattern="^(5m|1h|1d)$")] = None,
) -> Response:
    """Return the lot's aggregate occupancy per bucket (never anything per spot)."""
    runtime = require_ready(request)
    lot = _lot_or_404(runtime, lot_id)
    document = history_document(runtime, lot, start, end, resolution)
    # Past buckets change only as the rollups catch up, so a minute of caching is safe;
    # the ETag is what revalidates, Last-Modified is just when this was read.
    read_at = datetime.now(UTC).replace(microsecond=0)
    return respond(request, render_json(document), max_age=60, last_modified=read_at)


@router.get(
    "/v1/parking/lots/{lot_id}/forecast",
    summary="Free spaces expected ahead",
    responses=documented(LotForecastDocument),
)
async def get_forecast(request: Request, lot_id: str) -> Response:
    """Return the lot's forecast availability at +15/+30/+60 minutes, with its 80% band,
    re-anchored on the free spaces the lot has now."""
    runtime = require_ready(request)
    lot = _lot_or_404(runtime, lot_id)
    values = formats.forecast_values(lot.forecast, "available")
    forecast = lot.forecast
    start = forecast.start
    document = {
        "lot": lot.id,
        "capacity": lot.capacity,
        "issued_at": formats.iso(forecast.issued_at),
        "anchored_at": formats.iso(forecast.anchored_at),
        "status": lot.status.value,
        "points": [
            {
                "horizon_min": minutes,
                "at": formats.iso(start + timedelta(minutes=minutes)) if start else None,
                "available": values[f"available_{minutes}m"],
                "available_lo80": values[f"available_{minutes}m_lo80"],
                "available_hi80": values[f"available_{minutes}m_hi80"],
                "status": status.value if status else None,
            }
            for minutes, status in zip(HORIZONS_MIN, _statuses(lot), strict=True)
        ],
        "reason": forecast.reason,
        "reason_code": forecast.reason_code,
    }
    modified = runtime.engine.snapshot.lots_modified
    return respond(request, render_json(document), max_age=60, last_modified=modified)


def _statuses(lot: LotView) -> tuple[OpeningStatus | None, ...]:
    return lot.forecast.statuses or (None,) * len(HORIZONS_MIN)


@router.get(
    "/ltaodataservice/CarParkAvailabilityv2",
    summary="LTA DataMall CarParkAvailabilityv2 twin (plus TotalLots and freshness)",
    tags=["compatibility"],
    responses=documented(LtaPage),
)
async def lta_availability(
    request: Request,
    skip: Annotated[int, Query(alias="$skip", ge=0, le=10_000_000)] = 0,
) -> Response:
    """Return lots as DataMall does: 500 per page, paged with `$skip`."""
    runtime = require_ready(request)
    snapshot = runtime.engine.snapshot
    # From the settings, never the request's Host header: a client may send any Host.
    metadata = runtime.public_url + "/ltaodataservice/$metadata#CarParkAvailability"
    key = ("lta", snapshot.lots_version, skip)

    def build() -> Rendered:
        page = lta.lta_page(snapshot.lots, skip, runtime.provider, metadata)
        return render(orjson.dumps(page), "application/json")

    rendered = runtime.cache.get(key, build)
    return runtime.remember(
        request, snapshot, Cached(rendered, LIVE_MAX_AGE, snapshot.lots_modified)
    )
