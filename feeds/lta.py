"""A read-only twin of Singapore LTA DataMall's CarParkAvailabilityv2, plus what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from feeds.formats import iso
from feeds.model import LotView

PAGE: Final = 500  # DataMall pages by 500 records with `$skip`
LOT_TYPE_CAR: Final = "C"


def lta_page(lots: Sequence[LotView], skip: int, agency: str, metadata_url: str) -> dict[str, Any]:
    """Return one page of lots shaped like CarParkAvailabilityv2 (`value[]`).

    Lots without any count yet are left out: that feed has no way to say "unknown".
    """
    page = [lot for lot in lots if lot.available is not None][skip : skip + PAGE]
    return {
        "odata.metadata": metadata_url,
        "value": [_record(lot, agency) for lot in page],
    }


def _record(lot: LotView, agency: str) -> dict[str, Any]:
    return {
        "CarParkID": lot.id,
        "Area": lot.area,
        "Development": lot.name,
        "Location": f"{lot.lat} {lot.lon}",
        "AvailableLots": lot.available,
        "LotType": LOT_TYPE_CAR,
        "Agency": agency,
        # Our additions (DataMall's users ask for exactly these): capacity and freshness.
        "TotalLots": lot.capacity,
        "UpdateDatetime": iso(lot.observed_at),
        "Stale": lot.stale,
    }
