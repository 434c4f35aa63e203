"""Write a synthetic city as the registry TOML that `streetsense registry load` reads."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from simulators.city import Character, City, SimLot, SimSegment
from streetsense.registry import LotKind, Registry, parse_registry

Table = Mapping[str, object]


def registry_tables(city: City) -> dict[str, list[dict[str, object]]]:
    """Return the city as registry tables (`site`, `lot`, `spot`, `segment`, `device`)."""
    tables: dict[str, list[dict[str, object]]] = {
        "site": [{"id": city.site, "name": city.name}],
        "lot": [],
        "spot": [],
        "segment": [],
        "device": [],
    }
    for lot in city.lots:
        _add_lot(tables, city.site, lot)
    for segment in city.segments:
        _add_segment(tables, city.site, segment)
    return tables


# Garages by the shops and the stadium close at night; the others are open at all times.
NIGHT_CLOSING: dict[Character, str] = {
    Character.RETAIL: "Mo-Sa 07:00-22:00; Su 10:00-18:00",
    Character.VENUE: "Mo-Su 08:00-24:00",
}


def _add_lot(tables: dict[str, list[dict[str, object]]], site: str, lot: SimLot) -> None:
    entry: dict[str, object] = {
        "id": lot.id,
        "site": site,
        "name": lot.name,
        "kind": lot.kind.value,
        "capacity": lot.capacity,
        "lat": lot.lat,
        "lon": lot.lon,
        "area": lot.area,
        **_details(lot),
    }
    tables["lot"].append(entry)
    on_street = lot.kind is LotKind.ON_STREET
    device: dict[str, object] = {
        "id": lot.device_id,
        "site": site,
        "kind": "parking" if on_street else "counter",
        "lot": lot.id,
        "lat": lot.lat,
        "lon": lot.lon,
    }
    tables["device"].append(device)
    for index, sensor in enumerate(lot.sensors):
        spot_id = f"{lot.id}-{sensor}"
        spot: dict[str, object] = {
            "id": spot_id, "lot": lot.id, "device": lot.device_id, "sensor": sensor,
        }  # fmt: skip
        category = _kerb_categories(lot).get(index)
        if category:
            spot["category"] = category
        tables["spot"].append(spot)


def _kerb_categories(lot: SimLot) -> dict[int, str]:
    """A kerbside zone's first space is for disabled drivers, its second charges EVs (from 16)."""
    found = {0: "disabled"}
    if len(lot.sensors) >= 16:
        found[1] = "ev_charging"
    return found


def _details(lot: SimLot) -> dict[str, object]:
    """Space categories, hours and facts of a lot, as a city would register them."""
    if lot.kind is LotKind.ON_STREET:
        kerb = _kerb_categories(lot).values()
        return {"spaces": {category: 1 for category in kerb}}
    details: dict[str, object] = {
        "spaces": {
            "disabled": max(2, lot.capacity // 50),
            "ev_charging": lot.capacity // 20,
            "family": lot.capacity // 60,
        },
        "operator": "Streetsense City Parking",
        "fee": "2.50 EUR/h, 20 EUR/day",
        "max_height_m": 2.1,
        "park_and_ride": lot.character is Character.OFFICE and lot.area == "harbour",
    }
    hours = NIGHT_CLOSING.get(lot.character)
    if hours:
        details["opening_hours"] = hours
    return details


def _add_segment(
    tables: dict[str, list[dict[str, object]]], site: str, segment: SimSegment
) -> None:
    tables["segment"].append(
        {
            "id": segment.id,
            "site": site,
            "name": segment.name,
            "direction": "inbound" if segment.inbound else "outbound",
            "coordinates": [list(point) for point in segment.coordinates],
            "speed_limit_kmh": segment.speed_limit_kmh,
            "capacity_vph": segment.capacity_vph,
            "area": segment.area,
        }
    )
    (lon0, lat0), (lon1, lat1) = segment.coordinates[0], segment.coordinates[-1]
    tables["device"].append(
        {
            "id": segment.counter_id,
            "site": site,
            "kind": "traffic",
            "segment": segment.id,
            "lat": lat0,
            "lon": lon0,
        }
    )
    count = len(segment.lamp_ids)
    for index, lamp in enumerate(segment.lamp_ids):
        share = (index + 1) / (count + 1)  # lamps stand evenly along the segment
        tables["device"].append(
            {
                "id": lamp,
                "site": site,
                "kind": "light",
                "segment": segment.id,
                "lat": round(lat0 + (lat1 - lat0) * share, 6),
                "lon": round(lon0 + (lon1 - lon0) * share, 6),
            }
        )


def to_toml(tables: Mapping[str, Iterable[Table]], header: str = "") -> str:
    """Render registry tables as TOML arrays of tables (flat values and lists only)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for name, entries in tables.items():
        for entry in entries:
            lines += ["", f"[[{name}]]"]
            lines += [f"{key} = {_value(value)}" for key, value in entry.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string literal is a valid TOML basic string for the characters we write.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} into the registry file")


def write_registry(city: City, path: str | Path) -> Registry:
    """Write the city's registry file, validated as `streetsense registry load` will read it."""
    tables = registry_tables(city)
    registry = parse_registry(tables)
    header = (
        f"City '{city.name}' generated by `streetsense simulate city --seed {city.seed}`.\n"
        "Load it with: streetsense registry load <this file>"
    )
    Path(path).write_text(to_toml(tables, header), encoding="utf-8")
    return registry
