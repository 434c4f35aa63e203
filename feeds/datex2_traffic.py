"""DATEX II v3.7 road traffic data: each segment's latest speed and flow and their forecasts.

An `ElaboratedDataPublication` (RoadTrafficData namespace): per segment, the latest fresh
5-minute bucket as two `SinglePhysicalQuantity` (`forecast` false: its `TrafficFlow` and
`TrafficSpeed`), then its forecasts as two `TimeProfiledPhysicalQuantity` (`forecast` true: one
`basicData` per step, each for the 5 minutes starting at the step). The steps are the same
re-anchored steps `/v1/traffic/segments/{id}/forecast` serves, so the first agrees with the
latest bucket the same document carries. DATEX II has no element for a forecast's interval,
so the 80% bands stay in our JSON, GeoJSON and CSV (docs/feeds.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from xml.sax.saxutils import escape

from feeds.datex2 import VERSION, payload_head
from feeds.formats import iso
from feeds.model import SegmentView

PROFILE: Final = f"streetsense traffic, DATEX II v{VERSION}"
NAMESPACES: Final = (
    'xmlns:d2="http://datex2.eu/schema/3/d2Payload" '
    'xmlns:com="http://datex2.eu/schema/3/common" '
    'xmlns:loc="http://datex2.eu/schema/3/locationReferencing" '
    'xmlns:roa="http://datex2.eu/schema/3/roadTrafficData" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
# How a segment is named in `loc:externalReferencing`: our registry's segment id.
REFERENCING_SYSTEM: Final = "streetsense road segment"
SINGLE: Final = "SinglePhysicalQuantity"  # one value: the latest bucket's
PROFILE_OF_TIMES: Final = "TimeProfiledPhysicalQuantity"  # one value per forecast step
BUCKET: Final = timedelta(minutes=5)
PER_HOUR: Final = 12  # 5-minute counts in an hour
_HEADER: Final = (
    "<roa:headerInformation><com:confidentiality>noRestriction</com:confidentiality>"
    "<com:informationStatus>real</com:informationStatus></roa:headerInformation>"
)


@dataclass(frozen=True, slots=True)
class SegmentForecast:
    """One segment as published and its re-anchored steps (feeds.forecast_view.segment_steps)."""

    segment: SegmentView
    steps: dict[str, Any]


def has_data(forecasts: Iterable[SegmentForecast]) -> bool:
    """Tell whether any segment has a fresh bucket or a forecast step to publish."""
    return any(_live(f.segment) or f.steps["steps"] for f in forecasts)


def forecast_document(
    forecasts: Sequence[SegmentForecast], now: datetime, *, country: str, publisher: str
) -> bytes:
    """Return the ElaboratedDataPublication of every segment's latest bucket and forecasts.

    The schema needs at least one physical quantity: check `has_data` first.
    """
    description = f"Road traffic speed and flow, latest and forecast, of {publisher}"
    parts = [
        payload_head(
            "roa:ElaboratedDataPublication", NAMESPACES, PROFILE,
            f"{description} (DATEX II v{VERSION})", now, country, publisher,
        ),
        _HEADER,
    ]  # fmt: skip
    for one in forecasts:
        parts.extend(_segment(one))
    parts.append("</d2:payload>\n")
    return "".join(parts).encode()


def _live(segment: SegmentView) -> bool:
    """Tell whether the segment's latest bucket is fresh and holds a value to publish."""
    values = (segment.vehicle_count, segment.mean_speed)
    return not segment.stale and segment.bucket is not None and values != (None, None)


def _segment(one: SegmentForecast) -> list[str]:
    segment, steps = one.segment, one.steps["steps"]
    where = _location(segment)
    out = []
    if not segment.stale and segment.bucket is not None:
        if segment.vehicle_count is not None:
            flow = _flow(segment.bucket, segment.vehicle_count)
            out.append(_quantity(SINGLE, False, where, [flow]))
        if segment.mean_speed is not None:
            speed = _speed(segment.bucket, segment.mean_speed)
            out.append(_quantity(SINGLE, False, where, [speed]))
    flows = [
        _flow(_at(step), step["vehicle_count"])
        for step in steps
        if step["vehicle_count"] is not None
    ]
    speeds = [
        _speed(_at(step), step["mean_speed"]) for step in steps if step["mean_speed"] is not None
    ]
    out.extend(_quantity(PROFILE_OF_TIMES, True, where, data) for data in (flows, speeds) if data)
    return out


def _at(step: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(step["at"])


def _location(segment: SegmentView) -> str:
    # GML's EPSG:4326 order is latitude then longitude.
    points = " ".join(f"{_decimal(lat)} {_decimal(lon)}" for lon, lat in segment.coordinates)
    return (
        '<roa:pertinentLocation xsi:type="loc:SingleRoadLinearLocation">'
        "<loc:externalReferencing>"
        f"<loc:externalLocationCode>{escape(segment.id)}</loc:externalLocationCode>"
        f"<loc:externalReferencingSystem>{REFERENCING_SYSTEM}</loc:externalReferencingSystem>"
        "</loc:externalReferencing>"
        '<loc:gmlLineString srsDimension="2" srsName="EPSG:4326">'
        f"<loc:posList>{points}</loc:posList></loc:gmlLineString>"
        "</roa:pertinentLocation>"
    )


def _decimal(degrees: float) -> str:
    """Return a coordinate in plain decimals: the schema's posList pattern has no exponent."""
    return f"{degrees:.7f}".rstrip("0").rstrip(".")


def _period(start: datetime) -> str:
    return (
        "<roa:measurementOrCalculationTime><roa:period>"
        f"<com:startOfPeriod>{iso(start)}</com:startOfPeriod>"
        f"<com:endOfPeriod>{iso(start + BUCKET)}</com:endOfPeriod>"
        "</roa:period></roa:measurementOrCalculationTime>"
    )


def _flow(start: datetime, vehicles: float) -> str:
    """Return a TrafficFlow of the 5 minutes from `start`: DATEX II counts vehicles per hour."""
    rate = max(0, round(vehicles * PER_HOUR))
    return (
        '<roa:basicData xsi:type="roa:TrafficFlow">'
        + _period(start)
        + f"<roa:vehicleFlow><com:vehicleFlowRate>{rate}</com:vehicleFlowRate></roa:vehicleFlow>"
        "</roa:basicData>"
    )


def _speed(start: datetime, kmh: float) -> str:
    return (
        '<roa:basicData xsi:type="roa:TrafficSpeed">'
        + _period(start)
        + f"<roa:averageVehicleSpeed><com:speed>{round(kmh, 1)}</com:speed>"
        "</roa:averageVehicleSpeed></roa:basicData>"
    )


def _quantity(kind: str, forecast: bool, where: str, data: Iterable[str]) -> str:
    """Return a physical quantity of class `kind` at `where` holding `data` (basicData)."""
    flag = "true" if forecast else "false"
    return (
        f'<roa:physicalQuantity xsi:type="roa:{kind}"><roa:forecast>{flag}</roa:forecast>'
        f"{where}{''.join(data)}</roa:physicalQuantity>"
    )
