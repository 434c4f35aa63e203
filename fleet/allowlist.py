"""The installers' allow-list: which serial becomes which device, where, sensing what.

A CSV file (a spreadsheet's export) or TOML. CSV columns: `serial,device,site,kind` and, as
needed, `lot`, `segment`, `spots`, `lat`, `lon`, `batch`; `spots` is `SPOT=SENSOR[:category]`
separated by `;` (`lot3-A1=A1;lot3-A2=A2:disabled`; a spot sensed by the device itself has no
`=SENSOR`). TOML: one `[[device]]` table per device with the same keys, `spots` an array of
`{spot, sensor, category}` tables. Every mistake names the file, the line and the fix.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from store.fleet_enrolment import Placement, SpotPlace
from streetsense.errors import ConfigError
from streetsense.fleet_protocol import is_valid_serial
from streetsense.ids import describe_bad_id, is_valid_id
from streetsense.registry import DeviceKind, SpaceCategory

KEYS: Final = ("serial", "device", "site", "kind", "lot", "segment", "spots", "lat", "lon",
               "batch")  # fmt: skip
MAX_ENTRIES: Final = 100_000


def load_allowlist(path: str | Path) -> list[Placement]:
    """Read and check an allow-list file (.csv or .toml).

    Raises:
        ConfigError: unreadable, or an entry is wrong; names the line and the field.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the allow-list {str(file)!r}: {exc}") from exc
    if file.suffix.lower() == ".toml":
        return _from_toml(text, str(file))
    return _from_csv(text, str(file))


def _from_csv(text: str, name: str) -> list[Placement]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = set(header) - set(KEYS)
    if not header or unknown or not {"serial", "device", "site", "kind"} <= set(header):
        raise ConfigError(
            f"{name}: the header must name serial, device, site, kind and optionally lot, "
            f"segment, spots, lat, lon, batch; it has {header}"
        )
    places = []
    for number, row in enumerate(reader, start=2):
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        where = f"{name} line {number}"
        spots_text = values.pop("spots", "")
        spots = [_spot_text(part, where) for part in spots_text.split(";") if part.strip()]
        places.append(_place(values, spots, where))
        _bound(places, name)
    return _unique(places, name)


def _spot_text(part: str, where: str) -> dict[str, str]:
    spot, _, rest = part.strip().partition("=")
    sensor, _, category = rest.partition(":")
    if ":" in spot:  # a spot of the device itself with a category: "lot3-A1:disabled"
        spot, _, category = spot.partition(":")
    return {"spot": spot.strip(), "sensor": sensor.strip(), "category": category.strip()}


def _from_toml(text: str, name: str) -> list[Placement]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name} is not valid TOML: {exc}") from exc
    entries = data.get("device")
    if set(data) - {"device"} or not isinstance(entries, list):
        raise ConfigError(f"{name}: an allow-list is a list of [[device]] tables")
    places = []
    for index, entry in enumerate(entries, start=1):
        where = f"{name} [[device]] #{index}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        spots = entry.pop("spots", [])
        if not isinstance(spots, list) or not all(isinstance(s, dict) for s in spots):
            raise ConfigError(f"{where}: spots must be an array of {{spot, sensor, category}}")
        values = {k: v if isinstance(v, str) else str(v) for k, v in entry.items()}
        places.append(_place(values, spots, where))
        _bound(places, name)
    return _unique(places, name)


def placement_from_args(serial: str, args: Mapping[str, Any]) -> Placement:
    """Build a placement from an operator's approval (CLI options or the dashboard's form).

    Raises:
        ConfigError: a field is wrong; names it.
    """
    values = {k: str(v) for k, v in args.items() if k != "spots" and v not in (None, "")}
    spots = args.get("spots") or []
    if not isinstance(spots, list):
        raise ConfigError("spots must be a list of {spot, sensor, category}")
    return _place({**values, "serial": serial}, spots, f"approval of {serial}")


def _place(values: Mapping[str, str], spots: list[Any], where: str) -> Placement:
    unknown = set(values) - set(KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {list(KEYS)}")
    serial = values.get("serial", "")
    if not is_valid_serial(serial):
        raise ConfigError(
            f"{where}: serial {serial[:70]!r} is not valid (1-64 of A-Z a-z 0-9 . _ : -)"
        )
    for key in ("device", "site"):
        if not is_valid_id(values.get(key, "")):
            raise ConfigError(f"{where}: {describe_bad_id(key, values.get(key, ''))}")
    kinds = [k.value for k in DeviceKind]
    kind = values.get("kind", "")
    if kind not in kinds:
        raise ConfigError(f"{where}: kind {kind!r} must be one of {kinds}")
    for key in ("lot", "segment", "batch"):
        if values.get(key) and not is_valid_id(values[key]):
            raise ConfigError(f"{where}: {describe_bad_id(key, values[key])}")
    if kind in ("parking", "counter") and not values.get("lot"):
        raise ConfigError(f"{where}: a {kind} device needs its lot")
    if kind == "traffic" and not values.get("segment"):
        raise ConfigError(f"{where}: a traffic device needs its segment")
    if spots and kind != "parking":
        raise ConfigError(f"{where}: only a parking device senses spots")
    return Placement(
        serial=serial,
        device_id=values["device"],
        site_id=values["site"],
        kind=kind,
        lot_id=values.get("lot") or None,
        segment_id=values.get("segment") or None,
        spots=tuple(_spot(s, where) for s in spots),
        lat=_coordinate(values.get("lat"), 90, f"{where}: lat"),
        lon=_coordinate(values.get("lon"), 180, f"{where}: lon"),
        batch_id=values.get("batch") or None,
    )


def _spot(raw: Mapping[str, Any], where: str) -> SpotPlace:
    spot, sensor = str(raw.get("spot", "")), str(raw.get("sensor", "") or "")
    category = str(raw.get("category", "") or "general")
    if not is_valid_id(spot):
        raise ConfigError(f"{where}: {describe_bad_id('spot', spot)}")
    if sensor and not is_valid_id(sensor):
        raise ConfigError(f"{where}: {describe_bad_id('spot sensor', sensor)}")
    categories = [c.value for c in SpaceCategory]
    if category not in categories:
        raise ConfigError(
            f"{where}: spot {spot}: category {category!r} must be one of {categories}"
        )
    return SpotPlace(spot, sensor, category)


def _coordinate(text: str | None, bound: float, what: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} = {text!r} is not a number") from None
    if not -bound <= value <= bound:
        raise ConfigError(f"{what} = {value} must be within [-{bound}, {bound}]")
    return value


def _bound(places: list[Placement], name: str) -> None:
    if len(places) > MAX_ENTRIES:
        raise ConfigError(f"{name}: at most {MAX_ENTRIES:,} devices per file; split it")


def _unique(places: list[Placement], name: str) -> list[Placement]:
    for field_name in ("serial", "device_id"):
        seen: set[str] = set()
        for place in places:
            value = getattr(place, field_name)
            if value in seen:
                raise ConfigError(
                    f"{name}: {field_name.replace('_id', '')} {value!r} is listed twice"
                )
            seen.add(value)
    sensed = [(p.device_id, s.sensor) for p in places for s in p.spots]
    spots = [s.spot for p in places for s in p.spots]
    if len(set(spots)) != len(spots) or len(set(sensed)) != len(sensed):
        raise ConfigError(f"{name}: a spot, or a device's spot sensor, is listed twice")
    return places
