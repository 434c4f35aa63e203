"""Lot details in the registry file: opening hours, space categories, static facts; every
wrong value refused with the file, the line and the fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from store.registry import store_registry
from streetsense.errors import ConfigError, RegistryError
from streetsense.hours import OpeningStatus, hours_problem, hours_state
from streetsense.lot_status import StatusOverride, StatusSource, lot_status
from streetsense.registry import SpaceCategory, load_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "registry.example.toml"

BASE = """\
[[site]]
id = "c"

[[lot]]
id = "garage"
site = "c"
kind = "off_street"
capacity = 100
lat = 56.1
lon = 10.2
{extra}

[[device]]
id = "gw"
site = "c"
kind = "parking"
lot = "garage"

[[spot]]
id = "s1"
lot = "garage"
device = "gw"
sensor = "a"
{spot}
"""


def _write(tmp_path: Path, extra: str = "", spot: str = "") -> Path:
    path = tmp_path / "registry.toml"
    path.write_text(BASE.format(extra=extra, spot=spot), encoding="utf-8")
    return path


def test_every_new_field_loads_and_is_stored(db: psycopg.Connection) -> None:
    registry = load_registry(EXAMPLE)
    garage = registry.lots[0]
    assert garage.opening_hours.startswith("Mo-Sa 06:00-24:00")
    assert garage.category_capacity() == {
        SpaceCategory.GENERAL: 394, SpaceCategory.DISABLED: 8, SpaceCategory.EV_CHARGING: 12,
        SpaceCategory.FAMILY: 6,
    }  # fmt: skip
    assert garage.facts.entrances == ((10.2118, 56.1533), (10.2125, 56.1527))
    assert (garage.facts.max_height_m, garage.facts.park_and_ride) == (2.1, False)
    assert registry.spots[0].category is SpaceCategory.DISABLED
    store_registry(db, registry, "example")
    row = db.execute(
        "SELECT opening_hours, spaces, facts FROM lots WHERE lot_id = 'harbour-garage'"
    ).fetchone()
    assert row is not None
    assert row[1] == {"disabled": 8, "ev_charging": 12, "family": 6}
    assert row[2]["operator"] == "Harbour Parking Ltd" and row[2]["park_and_ride"] is False
    assert row[2]["entrances"] == [[10.2118, 56.1533], [10.2125, 56.1527]]
    categories = db.execute("SELECT spot_id, category FROM spots ORDER BY spot_id").fetchall()
    assert categories[0] == ("market-1", "disabled") and categories[1][1] == "general"
    # A lot without details stores none: apps see only what the registry says.
    bare = db.execute("SELECT facts, spaces FROM lots WHERE lot_id = 'market-street'").fetchone()
    assert bare == ({}, {"disabled": 1})


@pytest.mark.parametrize(
    ("extra", "spot", "line", "message"),
    [
        ('opening_hours = "Mo-Xx 08:00-18:00"', "", 11, "at character 4: expected wday"),
        ('opening_hours = "8 to 6"', "", 11, "write e.g. 'Mo-Fr 07:00-22:00"),
        ("opening_hours = 9", "", 11, "must be text"),
        ("spaces = { vip = 3 }", "", 11, "'vip' is not a space category; use one of"),
        ("spaces = { disabled = -1 }", "", 11, "from 0 to the lot's capacity (100)"),
        ("spaces = { disabled = 2.5 }", "", 11, "must be a whole number"),
        ("spaces = { disabled = 60, truck = 50 }", "", 11, "add up to 110, more than"),
        ("spaces = { general = 10, disabled = 5 }", "", 11, "must equal the capacity (100)"),
        ('spaces = "many"', "", 11, "must be a table of category = count"),
        ("max_height_m = 0.2", "", 11, "max_height_m' = 0.2 must be within [1.0, 10.0]"),
        ('park_and_ride = "yes"', "", 11, "must be true or false"),
        ('tariff_url = "javascript:alert(1)"', "", 11, "write e.g. 'https://"),
        ('tariff_url = "https://a.example/x y"', "", 11, "is not valid"),
        ('phone = "call us"', "", 11, "write e.g. '+45"),
        ('email = "nobody"', "", 11, "write e.g. 'parking@"),
        ("entrances = [[10.2, 95.0]]", "", 11, "is not a [lon, lat] point (GeoJSON order)"),
        ("entrances = [10.2, 56.1]", "", 11, "is not a [lon, lat] point"),
        ('operator = "Bad\\u0007Name"', "", 11, "must not contain control characters"),
        ('address = "' + "x" * 201 + '"', "", 11, "at most 200 characters"),
        ("shoe_size = 42", "", 11, "'shoe_size' is not a known field"),
        ("", 'category = "vip"', 24, "must be one of ['general', 'disabled'"),
        ("", 'category = "disabled"', 4, "declares 0 disabled space(s); set spaces = { disabled"),
    ],
)
def test_every_wrong_value_names_the_line_and_the_fix(
    tmp_path: Path, extra: str, spot: str, line: int, message: str
) -> None:
    path = _write(tmp_path, extra, spot)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    text = str(caught.value)
    assert text.startswith(f"{path} line {line}: "), text
    assert message in text, text


def test_category_spots_must_fit_their_declared_spaces(tmp_path: Path) -> None:
    path = _write(tmp_path, "spaces = { disabled = 1 }", 'category = "disabled"')
    assert load_registry(path).spots[0].category is SpaceCategory.DISABLED


def test_hours_are_evaluated_in_the_city_zone() -> None:
    hours = "Mo-Fr 08:00-18:00; PH off"
    # Monday 2026-12-07 07:30 UTC is 08:30 in Copenhagen: open there, not yet in UTC.
    monday = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)
    assert hours_state(hours, monday, "Europe/Copenhagen").status is OpeningStatus.OPEN
    assert hours_state(hours, monday, "UTC").status is OpeningStatus.CLOSED
    night = hours_state(hours, monday.replace(hour=22), "Europe/Copenhagen")
    assert night.status is OpeningStatus.CLOSED
    assert night.next_change == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
    # Christmas Day is a public holiday in Denmark, known only with the country.
    christmas = datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
    assert hours_state(hours, christmas, "Europe/Copenhagen", "DK").status is OpeningStatus.CLOSED
    assert hours_state(hours, christmas, "Europe/Copenhagen").status is OpeningStatus.OPEN
    assert hours_state("Mo-Fr 08:00-18:00 || unknown", night.next_change or monday, "UTC")
    assert hours_problem("Mo-Su 06:00-01:00") is None  # past midnight is fine
    assert "at most 512" in (hours_problem("Mo " * 300) or "")
    with pytest.raises(ConfigError, match=r"city\.country 'XX'"):
        hours_state(hours, monday, "UTC", "XX")
    with pytest.raises(ConfigError, match=r"city\.timezone 'Mars/Olympus'"):
        hours_state(hours, monday, "Mars/Olympus")


def test_an_override_wins_over_the_hours_until_it_ends() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    closure = StatusOverride(
        "garage", OpeningStatus.CLOSED, "flooded level -1", "ops", now, now + timedelta(hours=2)
    )
    during = lot_status("24/7", closure, now + timedelta(hours=1), "UTC")
    assert (during.status, during.source, during.reason) == (
        OpeningStatus.CLOSED, StatusSource.OVERRIDE, "flooded level -1",
    )  # fmt: skip
    after = lot_status("24/7", closure, now + timedelta(hours=2), "UTC")
    assert (after.status, after.source) == (OpeningStatus.OPEN, StatusSource.HOURS)
    assert lot_status("", None, now, "UTC").reason == "open at all times"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": " "}, "reason must be 1 to 200 characters"),
        ({"reason": "x" * 201}, "reason must be 1 to 200"),
        ({"set_by": "a\nb"}, "by must be 1 to 100 characters of plain text"),
        ({"until": datetime(2026, 12, 7, 11, tzinfo=UTC)}, "must lie after now"),
        ({"until": datetime(2028, 1, 1, tzinfo=UTC)}, "at most a year ahead"),
        ({"set_at": datetime(2026, 12, 7, 12)}, "need a time zone"),  # noqa: DTZ001  (on purpose)
        ({"status": OpeningStatus.UNKNOWN}, "clear it instead"),
    ],
)
def test_bad_overrides_are_refused(change: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {
        "lot_id": "garage", "status": OpeningStatus.CLOSED, "reason": "works", "set_by": "ops",
        "set_at": datetime(2026, 12, 7, 12, tzinfo=UTC), "until": None,
    }  # fmt: skip
    fields.update(change)
    with pytest.raises(RegistryError, match=message):
        StatusOverride(**fields)  # type: ignore[arg-type]
