"""Representations of lots and segments: our JSON, GeoJSON and CSV (NGSI-LD and LTA elsewhere)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from feeds.model import HORIZONS_MIN, Forecast, LotView, SegmentView
from streetsense.csvcells import csv_cell
from streetsense.registry import LotFacts, SpaceCategory

# a forecast value, then the low and high ends of its 80% band
BANDS: Final = ("", "_lo80", "_hi80")
FACT_FIELDS: Final = tuple(LotFacts.__dataclass_fields__)
CATEGORY_NAMES: Final = tuple(c.value for c in SpaceCategory)
LOT_CSV_FIELDS: Final = (
    "id", "name", "kind", "area", "lat", "lon", "capacity", "available", "occupied",
    "occupancy", "trend", "observed_at", "stale", "status", "status_reason", "opening_hours",
    *(f"forecast_available_{m}m{band}" for m in HORIZONS_MIN for band in BANDS),
    *(f"{what}_{c}" for c in CATEGORY_NAMES for what in ("capacity", "available")),
    *(f for f in FACT_FIELDS if f != "entrances"), "checks",
)  # fmt: skip
SEGMENT_CSV_FIELDS: Final = (
    "id", "name", "direction", "area", "speed_limit_kmh", "capacity_vph", "bucket",
    "vehicle_count", "flow_vph", "mean_speed", "detector_occupancy", "congestion", "stale",
    *(f"forecast_{what}_{m}m{band}" for what in ("vehicle_count", "mean_speed")
      for m in HORIZONS_MIN for band in BANDS),
)  # fmt: skip


def iso(moment: datetime | None) -> str | None:
    """Format a UTC time as RFC 3339 with a Z."""
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def forecast_values(forecast: Forecast, what: str) -> dict[str, float | None]:
    """Return `{"<what>_15m": ..., "<what>_15m_lo80": ..., "<what>_15m_hi80": ...}` of every
    horizon (null where there is no value or band)."""
    out: dict[str, float | None] = {}
    for band, values in zip(BANDS, (forecast.values, forecast.low, forecast.high), strict=True):
        for index, minutes in enumerate(HORIZONS_MIN):
            value = values[index] if index < len(values) else None
            out[f"{what}_{minutes}m{band}"] = None if value is None else round(value, 1)
    return out


def forecast_dict(forecast: Forecast, what: str) -> dict[str, Any]:
    """Return a forecast as `{"<what>_15m": ..., "<what>_15m_lo80": ..., "issued_at": ...,
    "from": ..., "anchored_at": ..., "reason": ...}`."""
    out: dict[str, Any] = forecast_values(forecast, what)
    out["issued_at"] = iso(forecast.issued_at)
    out["from"] = iso(forecast.start)
    out["anchored_at"] = iso(forecast.anchored_at)
    if forecast.statuses:
        out.update(
            {f"status_{m}m": s.value for m, s in zip(HORIZONS_MIN, forecast.statuses, strict=True)}
        )
    if forecast.reason:
        out["reason"] = forecast.reason
        out["reason_code"] = forecast.reason_code
    return out


def lot_dict(lot: LotView) -> dict[str, Any]:
    """Return our JSON object of a lot."""
    return {
        "id": lot.id,
        "name": lot.name,
        "kind": lot.kind,
        "area": lot.area,
        "location": {"lat": lot.lat, "lon": lot.lon},
        "capacity": lot.capacity,
        "available": lot.available,
        "occupied": lot.occupied,
        "occupancy": lot.occupancy,
        "trend": None if lot.trend is None else lot.trend.value,
        "observed_at": iso(lot.observed_at),
        "stale": lot.stale,
        "status": lot.status.value,
        "status_source": lot.status_source,
        "status_reason": lot.status_reason,
        "status_until": iso(lot.status_until),
        "opening_hours": lot.opening_hours or None,
        "categories": [
            {
                "category": c.category,
                "capacity": c.capacity,
                "available": c.available,
                "occupied": c.occupied,
            }
            for c in lot.categories
        ],
        "facts": facts_dict(lot),
        "checks": [{"code": c.code, "reason": c.reason} for c in lot.checks],
        "forecast": forecast_dict(lot.forecast, "available"),
    }


def facts_dict(lot: LotView) -> dict[str, Any]:
    """Return every static fact of a lot, null where the registry says nothing."""
    return {name: lot.facts.get(name) for name in FACT_FIELDS}


def segment_dict(segment: SegmentView) -> dict[str, Any]:
    """Return our JSON object of a segment."""
    return {
        "id": segment.id,
        "name": segment.name,
        "direction": segment.direction,
        "area": segment.area,
        "geometry": {"type": "LineString", "coordinates": [list(p) for p in segment.coordinates]},
        "speed_limit_kmh": segment.speed_limit_kmh,
        "capacity_vph": segment.capacity_vph,
        "bucket": iso(segment.bucket),
        "vehicle_count": segment.vehicle_count,
        "flow_vph": segment.flow_vph,
        "mean_speed": _round(segment.mean_speed),
        "detector_occupancy": _round(segment.detector_occupancy),
        "congestion": segment.congestion.value,
        "stale": segment.stale,
        "forecast": forecast_dict(segment.forecast, "vehicle_count"),
        "speed_forecast": forecast_dict(segment.speed_forecast, "mean_speed"),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def lots_geojson(lots: Iterable[LotView]) -> dict[str, Any]:
    """Return a GeoJSON FeatureCollection of lots (points)."""
    features = []
    for lot in lots:
        properties = lot_dict(lot)
        del properties["location"]
        features.append(
            {
                "type": "Feature",
                "id": lot.id,
                "geometry": {"type": "Point", "coordinates": [lot.lon, lot.lat]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def segments_geojson(segments: Iterable[SegmentView]) -> dict[str, Any]:
    """Return a GeoJSON FeatureCollection of segments (line strings)."""
    features = []
    for segment in segments:
        properties = segment_dict(segment)
        geometry = properties.pop("geometry")
        features.append(
            {"type": "Feature", "id": segment.id, "geometry": geometry, "properties": properties}
        )
    return {"type": "FeatureCollection", "features": features}


def lots_csv(lots: Iterable[LotView]) -> str:
    """Return lots as CSV with a header row."""
    rows = []
    for lot in lots:
        row = lot_dict(lot)
        row["lat"], row["lon"] = lot.lat, lot.lon
        row.update(
            {f"forecast_{k}": v for k, v in forecast_values(lot.forecast, "available").items()}
        )
        for category in lot.categories:
            row[f"capacity_{category.category}"] = category.capacity
            row[f"available_{category.category}"] = category.available
        row.update(row.pop("facts"))
        row["checks"] = "; ".join(f"{c.code}: {c.reason}" for c in lot.checks)
        rows.append(row)
    return _csv(LOT_CSV_FIELDS, rows)


def segments_csv(segments: Iterable[SegmentView]) -> str:
    """Return segments as CSV with a header row (forecast columns as in the lots CSV)."""
    rows = []
    for segment in segments:
        row = segment_dict(segment)
        for forecast, what in (
            (segment.forecast, "vehicle_count"),
            (segment.speed_forecast, "mean_speed"),
        ):
            row.update({f"forecast_{k}": v for k, v in forecast_values(forecast, what).items()})
        rows.append(row)
    return _csv(SEGMENT_CSV_FIELDS, rows)


def _csv(fields: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    """Write rows as CSV: empty cells for null, booleans as in JSON, no formula cells."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else csv_cell(row[k]) for k in fields})
    return out.getvalue()
