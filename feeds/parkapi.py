"""ParkAPI shapes: the v1 city response (ParkenDD app, its aggregators) and v3 parking sites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from feeds.formats import iso
from feeds.model import LotView
from streetsense.hours import OpeningStatus

SOURCE_ID: Final = 1  # every lot comes from this one source: the city's own sensors
_V3_TYPES: Final = {"off_street": "CAR_PARK", "on_street": "ON_STREET"}
_V1_TYPES: Final = {"off_street": "garage", "on_street": "street"}
# Our categories in ParkAPI v3's names (it has no motorcycle or general field).
_V3_CATEGORIES: Final = {
    "disabled": "disabled", "women": "woman", "family": "family", "ev_charging": "charging",
    "car_sharing": "carsharing", "bus": "bus", "truck": "truck",
}  # fmt: skip


def v1_state(lot: LotView) -> str:
    """Return ParkAPI v1's state: closed, unknown (hours say so), nodata (no fresh count), open."""
    if lot.status is OpeningStatus.CLOSED:
        return "closed"
    if lot.status is OpeningStatus.UNKNOWN:
        return "unknown"
    return "nodata" if lot.available is None or lot.stale else "open"


def v1_city(lots: Sequence[LotView], now: datetime) -> dict[str, Any]:
    """Return the v1 city document (`lots[]` with free, total, state, coords, ...)."""
    newest = max((lot.observed_at for lot in lots if lot.observed_at), default=None)
    return {
        "last_downloaded": iso(now),
        "last_updated": iso(newest or now),
        "lots": [_v1_lot(lot) for lot in lots],
    }


def _v1_lot(lot: LotView) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": lot.id,
        "name": lot.name,
        "total": lot.capacity,
        "state": v1_state(lot),
        "coords": {"lat": lot.lat, "lng": lot.lon},
        "lot_type": _V1_TYPES[lot.kind],
        "region": lot.area or None,
        "address": lot.facts.get("address") or None,
        "forecast": any(v is not None for v in lot.forecast.values),
    }
    if lot.available is not None:
        # a closed lot has no free count at all: 0 would be read as full
        item["free"] = lot.available
    if lot.opening_hours:
        item["opening_hours"] = lot.opening_hours
    if lot.facts.get("tariff_url"):
        item["url"] = lot.facts["tariff_url"]
    return item


def v3_sites(lots: Sequence[LotView], static_updated: datetime) -> dict[str, Any]:
    """Return ParkAPI v3 parking sites (`items[]`), realtime fields where sensors report."""
    return {"items": [_v3_site(lot, static_updated) for lot in lots], "total_count": len(lots)}


def _coordinate(value: float) -> str:
    # v3 sends coordinates as decimal strings with at most 7 decimals
    return f"{value:.7f}".rstrip("0").rstrip(".")


def _v3_site(lot: LotView, static_updated: datetime) -> dict[str, Any]:
    facts = lot.facts
    site: dict[str, Any] = {
        "source_id": SOURCE_ID,
        "original_uid": lot.id,
        "name": lot.name,
        "type": _V3_TYPES[lot.kind],
        "lat": _coordinate(lot.lat),
        "lon": _coordinate(lot.lon),
        "capacity": lot.capacity,
        "has_realtime_data": True,
        "static_data_updated_at": iso(static_updated),
        "realtime_opening_status": lot.status.value.upper(),
    }
    optional = {
        "operator_name": facts.get("operator"),
        "address": facts.get("address"),
        "public_url": facts.get("tariff_url"),
        "opening_hours": lot.opening_hours,
        "description": f"Fees: {facts['fee']}" if facts.get("fee") else None,
        "has_fee": True if facts.get("fee") else None,
        "fee_description": facts.get("fee"),
        "max_height": None if facts.get("max_height_m") is None else round(
            100 * facts["max_height_m"]
        ),
    }  # fmt: skip
    site.update({k: v for k, v in optional.items() if v})
    for category in lot.categories:
        name = _V3_CATEGORIES.get(category.category)
        if name is None:
            continue
        site[f"capacity_{name}"] = category.capacity
        if lot.observed_at is not None:
            site[f"realtime_capacity_{name}"] = category.capacity
        if category.available is not None:
            site[f"realtime_free_capacity_{name}"] = category.available
    if lot.observed_at is not None:
        site["realtime_data_updated_at"] = iso(lot.observed_at)
        site["realtime_capacity"] = lot.capacity
    if lot.available is not None:
        site["realtime_free_capacity"] = lot.available
    return site
