"""A read-only twin of Singapore LTA DataMall's CarParkAvailabilityv2, plus what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from feeds.formats import iso
from feeds.model import LotView

PAGE: Final = 500  # DataMall pages by 500 records with `$skip`
LOT_TYPE_CAR: Final = "C"
# DataMall's lot types: C cars, Y motorcycles, H heavy vehicles. Our other categories
# (disabled, EV charging, ...) are car spaces.
LOT_TYPES: Final = {"motorcycle": "Y", "bus": "H", "truck": "H"}


def lta_page(lots: Sequence[LotView], skip: int, agency: str, metadata_url: str) -> dict[str, Any]:
    """Return one page of records shaped like CarParkAvailabilityv2 (`value[]`).

    One record per lot and LotType. Lots without any count yet, and closed lots, are left out:
    that feed has no way to say "unknown" or "closed" (0 would read as full).
    """
    records = [
        record for lot in lots if lot.available is not None for record in _records(lot, agency)
    ]
    return {"odata.metadata": metadata_url, "value": records[skip : skip + PAGE]}


def _records(lot: LotView, agency: str) -> list[dict[str, Any]]:
    """Return the lot's C record and, where sensors count them, its Y and H records."""
    typed: dict[str, list[int]] = {}
    for category in lot.categories:
        kind = LOT_TYPES.get(category.category)
        if kind is not None and category.available is not None:
            sums = typed.setdefault(kind, [0, 0])
            sums[0] += category.available
            sums[1] += category.capacity
    assert lot.available is not None
    car_free = lot.available - sum(v[0] for v in typed.values())
    car_total = lot.capacity - sum(v[1] for v in typed.values())
    out = [_record(lot, agency, LOT_TYPE_CAR, max(0, car_free), car_total)]
    out += [_record(lot, agency, kind, free, total) for kind, (free, total) in typed.items()]
    return out


def _record(lot: LotView, agency: str, lot_type: str, available: int, total: int) -> dict[str, Any]:
    return {
        "CarParkID": lot.id,
        "Area": lot.area,
        "Development": lot.name,
        "Location": f"{lot.lat} {lot.lon}",
        "AvailableLots": available,
        "LotType": lot_type,
        "Agency": agency,
        # Our additions (DataMall's users ask for exactly these): capacity and freshness.
        "TotalLots": total,
        "UpdateDatetime": iso(lot.observed_at),
        "Stale": lot.stale,
    }
