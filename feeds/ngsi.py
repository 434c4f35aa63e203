"""NGSI-LD entities (key-value form) following the FIWARE Smart Data Models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from feeds.formats import iso
from feeds.model import Congestion, LotView, SegmentView
from streetsense.hours import OpeningStatus, week_schedule

MEDIA_TYPE: Final = "application/ld+json"
CORE_CONTEXT: Final = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
PARKING_CONTEXT: Final = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
)
TRANSPORT_CONTEXT: Final = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/"
    "context.jsonld"
)
_LOT_TYPES: Final = {"off_street": "OffStreetParking", "on_street": "OnStreetParking"}
# Above this share of spaces taken, DATEX II calls a car park "almost full".
_ALMOST_FULL: Final = 0.9
_FIVE_MINUTES: Final = timedelta(minutes=5)
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Our categories in the Smart Data Models' words.
_VEHICLES: Final = {"motorcycle": "motorcycle", "bus": "bus", "truck": "lorry"}
_CATEGORY_TAGS: Final = {"disabled": "forDisabled", "ev_charging": "forElectricalCharging"}


def lot_entity(lot: LotView, provider: str, timezone: str = "UTC") -> dict[str, Any]:
    """Return a lot as an OffStreetParking or OnStreetParking entity."""
    entity_type = _LOT_TYPES[lot.kind]
    names = {c.category for c in lot.categories}
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{entity_type}:{lot.id}",
        "type": entity_type,
        "name": lot.name,
        "location": {"type": "Point", "coordinates": [lot.lon, lot.lat]},
        "totalSpotNumber": lot.capacity,
        "allowedVehicleType": ["car", *(_VEHICLES[n] for n in _VEHICLES if n in names)],
        "requiredPermit": ["noPermitNeeded"] if entity_type == "OffStreetParking" else [],
    }
    tags = [_CATEGORY_TAGS[n] for n in _CATEGORY_TAGS if n in names]
    if lot.facts.get("fee"):
        tags.append("feeCharged")
    if tags:
        entity["category"] = tags
    if provider:
        entity["dataProvider"] = provider
    if lot.occupied is not None:
        entity["occupiedSpotNumber"] = min(lot.occupied, lot.capacity)
        entity["observationDateTime"] = iso(lot.observed_at)
    if lot.available is not None and lot.occupied is not None:
        entity["availableSpotNumber"] = lot.available
        extra = [c.available for c in lot.categories if c.category != "general"]
        if extra and all(a is not None for a in extra):
            entity["extraSpotNumber"] = sum(a for a in extra if a is not None)
        if entity_type == "OffStreetParking":
            entity["occupancy"] = lot.occupancy
    if entity_type == "OffStreetParking":
        status = _status(lot)
        if status:
            entity["status"] = status
        entity["openingHoursSpecification"] = _opening_hours(lot, timezone)
    entity.update(_facts(lot))
    entity["@context"] = [PARKING_CONTEXT, CORE_CONTEXT]
    return entity


def _status(lot: LotView) -> list[str]:
    """Return the model's status list: closed, or open with how full (never full if closed)."""
    if lot.status is OpeningStatus.CLOSED:
        return ["closed"]
    if lot.status is OpeningStatus.UNKNOWN:
        return []  # the model has no "unknown": say nothing rather than guess
    if lot.available is None:
        return ["open"]
    if lot.available == 0:
        return ["open", "full"]
    if (lot.occupancy or 0.0) >= _ALMOST_FULL:
        return ["open", "almostFull"]
    return ["open", "spacesAvailable"]


def _opening_hours(lot: LotView, timezone: str) -> list[dict[str, str]]:
    """Return the coming week's opening hours as schema.org OpeningHoursSpecification."""
    now = datetime.now(UTC)
    return [
        {
            "dayOfWeek": _DAYS[period.weekday],
            "opens": period.opens,
            # schema.org has no 24:00; the last second of the day says "until midnight"
            "closes": "23:59:59" if period.closes == "24:00:00" else period.closes,
        }
        for period in week_schedule(lot.opening_hours, now, timezone)
    ]


def _facts(lot: LotView) -> dict[str, Any]:
    facts = lot.facts
    out: dict[str, Any] = {}
    if facts.get("max_height_m") is not None:
        out["maximumAllowedHeight"] = facts["max_height_m"]
    if facts.get("address"):
        out["address"] = {"streetAddress": facts["address"]}
    if facts.get("operator"):
        out["provider"] = {"name": facts["operator"]}
    contact = {k: facts[f] for k, f in (("telephone", "phone"), ("email", "email")) if facts.get(f)}
    if facts.get("tariff_url"):
        contact["url"] = facts["tariff_url"]
    if contact:
        out["contactPoint"] = contact
    if facts.get("park_and_ride") and lot.kind == "off_street":
        out["usageScenario"] = ["parkAndRide"]
    if facts.get("fee"):
        out["description"] = f"Fees: {facts['fee']}"
    return out


def segment_entity(segment: SegmentView, provider: str) -> dict[str, Any] | None:
    """Return a segment's latest flow as a TrafficFlowObserved entity (None without data)."""
    if segment.bucket is None or segment.vehicle_count is None:
        return None
    start, end = segment.bucket, segment.bucket + _FIVE_MINUTES
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:TrafficFlowObserved:{segment.id}",
        "type": "TrafficFlowObserved",
        "name": segment.name,
        "dateObserved": f"{iso(start)}/{iso(end)}",
        "dateObservedFrom": iso(start),
        "dateObservedTo": iso(end),
        "intensity": segment.vehicle_count,
        "location": {
            "type": "LineString",
            "coordinates": [list(point) for point in segment.coordinates],
        },
        "refRoadSegment": f"urn:ngsi-ld:RoadSegment:{segment.id}",
        "congested": segment.congestion in (Congestion.HEAVY, Congestion.SEVERE),
    }
    if provider:
        entity["dataProvider"] = provider
    if segment.mean_speed is not None:
        entity["averageVehicleSpeed"] = round(segment.mean_speed, 1)
    if segment.detector_occupancy is not None:
        # Ours is a percentage; the model's `occupancy` is a 0-1 fraction of the time.
        entity["occupancy"] = round(min(100.0, segment.detector_occupancy) / 100, 4)
    entity["@context"] = [TRANSPORT_CONTEXT, CORE_CONTEXT]
    return entity
