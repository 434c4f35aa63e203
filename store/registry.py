"""Store the city registry; a re-load of the same content changes nothing."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import psycopg

from streetsense.registry import Lot, Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a registry load did."""

    version: str
    changed: bool
    counts: dict[str, int]


def store_registry(conn: psycopg.Connection, registry: Registry, source: str) -> LoadResult:
    """Upsert a registry in one transaction; entries missing from it are marked inactive.

    Args:
        conn: an open connection.
        registry: the validated registry.
        source: where it came from (a file path), recorded with the version.

    Returns:
        The version, whether anything changed, and the entry counts.
    """
    counts = {
        "sites": len(registry.sites),
        "lots": len(registry.lots),
        "spots": len(registry.spots),
        "segments": len(registry.segments),
        "devices": len(registry.devices),
    }
    version = registry.version
    with conn.transaction():
        current = conn.execute(
            "SELECT version FROM registry_versions ORDER BY loaded_at DESC LIMIT 1"
        ).fetchone()
        if current and current[0] == version:
            return LoadResult(version, changed=False, counts=counts)
        _upsert(conn, registry)
        conn.execute(
            "INSERT INTO registry_versions (version, source, counts) VALUES (%s, %s, %s) "
            "ON CONFLICT (version) DO UPDATE SET loaded_at = now(), source = EXCLUDED.source",
            (version, source, json.dumps(counts)),
        )
    log.info("registry %s loaded from %s: %s", version, source, counts)
    return LoadResult(version, changed=True, counts=counts)


def _upsert(conn: psycopg.Connection, registry: Registry) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sites (site_id, name) VALUES (%s, %s) "
            "ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name",
            [(s.id, s.name) for s in registry.sites],
        )
        cur.executemany(
            "INSERT INTO lots (lot_id, site_id, name, kind, capacity, lat, lon, area, "
            "opening_hours, spaces, facts, active) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true) "
            "ON CONFLICT (lot_id) DO UPDATE SET "
            "site_id = EXCLUDED.site_id, name = EXCLUDED.name, kind = EXCLUDED.kind, "
            "capacity = EXCLUDED.capacity, lat = EXCLUDED.lat, lon = EXCLUDED.lon, "
            "area = EXCLUDED.area, opening_hours = EXCLUDED.opening_hours, "
            "spaces = EXCLUDED.spaces, facts = EXCLUDED.facts, active = true",
            [_lot_row(x) for x in registry.lots],
        )
        cur.executemany(
            "INSERT INTO segments (segment_id, site_id, name, direction, coordinates, "
            "speed_limit_kmh, capacity_vph, area, active) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, true) ON CONFLICT (segment_id) DO UPDATE SET "
            "site_id = EXCLUDED.site_id, name = EXCLUDED.name, direction = EXCLUDED.direction, "
            "coordinates = EXCLUDED.coordinates, speed_limit_kmh = EXCLUDED.speed_limit_kmh, "
            "capacity_vph = EXCLUDED.capacity_vph, area = EXCLUDED.area, active = true",
            [
                (
                    s.id,
                    s.site,
                    s.name,
                    s.direction,
                    json.dumps(s.coordinates),
                    s.speed_limit_kmh,
                    s.capacity_vph,
                    s.area,
                )
                for s in registry.segments
            ],
        )
        cur.executemany(
            "INSERT INTO devices (device_id, site_id, kind, lot_id, segment_id, lat, lon, "
            "registered_by, active) VALUES (%s, %s, %s, %s, %s, %s, %s, 'registry', true) "
            "ON CONFLICT (device_id) DO UPDATE SET site_id = EXCLUDED.site_id, "
            "kind = EXCLUDED.kind, lot_id = EXCLUDED.lot_id, segment_id = EXCLUDED.segment_id, "
            "lat = EXCLUDED.lat, lon = EXCLUDED.lon, registered_by = 'registry', active = true",
            [
                (d.id, d.site, d.kind.value, d.lot, d.segment, d.lat, d.lon)
                for d in registry.devices
            ],
        )
        # Spots are a mapping, not history: replace them wholesale, but for devices fleet
        # enrolment registered (the allow-list placed them, not this file).
        cur.execute(
            "DELETE FROM spots WHERE device_id NOT IN "
            "(SELECT device_id FROM devices WHERE registered_by = 'fleet')"
        )
        cur.executemany(
            "INSERT INTO spots (spot_id, lot_id, device_id, sensor, category) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(s.id, s.lot, s.device, s.sensor or "", s.category.value) for s in registry.spots],
        )
        for table, key, ids in (
            ("lots", "lot_id", [x.id for x in registry.lots]),
            ("segments", "segment_id", [x.id for x in registry.segments]),
        ):
            cur.execute(
                psycopg.sql.SQL("UPDATE {} SET active = false WHERE NOT ({} = ANY(%s))").format(
                    psycopg.sql.Identifier(table), psycopg.sql.Identifier(key)
                ),
                (ids,),
            )
        cur.execute(
            "UPDATE devices SET active = false "
            "WHERE registered_by = 'registry' AND NOT (device_id = ANY(%s))",
            ([d.id for d in registry.devices],),
        )


def _lot_row(lot: Lot) -> tuple[object, ...]:
    facts = asdict(lot.facts)
    facts["entrances"] = [list(point) for point in lot.facts.entrances]
    # Unset facts are left out, so readers see only what the registry says.
    kept = {k: v for k, v in facts.items() if v not in ("", None, [])}
    spaces = {category.value: count for category, count in lot.spaces}
    return (
        lot.id, lot.site, lot.name, lot.kind.value, lot.capacity, lot.lat, lot.lon, lot.area,
        lot.opening_hours, json.dumps(spaces), json.dumps(kept),
    )  # fmt: skip
