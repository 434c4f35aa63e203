"""NGSI-LD entities (key-value form) following the FIWARE Smart Data Models."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from feeds.formats import iso
from feeds.model import Congestion, LotView, SegmentView

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


def lot_entity(lot: LotView, provider: str) -> dict[str, Any]:
    """Return a lot as an OffStreetParking or OnStreetParking entity."""
    entity_type = _LOT_TYPES[lot.kind]
    entity: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{entity_type}:{lot.id}",
        "type": entity_type,
        "name": lot.name,
        "location": {"type": "Point", "coordinates": [lot.lon, lot.lat]},
        "totalSpotNumber": lot.capacity,
        "allowedVehicleType": ["car"],
    }
    if provider:
        entity["dataProvider"] = provider
    if lot.available is not None and lot.occupied is not None:
        entity["availableSpotNumber"] = lot.available
        entity["occupiedSpotNumber"] = min(lot.occupied, lot.capacity)
        entity["observationDateTime"] = iso(lot.observed_at)
        if entity_type == "OffStreetParking":
            entity["occupancy"] = lot.occupancy
            entity["status"] = [_status(lot)]
    entity["@context"] = [PARKING_CONTEXT, CORE_CONTEXT]
    return entity


def _status(lot: LotView) -> str:
    if lot.available == 0:
        return "full"
    if (lot.occupancy or 0.0) >= _ALMOST_FULL:
        return "almostFull"
    return "spacesAvailable"


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
