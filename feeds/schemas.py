"""Response shapes for the OpenAPI document (responses are rendered by feeds.formats)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Location(BaseModel):
    """WGS 84 position."""

    lat: float
    lon: float


ANCHORED = (
    "time of the live value the forecast was re-anchored on (null: it was not, for want of a "
    "fresh value or of the run's anchor); the first horizon then agrees with it"
)

UNAVAILABLE = (
    "why there are no values, for apps: pending (no forecast tables), no_recent_run (no run "
    "covers the next hour), closed (the lot is closed then), or why the analytics job left "
    "the series out: no_data, too_short (under a day of readings), constant (a stuck counter), "
    "over_capacity (counts above the capacity), capacity_changed (a new capacity held under "
    "a day)"
)


class LotForecast(BaseModel):
    """Free spaces expected ahead with their 80% band; null values carry a reason (a closed
    lot has none)."""

    available_15m: float | None
    available_30m: float | None
    available_60m: float | None
    available_15m_lo80: float | None = Field(None, description="80% band, low end")
    available_30m_lo80: float | None = None
    available_60m_lo80: float | None = None
    available_15m_hi80: float | None = Field(None, description="80% band, high end")
    available_30m_hi80: float | None = None
    available_60m_hi80: float | None = None
    from_: str | None = Field(None, alias="from", description="when the horizons count from")
    anchored_at: str | None = Field(None, description=ANCHORED)
    status_15m: str | None = Field(None, description="open, closed or unknown at +15 min")
    status_30m: str | None = None
    status_60m: str | None = None
    issued_at: str | None = Field(description="when the forecast run was made (RFC 3339)")
    reason: str | None = Field(None, description="why there are no values, for people")
    reason_code: str | None = Field(None, description=UNAVAILABLE)


class Category(BaseModel):
    """Capacity and availability of one space category of a lot."""

    category: str = Field(
        description="general, disabled, ev_charging, women, family, car_sharing, motorcycle, "
        "bus or truck"
    )
    capacity: int
    available: int | None = Field(
        description="free spaces; null when no sensor watches them or the lot is closed"
    )
    occupied: int | None


class Facts(BaseModel):
    """Static facts from the registry; null where it says nothing."""

    operator: str | None
    address: str | None
    entrances: list[list[float]] | None = Field(description="[lon, lat] points")
    max_height_m: float | None
    park_and_ride: bool | None
    fee: str | None = Field(description="a summary, e.g. '3 EUR/h, 25 EUR/day'")
    tariff_url: str | None
    phone: str | None
    email: str | None


class CheckResult(BaseModel):
    """A meaning check the lot's counts failed, with the reason."""

    code: str = Field(
        description="over_capacity, negative_occupancy, counter_disagrees or category_over_capacity"
    )
    reason: str


class Lot(BaseModel):
    """A lot: aggregate counts only."""

    id: str
    name: str
    kind: str = Field(description="off_street or on_street")
    area: str
    location: Location
    capacity: int
    available: int | None = Field(
        description="free spaces; null until a sensor reported, and null while the lot is "
        "closed (a closed lot is not full)"
    )
    occupied: int | None
    occupancy: float | None = Field(description="occupied share of capacity, 0-1")
    trend: str | None = Field(description="filling, emptying or steady vs 15 minutes ago")
    observed_at: str | None = Field(description="newest reading behind the count")
    stale: bool = Field(
        description="true when neither a reading nor any message from the lot's sensors arrived "
        "within feeds.stale_after_s (or no sensor has reported yet)"
    )
    status: str = Field(description="open, closed or unknown")
    status_source: str = Field(description="opening_hours or operator (an override)")
    status_reason: str
    status_until: str | None = Field(description="when the status next changes, if known")
    opening_hours: str | None = Field(description="OpenStreetMap opening_hours; null: 24/7")
    categories: list[Category] = Field(description="empty when the lot has no categories")
    facts: Facts
    checks: list[CheckResult]
    forecast: LotForecast
    distance_m: float | None = Field(None, description="only with `near`")


class LotPage(BaseModel):
    """One page of lots."""

    total: int
    offset: int
    limit: int
    count: int
    next: str | None = Field(description="URL of the next page, null on the last")
    lots: list[Lot]


class HistoryPoint(BaseModel):
    """One rollup bucket of a lot."""

    bucket: str
    occupied: float
    available: float
    occupancy: float
    samples: int


class History(BaseModel):
    """A lot's occupancy over time."""

    lot: str
    capacity: int
    from_: str = Field(alias="from")
    to: str
    resolution: str
    points: list[HistoryPoint]


class ForecastPoint(BaseModel):
    """Free spaces expected at one horizon (none while the lot is closed then)."""

    horizon_min: int
    at: str | None
    available: float | None
    available_lo80: float | None = Field(None, description="80% band, low end")
    available_hi80: float | None = Field(None, description="80% band, high end")
    status: str | None = Field(description="open, closed or unknown at that time")


class LotForecastDocument(BaseModel):
    """A lot's forecast."""

    lot: str
    capacity: int
    status: str
    issued_at: str | None
    anchored_at: str | None = Field(None, description=ANCHORED)
    points: list[ForecastPoint]
    reason: str | None
    reason_code: str | None = Field(None, description=UNAVAILABLE)


class SegmentForecast(BaseModel):
    """Vehicles per 5 minutes expected ahead, with their 80% band."""

    vehicle_count_15m: float | None
    vehicle_count_30m: float | None
    vehicle_count_60m: float | None
    vehicle_count_15m_lo80: float | None = None
    vehicle_count_30m_lo80: float | None = None
    vehicle_count_60m_lo80: float | None = None
    vehicle_count_15m_hi80: float | None = None
    vehicle_count_30m_hi80: float | None = None
    vehicle_count_60m_hi80: float | None = None
    issued_at: str | None
    from_: str | None = Field(None, alias="from", description="when the horizons count from")
    anchored_at: str | None = Field(None, description=ANCHORED)
    reason: str | None = None
    reason_code: str | None = Field(None, description=UNAVAILABLE)


class SpeedForecast(BaseModel):
    """Mean speed (km/h) expected ahead, with its 80% band."""

    mean_speed_15m: float | None
    mean_speed_30m: float | None
    mean_speed_60m: float | None
    mean_speed_15m_lo80: float | None = None
    mean_speed_30m_lo80: float | None = None
    mean_speed_60m_lo80: float | None = None
    mean_speed_15m_hi80: float | None = None
    mean_speed_30m_hi80: float | None = None
    mean_speed_60m_hi80: float | None = None
    issued_at: str | None
    from_: str | None = Field(None, alias="from", description="when the horizons count from")
    anchored_at: str | None = Field(None, description=ANCHORED)
    reason: str | None = None
    reason_code: str | None = Field(None, description=UNAVAILABLE)


class SegmentForecastStep(BaseModel):
    """A segment's expected traffic at one step ahead."""

    minutes_ahead: int
    at: str
    vehicle_count: float | None = Field(description="vehicles in the 5 minutes from `at`")
    vehicle_count_lo80: float | None
    vehicle_count_hi80: float | None
    flow_vph: float | None = Field(description="vehicles per hour")
    mean_speed: float | None = Field(description="km/h")
    mean_speed_lo80: float | None
    mean_speed_hi80: float | None


class SegmentForecastDocument(BaseModel):
    """A segment's flow and speed forecast, every 5 minutes up to the horizon asked."""

    segment: str
    issued_at: str | None
    from_: str = Field(alias="from", description="when the steps count from")
    horizon_min: int
    flow_anchored_at: str | None = Field(description=ANCHORED)
    speed_anchored_at: str | None = Field(description=ANCHORED)
    steps: list[SegmentForecastStep]
    reason: str | None
    reason_code: str | None = Field(None, description=UNAVAILABLE)


class Segment(BaseModel):
    """A road segment with its latest complete 5-minute flow bucket."""

    id: str
    name: str
    direction: str
    area: str
    geometry: dict[str, Any] = Field(description="GeoJSON LineString")
    speed_limit_kmh: float
    capacity_vph: float
    bucket: str | None
    vehicle_count: float | None
    flow_vph: float | None
    mean_speed: float | None = Field(description="km/h")
    detector_occupancy: float | None = Field(description="%")
    congestion: str = Field(description="free, moderate, heavy, severe or unknown")
    stale: bool
    forecast: SegmentForecast
    speed_forecast: SpeedForecast
    distance_m: float | None = None


class SegmentPage(BaseModel):
    """One page of segments."""

    total: int
    offset: int
    limit: int
    count: int
    segments: list[Segment]


class LtaRecord(BaseModel):
    """One CarParkAvailabilityv2 record, with our additions."""

    CarParkID: str
    Area: str
    Development: str
    Location: str = Field(description='"lat lon"')
    AvailableLots: int
    LotType: str
    Agency: str
    TotalLots: int
    UpdateDatetime: str | None
    Stale: bool


class LtaPage(BaseModel):
    """A DataMall page."""

    odata_metadata: str = Field(alias="odata.metadata")
    value: list[LtaRecord]


class ProblemDocument(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


def documented(model: type[BaseModel], *media_types: str) -> dict[int | str, dict[str, Any]]:
    """Return `responses=` for a route that answers `model` as JSON (and other media types)."""
    content: dict[str, Any] = {media: {} for media in media_types}
    return {**_refusals(), 200: {"model": model, "content": content}}


def documented_as(media_type: str) -> dict[int | str, dict[str, Any]]:
    """Return `responses=` for a route that answers in `media_type` only (e.g. DATEX II XML)."""
    return {**_refusals(), 200: {"content": {media_type: {}}}}


def _refusals() -> dict[int | str, dict[str, Any]]:
    problem = {"model": ProblemDocument, "content": {"application/problem+json": {}}}
    return {
        304: {"description": "Not Modified (revalidation)"},
        400: problem,
        404: problem,
        429: problem,
        503: problem,
    }
