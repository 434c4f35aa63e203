"""Parking in the shapes access points and app ecosystems read: DATEX II v3.7 and ParkAPI."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from feeds import datex2, parkapi
from feeds.engine import Snapshot
from feeds.http import Cached, Rendered, render
from feeds.runtime import Runtime, require_ready
from feeds.table_version import table_version

router = APIRouter(tags=["standards"])
LIVE_MAX_AGE: Final = 5
TABLE_MAX_AGE: Final = 300
XML_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {200: {"content": {datex2.MEDIA_TYPE: {}}}}


@router.get(
    "/v1/parking/datex2/table",
    summary=f"DATEX II v{datex2.VERSION} ParkingTablePublication: every lot's static description",
    responses=XML_RESPONSE,
)
async def datex2_table(request: Request) -> Response:
    """Return every lot's location, capacity per category, opening hours and operator."""
    runtime = require_ready(request)
    snapshot = runtime.engine.snapshot
    version = table_version(snapshot.lots)
    now = datetime.now(UTC)
    # The table changes with the registry; its week of opening hours is redrawn daily.
    key = ("datex2-table", version, now.date())
    city = runtime.settings.city

    def build() -> Rendered:
        body = datex2.table_document(
            snapshot.lots, version, now, country=city.country, publisher=runtime.provider,
            timezone=city.timezone,
        )  # fmt: skip
        return render(body, datex2.MEDIA_TYPE)

    rendered = runtime.cache.get(key, build)
    return runtime.remember(request, snapshot, Cached(rendered, TABLE_MAX_AGE, None))


def _live(request: Request, name: str, build: Callable[[Runtime, Snapshot], Rendered]) -> Response:
    """Answer with a document of every lot, rendered once per snapshot (ETag, 304, gzip)."""
    runtime = require_ready(request)
    snapshot = runtime.engine.snapshot
    rendered = runtime.cache.get((name, snapshot.lots_version), lambda: build(runtime, snapshot))
    return runtime.remember(
        request, snapshot, Cached(rendered, LIVE_MAX_AGE, snapshot.lots_modified)
    )


@router.get(
    "/v1/parking/datex2/status",
    summary=f"DATEX II v{datex2.VERSION} ParkingStatusPublication: every lot's live status",
    responses=XML_RESPONSE,
)
async def datex2_status(request: Request) -> Response:
    """Return opening status, occupancy and free spaces per lot and category; stale lots carry
    a fault, closed lots are `closed` (never `full`)."""

    def build(runtime: Runtime, snapshot: Snapshot) -> Rendered:
        body = datex2.status_document(
            snapshot.lots, table_version(snapshot.lots), snapshot.lots_modified,
            country=runtime.settings.city.country, publisher=runtime.provider,
        )  # fmt: skip
        return render(body, datex2.MEDIA_TYPE)

    return _live(request, "datex2-status", build)


@router.get("/v1/parking/parkapi/v1", summary="ParkAPI v1 city response (ParkenDD)")
async def parkapi_v1(request: Request) -> Response:
    """Return every lot as ParkAPI v1 does: free, total, state open/closed/nodata, coords."""

    def build(_: Runtime, snapshot: Snapshot) -> Rendered:
        document = parkapi.v1_city(snapshot.lots, snapshot.lots_modified)
        return render(orjson.dumps(document), "application/json")

    return _live(request, "parkapi-v1", build)


@router.get("/v1/parking/parkapi/v3/parking-sites", summary="ParkAPI v3 parking sites")
async def parkapi_v3(request: Request) -> Response:
    """Return every lot as a ParkAPI v3 parking site with realtime fields per category."""

    def build(runtime: Runtime, snapshot: Snapshot) -> Rendered:
        document = parkapi.v3_sites(snapshot.lots, runtime.engine.registry_loaded_at)
        return render(orjson.dumps(document), "application/json")

    return _live(request, "parkapi-v3", build)
